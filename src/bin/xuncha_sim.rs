//! `xuncha_sim`: a fleet of simulated inspectors' phones against a running server (issue 8).
//!
//! Each device logs in (its own `device_id`), pulls its scope into a local copy until caught
//! up, works offline (an inspection record item by item, hazards, an edit, photos), reconnects
//! (incremental pulls, pushes with increasing `seq`, retried whole when a request or its
//! answer is dropped; tus uploads, some broken off midway and resumed with HEAD + PATCH),
//! refreshes its token. At the end every device pulls once more and compares its copy with
//! `GET /api/v1/sync/checksum`, and every acknowledged mutation is looked for in the copy
//! (applied hazard reports on the server too). The report gives requests/s, latency
//! percentiles per endpoint, errors by kind, convergence, caught-up pulls against `/healthz`
//! with the same client, and the server's peak RSS (`--server-pid`).
//!
//! `scripts/load.sh` starts demo servers on SQLite and PostgreSQL and runs it.

// Outside tests, nothing unwraps: a value from a client or the database that is not there is
// an error to answer, not a panic (clippy fails the build on a new one).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

#[path = "xuncha_sim/api.rs"]
mod api;
#[path = "xuncha_sim/copy.rs"]
mod copy;
#[path = "xuncha_sim/device.rs"]
mod device;
#[path = "xuncha_sim/jpeg.rs"]
mod jpeg;
#[path = "xuncha_sim/rng.rs"]
mod rng;
#[path = "xuncha_sim/run.rs"]
mod run;
#[path = "xuncha_sim/stats.rs"]
mod stats;
#[path = "xuncha_sim/upload.rs"]
mod upload;
#[path = "xuncha_sim/verify.rs"]
mod verify;
#[path = "xuncha_sim/work.rs"]
mod work;

use std::process::ExitCode;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProfileArg {
    /// Initial sync, 3 incremental pulls, one push of --mutations (issue 8's morning target).
    Morning,
    /// The morning plus photos over tus (some interrupted and resumed), a token refresh and a
    /// second offline session.
    Full,
}

/// Plays N inspectors' phones against a running xuncha server (one started with --demo).
#[derive(Debug, Parser)]
#[command(name = "xuncha_sim", version)]
struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Simulated phones; they log in as inspector001, inspector002, … in turn.
    #[arg(long, default_value_t = 100)]
    devices: usize,
    /// Requests in flight at most (all devices together).
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Seed of every random choice (work, drops, where uploads break).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, value_enum, default_value_t = ProfileArg::Full)]
    profile: ProfileArg,
    /// Password of the demo users.
    #[arg(
        long,
        env = "XUNCHA_DEMO_PASSWORD",
        default_value = "demo-password-123"
    )]
    password: String,
    /// Inspectors in the demo city (`xuncha demo --inspectors`).
    #[arg(long, default_value_t = 500)]
    inspectors: usize,
    /// The manager who plans the devices' assignments (must cover their districts).
    #[arg(long, default_value = "manager01")]
    manager: String,
    /// Changes per pull page.
    #[arg(long, default_value_t = 1000)]
    page_limit: u32,
    /// Chance that a pull or push (or upload PATCH) is dropped: aborted in flight or its answer
    /// lost; the device retries it. Default: 0.05 for `full`, 0 for `morning`.
    #[arg(long)]
    drop_rate: Option<f64>,
    /// Chance that a photo upload breaks off midway (then resumes from the server's offset).
    #[arg(long, default_value_t = 0.3)]
    interrupt_rate: f64,
    /// Photos per device in the first offline session (full profile; one more in the second).
    #[arg(long, default_value_t = 2)]
    photos: usize,
    /// Photo width in pixels.
    #[arg(long, default_value_t = 640)]
    photo_width: u16,
    /// Photo height in pixels.
    #[arg(long, default_value_t = 480)]
    photo_height: u16,
    /// Mutations of the first offline session.
    #[arg(long, default_value_t = 20)]
    mutations: usize,
    /// Mutations per push request.
    #[arg(long, default_value_t = 50)]
    push_batch: usize,
    /// Spread the devices' starts over this many seconds (0: all at once).
    #[arg(long, default_value_t = 0.0)]
    ramp_secs: f64,
    /// Seconds of each of the two caught-up pull and /healthz throughput runs (0: skip).
    #[arg(long, default_value_t = 3.0)]
    rate_secs: f64,
    /// Devices checked at once at the end (final pull, checksum, acknowledged effects).
    #[arg(long, default_value_t = 16)]
    check_concurrency: usize,
    /// The server's process id: its peak RSS (VmHWM) and sampled VmRSS are reported.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Do not ask for gzip.
    #[arg(long)]
    no_gzip: bool,
    /// Seconds before a request times out.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// Seconds between progress lines on standard error (0: none).
    #[arg(long, default_value_t = 10.0)]
    progress_secs: f64,
    /// Client runtime worker threads (the server gets the other cores).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Exit 0 despite errors (convergence failures still exit 1).
    #[arg(long)]
    allow_errors: bool,
}

fn main() -> ExitCode {
    let a = Args::parse();
    let profile = match a.profile {
        ProfileArg::Morning => run::Profile::Morning,
        ProfileArg::Full => run::Profile::Full,
    };
    let opts = run::Options {
        url: a.url,
        devices: a.devices,
        concurrency: a.concurrency.max(1),
        seed: a.seed,
        profile,
        password: a.password,
        inspectors: a.inspectors.max(1),
        manager: a.manager,
        page_limit: a.page_limit,
        drop_rate: a.drop_rate.unwrap_or(match profile {
            run::Profile::Morning => 0.0,
            run::Profile::Full => 0.05,
        }),
        interrupt_rate: a.interrupt_rate,
        photos: a.photos,
        photo_size: (a.photo_width, a.photo_height),
        mutations: a.mutations,
        push_batch: a.push_batch,
        ramp_secs: a.ramp_secs,
        rate_secs: a.rate_secs,
        check_concurrency: a.check_concurrency,
        server_pid: a.server_pid,
        gzip: !a.no_gzip,
        timeout_secs: a.timeout_secs,
        progress_secs: a.progress_secs,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.workers.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("xuncha_sim: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = match rt.block_on(run::run(opts)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xuncha_sim: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", outcome.text);
    if let Some(path) = a.json {
        let text = serde_json::to_string_pretty(&outcome.json).unwrap_or_default();
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("xuncha_sim: cannot write {}: {e}", path.display());
        }
    }
    if !outcome.converged {
        eprintln!("xuncha_sim: convergence FAILED");
        return ExitCode::from(1);
    }
    if outcome.errors > 0 && !a.allow_errors {
        eprintln!(
            "xuncha_sim: {} errors (pass --allow-errors to accept them)",
            outcome.errors
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
