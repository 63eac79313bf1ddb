//! The command line: `serve`, `user add`, `config`, `migrate`, `backup`.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, SETTINGS};

#[derive(Parser)]
#[command(
    name = "xuncha",
    version,
    about = "Field inspection API and sync server for special-equipment safety supervision"
)]
struct Cli {
    /// TOML configuration file (also XUNCHA_CONFIG).
    #[arg(long, global = true, env = "XUNCHA_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Default)]
struct Overrides {
    /// Address to listen on (XUNCHA_BIND).
    #[arg(long)]
    bind: Option<String>,
    /// Database URL (DATABASE_URL): sqlite://PATH, a path, or postgres://…
    #[arg(long)]
    database_url: Option<String>,
    /// Data directory (XUNCHA_DATA_DIR).
    #[arg(long)]
    data_dir: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server (creates the database and the admin on first start).
    Serve(Overrides),
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Print every setting with its effective value (secrets masked) and check them.
    Config {
        /// Print the defaults as a Markdown table (as in the README) instead.
        #[arg(long)]
        markdown: bool,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Apply pending database migrations and exit.
    Migrate(Overrides),
    /// Copy the SQLite database to FILE while the server runs (PostgreSQL: use pg_dump).
    Backup {
        /// Destination file; must not exist.
        to: PathBuf,
        #[command(flatten)]
        overrides: Overrides,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from the first line of standard input.
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        region: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        unit_id: Option<String>,
        #[arg(long)]
        credential_no: Option<String>,
        #[command(flatten)]
        overrides: Overrides,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xuncha: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(file: Option<&PathBuf>, o: &Overrides) -> Result<Config, String> {
    let (mut cfg, warnings) = Config::load(file.map(|p| p.as_path()), std::env::vars())?;
    if let Some(b) = &o.bind {
        cfg.bind = b.clone();
    }
    if let Some(u) = &o.database_url {
        cfg.database_url = u.clone();
    }
    if let Some(d) = &o.data_dir {
        cfg.data_dir = d.clone();
    }
    cfg.validate()?;
    init_logging(&cfg);
    for w in warnings {
        tracing::warn!("{w}");
    }
    Ok(cfg)
}

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = if cfg.log_format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn run(cli: Cli) -> Result<(), String> {
    let file = cli.config.as_ref();
    match cli.command {
        Command::Serve(o) => {
            let cfg = load(file, &o)?;
            actix_web::rt::System::new().block_on(serve(cfg))
        }
        Command::Config { markdown: true, .. } => {
            println!("| setting | variable | default | meaning |\n|---|---|---|---|");
            let defaults = Config::default().describe();
            for (key, env, _, doc) in SETTINGS {
                let value = defaults
                    .iter()
                    .find(|(k, _)| k == key)
                    .map_or("", |(_, v)| v.as_str());
                println!("| `{key}` | `{env}` | `{value}` | {doc} |");
            }
            Ok(())
        }
        Command::Config { overrides: o, .. } => {
            let cfg = load(file, &o)?;
            let values = cfg.describe();
            for (key, env, _, doc) in SETTINGS {
                let value = values
                    .iter()
                    .find(|(k, _)| k == key)
                    .map_or("", |(_, v)| v.as_str());
                println!("{key} = {value}\n    {env}: {doc}");
            }
            Ok(())
        }
        Command::Migrate(o) => {
            let cfg = load(file, &o)?;
            crate::db::Db::open(&cfg.db_target()?, cfg.pool_options())?;
            println!("migrations applied");
            Ok(())
        }
        Command::Backup { to, overrides } => {
            let cfg = load(file, &overrides)?;
            backup(&cfg, &to)
        }
        Command::User {
            command:
                UserCommand::Add {
                    username,
                    role,
                    region,
                    display_name,
                    unit_id,
                    credential_no,
                    overrides,
                },
        } => {
            let cfg = load(file, &overrides)?;
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .map_err(|e| format!("reading the password from standard input: {e}"))?;
            let (state, _) = actix_web::rt::System::new().block_on(crate::app::init(cfg))?;
            let mut conn = state.db.get().map_err(|e| e.to_string())?;
            let req = crate::auth::types::NewUser {
                display_name: display_name.unwrap_or_else(|| username.clone()),
                username,
                password: password.trim_end_matches(['\r', '\n']).to_string(),
                role,
                region_code: region,
                unit_id,
                credential_no,
            };
            let user =
                crate::auth::users::add_from_cli(&mut conn, &state.hasher, req, state.clock.now())?;
            println!(
                "created user {} ({}) with id {}",
                user.username, user.role, user.id
            );
            Ok(())
        }
    }
}

async fn serve(cfg: Config) -> Result<(), String> {
    let bind = cfg.bind_addr()?;
    let (state, admin_password) = crate::app::init(cfg).await?;
    if let Some(pw) = admin_password {
        // Printed once, to the terminal, never to the log.
        println!("Created the user `admin` with password: {pw}");
        println!("(shown only now; set XUNCHA_ADMIN_PASSWORD to choose it yourself)");
    }
    let engine = state.db.engine();
    let listener =
        std::net::TcpListener::bind(bind).map_err(|e| format!("cannot listen on {bind}: {e}"))?;
    let running = crate::app::serve(state, listener).map_err(|e| e.to_string())?;
    tracing::info!(addr = %running.addr, database = engine, "xuncha ready on http://{}", running.addr);
    running.server.await.map_err(|e| e.to_string())?;
    tracing::info!("xuncha stopped");
    Ok(())
}

fn backup(cfg: &Config, to: &std::path::Path) -> Result<(), String> {
    use diesel::RunQueryDsl;
    let target = cfg.db_target()?;
    if !matches!(target, crate::db::Target::Sqlite(_)) {
        return Err("backup copies the SQLite database; for PostgreSQL use pg_dump".into());
    }
    if to.exists() {
        return Err(format!("{} exists; choose a new file", to.display()));
    }
    let db = crate::db::Db::open(&target, cfg.pool_options())?;
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let path = to.to_string_lossy().replace('\'', "''");
    // VACUUM INTO writes a consistent, compacted copy while other connections keep working.
    diesel::sql_query(format!("VACUUM INTO '{path}'"))
        .execute(&mut *conn)
        .map_err(|e| format!("backup failed: {e}"))?;
    println!("backup written to {}", to.display());
    Ok(())
}
