//! The command line: `serve`, `demo`, `user add`, `config`, `migrate`, `backup`.

mod progress;

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, SETTINGS};
use crate::registry::demo::{self, DemoOptions, DemoSummary};
use crate::registry::risk::RiskRules;

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

#[derive(Args)]
struct ServeArgs {
    /// When the database holds no units yet, first fill it with the default demo city
    /// (as `xuncha demo` with no options).
    #[arg(long)]
    demo: bool,
    #[command(flatten)]
    overrides: Overrides,
}

#[derive(Args)]
struct DemoArgs {
    /// Seed of the generator: the same seed and sizes give the same city.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Using units (使用单位).
    #[arg(long, default_value_t = 50_000)]
    units: u32,
    /// Pieces of equipment.
    #[arg(long, default_value_t = 300_000)]
    equipment: u32,
    /// Districts of the city (330101, 330102, …).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=99))]
    districts: u32,
    /// Inspectors, spread over the districts.
    #[arg(long, default_value_t = 500)]
    inspectors: u32,
    /// Managers: two city-wide, the rest by district.
    #[arg(long, default_value_t = 40)]
    managers: u32,
    /// Hazards, in every state of their lifecycle.
    #[arg(long, default_value_t = 5_000)]
    hazards: u32,
    #[command(flatten)]
    overrides: Overrides,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server (creates the database and the admin on first start).
    Serve(ServeArgs),
    /// Fill a fresh database with a synthetic city (districts, units, equipment, users,
    /// hazards) for trials and benchmarks. Every demo user's password is
    /// XUNCHA_DEMO_PASSWORD, default `demo-password-123`.
    Demo(DemoArgs),
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
    /// Risk facts of the registry.
    Risk {
        #[command(subcommand)]
        command: RiskCommand,
    },
    /// Photo uploads (tus).
    Uploads {
        #[command(subcommand)]
        command: UploadsCommand,
    },
    /// The hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Unannounced-check plans (四不两直).
    Surprise {
        #[command(subcommand)]
        command: SurpriseCommand,
    },
    /// Copy the SQLite database to FILE while the server runs (PostgreSQL: use pg_dump).
    Backup {
        /// Destination file; must not exist.
        to: PathBuf,
        #[command(flatten)]
        overrides: Overrides,
    },
}

#[derive(Subcommand)]
enum RiskCommand {
    /// Recompute every unit's and equipment's risk facts now (what the server's periodic job
    /// does), writing only rows whose facts changed.
    Refresh(Overrides),
}

#[derive(Subcommand)]
enum SurpriseCommand {
    /// Recompute a plan's draw from its seed and pool snapshot and compare it with what was
    /// stored and assigned: prints the verification, exits 1 when it does not match.
    Verify {
        /// The plan's id.
        plan_id: String,
        #[command(flatten)]
        overrides: Overrides,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the whole chain and check it against the recorded head: exits 1 when any
    /// entry was edited, removed or cut off the end.
    Verify(Overrides),
}

#[derive(Subcommand)]
enum UploadsCommand {
    /// Delete incomplete uploads past their expiry, with their bytes (what the server's
    /// periodic job does).
    Sweep(Overrides),
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
        Command::Serve(a) => {
            let cfg = load(file, &a.overrides)?;
            actix_web::rt::System::new().block_on(serve(cfg, a.demo))
        }
        Command::Demo(a) => {
            let cfg = load(file, &a.overrides)?;
            let opts = DemoOptions {
                seed: a.seed,
                units: a.units,
                equipment: a.equipment,
                districts: a.districts,
                inspectors: a.inspectors,
                managers: a.managers,
                hazards: a.hazards,
                password: demo_password(),
            };
            // Checked before the database is touched.
            opts.validate()?;
            actix_web::rt::System::new().block_on(async {
                let (state, admin_password) = crate::app::init(cfg).await?;
                print_admin_password(admin_password);
                run_demo(&state, opts).await
            })
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
        Command::Risk {
            command: RiskCommand::Refresh(o),
        } => {
            let cfg = load(file, &o)?;
            let rules = crate::registry::risk::RiskRules::from_config(&cfg)?;
            let db = crate::db::Db::open(&cfg.db_target()?, cfg.pool_options())?;
            let mut conn = db.get().map_err(|e| e.to_string())?;
            let started = std::time::Instant::now();
            let now = crate::time::Clock::default().now();
            let stats = crate::registry::facts::refresh_all(&mut conn, now, &rules, |n| {
                if n % 10_000 == 0 {
                    eprintln!("risk refresh: {n} units checked");
                }
            })
            .map_err(|e| e.to_string())?;
            println!(
                "risk facts refreshed in {:.1} s: {} unit(s) and {} piece(s) of equipment changed",
                started.elapsed().as_secs_f64(),
                stats.units_changed,
                stats.equipment_changed
            );
            Ok(())
        }
        Command::Uploads {
            command: UploadsCommand::Sweep(o),
        } => {
            let cfg = load(file, &o)?;
            let db = crate::db::Db::open(&cfg.db_target()?, cfg.pool_options())?;
            let mut conn = db.get().map_err(|e| e.to_string())?;
            let now = crate::time::Clock::default().now();
            let dir = cfg.data_dir().join("uploads");
            let n =
                crate::evidence::uploads::sweep(&mut conn, &dir, now).map_err(|e| e.to_string())?;
            println!("{n} expired uploads removed");
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify(o),
        } => {
            let cfg = load(file, &o)?;
            let db = crate::db::Db::open(&cfg.db_target()?, cfg.pool_options())?;
            let mut conn = db.get().map_err(|e| e.to_string())?;
            let r = crate::audit::verify(&mut conn).map_err(|e| e.to_string())?;
            if r.ok {
                println!(
                    "audit chain intact: {} entries, head {} {}",
                    r.entries, r.head_seq, r.head_hash
                );
                Ok(())
            } else {
                Err(format!(
                    "audit chain BROKEN at entry {}: {} ({} entries read)",
                    r.broken_at.unwrap_or_default(),
                    r.problem.unwrap_or_default(),
                    r.entries
                ))
            }
        }
        Command::Surprise {
            command: SurpriseCommand::Verify { plan_id, overrides },
        } => {
            let cfg = load(file, &overrides)?;
            let db = crate::db::Db::open(&cfg.db_target()?, cfg.pool_options())?;
            let mut conn = db.get().map_err(|e| e.to_string())?;
            let v = crate::surprise::service::verify_by_id(&mut conn, plan_id.trim())
                .map_err(|e| e.to_string())?;
            println!(
                "plan {}: {}\n  algorithm {}\n  seed commitment {} ({})\n  pool hash {} ({})\n  \
                 recomputed result {}\n  drawn assignments {}\n  targets {}",
                v.plan_id,
                if v.matches {
                    "MATCHES"
                } else {
                    "DOES NOT MATCH"
                },
                v.algorithm,
                v.seed_commitment,
                ok(v.commitment_ok),
                v.pool_hash,
                ok(v.pool_hash_ok),
                ok(v.result_ok),
                ok(v.assignments_ok),
                v.targets
            );
            if v.matches {
                Ok(())
            } else {
                Err(format!("plan {}: the draw does not verify", v.plan_id))
            }
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

fn print_admin_password(admin_password: Option<String>) {
    if let Some(pw) = admin_password {
        // Printed once, to the terminal, never to the log.
        println!("Created the user `admin` with password: {pw}");
        println!("(shown only now; set XUNCHA_ADMIN_PASSWORD to choose it yourself)");
    }
}

fn demo_password() -> String {
    std::env::var(demo::PASSWORD_ENV).unwrap_or_else(|_| demo::DEFAULT_PASSWORD.to_string())
}

/// Generates the demo city on a blocking thread, with a progress bar, and prints a summary.
async fn run_demo(state: &crate::app::AppState, opts: DemoOptions) -> Result<(), String> {
    let rules = RiskRules::from_config(&state.config)?;
    let db = state.db.clone();
    let hasher = state.hasher.clone();
    let now = state.clock.now();
    let password = opts.password.clone();
    let summary = tokio::task::spawn_blocking(move || {
        let mut conn = db.get().map_err(|e| e.to_string())?;
        demo::generate(
            &mut conn,
            &opts,
            &hasher,
            &rules,
            now,
            &mut progress::Bar::stderr(),
        )
    })
    .await
    .map_err(|e| format!("demo task failed: {e}"))??;
    print_summary(&summary, &password);
    Ok(())
}

fn print_summary(s: &DemoSummary, password: &str) {
    let districts: Vec<String> = s
        .districts
        .iter()
        .map(|(code, name)| format!("{code} {name}"))
        .collect();
    println!(
        "Demo city {} ({}), seed {}, generated in {:.1} s:",
        demo::CITY_NAME,
        demo::CITY_CODE,
        s.seed,
        s.elapsed.as_secs_f64()
    );
    println!(
        "  districts  {} ({})",
        s.districts.len(),
        districts.join(", ")
    );
    println!("  units      {}", s.units);
    let mix: Vec<String> = s
        .equipment_by_category
        .iter()
        .map(|(code, n)| format!("{code}: {n}"))
        .collect();
    println!("  equipment  {} ({})", s.equipment, mix.join(", "));
    println!(
        "  users      {} managers, {} inspectors, {} unit users",
        s.managers, s.inspectors, s.unit_users
    );
    println!("  hazards    {} ({} open)", s.hazards, s.open_hazards);
    println!(
        "  risk facts refreshed on {} units with open hazards",
        s.refreshed.units_changed
    );
    let who: Vec<String> = [
        s.first_manager
            .as_ref()
            .map(|u| format!("{u} (city manager)")),
        s.first_inspector
            .as_ref()
            .map(|u| format!("{u} (inspector)")),
        s.first_unit_user
            .as_ref()
            .map(|u| format!("{u} (unit user)")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !who.is_empty() {
        println!("Log in as {} with the password: {password}", who.join(", "));
    }
}

async fn serve(cfg: Config, seed_demo: bool) -> Result<(), String> {
    let bind = cfg.bind_addr()?;
    let (state, admin_password) = crate::app::init(cfg).await?;
    print_admin_password(admin_password);
    if seed_demo {
        let db = state.db.clone();
        let empty = tokio::task::spawn_blocking(move || {
            let mut conn = db.get().map_err(|e| e.to_string())?;
            demo::registry_is_empty(&mut conn)
        })
        .await
        .map_err(|e| format!("start-up task failed: {e}"))??;
        if empty {
            let opts = DemoOptions {
                password: demo_password(),
                ..DemoOptions::default()
            };
            opts.validate()?;
            run_demo(&state, opts).await?;
        } else {
            tracing::info!("the registry holds units already; not seeding the demo city");
        }
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

fn ok(b: bool) -> &'static str {
    if b { "ok" } else { "MISMATCH" }
}
