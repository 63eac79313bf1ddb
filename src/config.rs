//! Configuration: defaults, then an optional TOML file, then `XUNCHA_*` environment variables
//! (and `DATABASE_URL`), then command-line flags. Validated once at start; a bad value stops
//! the server with a message naming the setting. Passed around in the app state, never global.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A value as it arrives: typed from the TOML file, or text from the environment.
#[derive(Debug, Clone)]
pub enum Raw {
    Toml(toml::Value),
    Text(String),
}

trait ConfigValue: Sized {
    fn parse(raw: Raw) -> Result<Self, String>;
}

impl ConfigValue for String {
    fn parse(raw: Raw) -> Result<Self, String> {
        match raw {
            Raw::Text(s) => Ok(s),
            Raw::Toml(toml::Value::String(s)) => Ok(s),
            Raw::Toml(v) => Err(format!("expected a string, got `{v}`")),
        }
    }
}

impl ConfigValue for Option<String> {
    fn parse(raw: Raw) -> Result<Self, String> {
        let s = String::parse(raw)?;
        Ok(if s.is_empty() { None } else { Some(s) })
    }
}

impl ConfigValue for Vec<String> {
    fn parse(raw: Raw) -> Result<Self, String> {
        match raw {
            Raw::Text(s) => Ok(s
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect()),
            Raw::Toml(toml::Value::Array(items)) => items
                .into_iter()
                .map(|v| String::parse(Raw::Toml(v)))
                .collect(),
            Raw::Toml(v) => Err(format!("expected a list of strings, got `{v}`")),
        }
    }
}

macro_rules! int_config_value {
    ($($t:ty),*) => {$(
        impl ConfigValue for $t {
            fn parse(raw: Raw) -> Result<Self, String> {
                match raw {
                    Raw::Text(s) => s.trim().parse::<$t>()
                        .map_err(|_| format!("expected a whole number, got `{s}`")),
                    Raw::Toml(toml::Value::Integer(i)) => <$t>::try_from(i)
                        .map_err(|_| format!("{i} is out of range")),
                    Raw::Toml(v) => Err(format!("expected a whole number, got `{v}`")),
                }
            }
        }
    )*};
}
int_config_value!(u32, u64, usize);

/// Declares every setting once: field, type, default, environment variable, whether it is a
/// secret, and its documentation (which `xuncha config` prints and the README repeats).
macro_rules! settings {
    ($( $field:ident : $ty:ty = $default:expr, $env:literal, $secret:literal, $doc:literal; )*) => {
        #[derive(Clone)]
        pub struct Config { $( pub $field: $ty, )* }

        impl Default for Config {
            fn default() -> Self { Config { $( $field: $default, )* } }
        }

        /// Name, environment variable, secret?, description.
        pub const SETTINGS: &[(&str, &str, bool, &str)] = &[ $( (stringify!($field), $env, $secret, $doc), )* ];

        impl Config {
            fn set(&mut self, key: &str, raw: Raw) -> Result<bool, String> {
                match key {
                    $( stringify!($field) => {
                        self.$field = <$ty as ConfigValue>::parse(raw)
                            .map_err(|e| format!("setting `{key}`: {e}"))?;
                        Ok(true)
                    } )*
                    _ => Ok(false),
                }
            }

            /// Each setting and its value as text, secrets masked.
            pub fn describe(&self) -> Vec<(&'static str, String)> {
                vec![ $( (stringify!($field),
                    if $secret { mask(&format!("{:?}", self.$field)) }
                    else { format!("{:?}", self.$field) }), )* ]
            }
        }
    };
}

fn mask(debug: &str) -> String {
    if debug == "None" || debug == "\"\"" {
        debug.to_string()
    } else {
        "\"***\"".to_string()
    }
}

settings! {
    bind: String = "127.0.0.1:8080".into(), "XUNCHA_BIND", false,
        "Address and port to listen on.";
    database_url: String = String::new(), "DATABASE_URL", true,
        "Empty: SQLite file `xuncha.db` in the data directory. `sqlite://PATH` or a path: SQLite. `postgres://…`: PostgreSQL. Also read from XUNCHA_DATABASE_URL.";
    data_dir: String = "./data".into(), "XUNCHA_DATA_DIR", false,
        "Directory for the embedded database and stored files.";
    log: String = "info".into(), "XUNCHA_LOG", false,
        "Log filter (tracing EnvFilter syntax, e.g. `info` or `xuncha=debug,info`).";
    log_format: String = "text".into(), "XUNCHA_LOG_FORMAT", false,
        "`text` or `json` (one JSON object per line).";
    workers: usize = 0, "XUNCHA_WORKERS", false,
        "HTTP worker threads; 0 means one per CPU core.";
    http_keep_alive_secs: u64 = 75, "XUNCHA_HTTP_KEEP_ALIVE_SECS", false,
        "How long an idle client connection is kept open. Phones pause between pull pages while they store one; with actix-web's 5 s a device's next request raced the server closing its connection (seen with the device simulator). 0: no keep-alive.";
    db_pool_size: u32 = 16, "XUNCHA_DB_POOL_SIZE", false,
        "Maximum database connections per server process.";
    db_connect_timeout_ms: u64 = 5000, "XUNCHA_DB_CONNECT_TIMEOUT_MS", false,
        "How long a request waits for a database connection before answering 503.";
    db_busy_timeout_ms: u64 = 5000, "XUNCHA_DB_BUSY_TIMEOUT_MS", false,
        "SQLite: how long a writer waits for the write lock.";
    sqlite_synchronous: String = "FULL".into(), "XUNCHA_SQLITE_SYNCHRONOUS", false,
        "SQLite `synchronous` pragma: FULL (each commit survives power loss) or NORMAL (faster; survives crashes of the process).";
    sync_row_cache_mb: u64 = 32, "XUNCHA_SYNC_ROW_CACHE_MB", false,
        "Memory for rows as pulls send them (their JSON, by table, id and version), shared by the devices of a region so that each row is read and serialised once per version; the oldest go first. 0: none.";
    sync_prefetch_pages: u64 = 16, "XUNCHA_SYNC_PREFETCH_PAGES", false,
        "Read-ahead of paged pulls: when a page has more after it, the next one is read on another connection while this one is sent, and handed out if nothing was committed meanwhile. At most this many pages are held or being read at once (one per device, 30 s at most; none while fewer than 2 connections are free). 0: no read-ahead.";
    sync_page_connections: u64 = 2, "XUNCHA_SYNC_PAGE_CONNECTIONS", false,
        "PostgreSQL: connections one pull page reads its rows' stored JSON on at once: 2 splits a big page's reads over a second connection while more than 2 are free; 1 reads on the page's own connection only. (SQLite reads on one.)";
    access_token_ttl_secs: u64 = 900, "XUNCHA_ACCESS_TOKEN_TTL_SECS", false,
        "Lifetime of an access token (JWT).";
    refresh_token_ttl_days: u64 = 30, "XUNCHA_REFRESH_TOKEN_TTL_DAYS", false,
        "A device session ends after this many days without a refresh (sliding).";
    token_signing_key: Option<String> = None, "XUNCHA_TOKEN_SIGNING_KEY", true,
        "HMAC key for access tokens, at least 32 characters. Unset: a random key is generated once and kept in the database, shared by every server on it.";
    admin_password: Option<String> = None, "XUNCHA_ADMIN_PASSWORD", true,
        "Password of the `admin` user created on an empty database. Unset: a random one is printed once.";
    argon2_memory_kib: u32 = 19456, "XUNCHA_ARGON2_MEMORY_KIB", false,
        "argon2id memory cost in KiB (OWASP minimum 19456 with 2 iterations).";
    argon2_iterations: u32 = 2, "XUNCHA_ARGON2_ITERATIONS", false,
        "argon2id time cost.";
    argon2_parallelism: u32 = 1, "XUNCHA_ARGON2_PARALLELISM", false,
        "argon2id lanes.";
    argon2_max_concurrent: usize = 0, "XUNCHA_ARGON2_MAX_CONCURRENT", false,
        "Password hashes computed at once (each takes the memory cost); 0 means one per CPU core. Others queue.";
    login_max_failures_per_account: u32 = 5, "XUNCHA_LOGIN_MAX_FAILURES_PER_ACCOUNT", false,
        "Failed logins for one username within the window before it is locked for the lockout time.";
    login_max_failures_per_address: u32 = 50, "XUNCHA_LOGIN_MAX_FAILURES_PER_ADDRESS", false,
        "Failed logins from one client address within the window before it is locked (offices share addresses).";
    login_failure_window_secs: u64 = 900, "XUNCHA_LOGIN_FAILURE_WINDOW_SECS", false,
        "Window over which failed logins are counted.";
    login_lockout_secs: u64 = 300, "XUNCHA_LOGIN_LOCKOUT_SECS", false,
        "How long a throttled account or address must wait (answered as 429 with Retry-After).";
    auth_cache_secs: u64 = 30, "XUNCHA_AUTH_CACHE_SECS", false,
        "How long a verified device session is trusted without reading it again. Revocations through this server apply at once, those through other servers or the CLI within `cluster_poll_ms`. 0: read the session on every request.";
    cluster_poll_ms: u64 = 200, "XUNCHA_CLUSTER_POLL_MS", false,
        "How often this server reads what other servers (or the CLI) changed: the sync head, so that pulls of caught-up devices need no query, and session revocations. 0: never (a single server; CLI revocations then apply after `auth_cache_secs`).";
    max_json_body_bytes: usize = 1_048_576, "XUNCHA_MAX_JSON_BODY_BYTES", false,
        "Largest JSON request body accepted (413 above).";
    compress_min_bytes: usize = 1400, "XUNCHA_COMPRESS_MIN_BYTES", false,
        "Responses smaller than this are sent uncompressed (compressing tiny bodies costs more than it saves).";
    trusted_proxies: Vec<String> = Vec::new(), "XUNCHA_TRUSTED_PROXIES", false,
        "Comma-separated IP addresses of reverse proxies whose X-Forwarded-For is believed for the client address (login throttling, logs).";
    shutdown_timeout_secs: u64 = 30, "XUNCHA_SHUTDOWN_TIMEOUT_SECS", false,
        "On SIGTERM, how long in-flight requests may take to finish.";
    max_import_bytes: u64 = 268_435_456, "XUNCHA_MAX_IMPORT_BYTES", false,
        "Largest CSV registry import accepted (413 above); the file is spooled to the data directory, not held in memory.";
    import_max_row_errors: usize = 1000, "XUNCHA_IMPORT_MAX_ROW_ERRORS", false,
        "An import reports at most this many row errors (it is refused as a whole either way).";
    max_upload_bytes: u64 = 26_214_400, "XUNCHA_MAX_UPLOAD_BYTES", false,
        "Largest photo accepted over tus (Tus-Max-Size; 413 above).";
    max_image_pixels: u64 = 50_000_000, "XUNCHA_MAX_IMAGE_PIXELS", false,
        "Largest photo accepted, in pixels (width × height); larger ones are refused before decoding.";
    upload_expiry_hours: u64 = 24, "XUNCHA_UPLOAD_EXPIRY_HOURS", false,
        "An incomplete upload is kept this long after its creation (Upload-Expires), then swept.";
    max_open_uploads_per_user: u64 = 50, "XUNCHA_MAX_OPEN_UPLOADS_PER_USER", false,
        "Incomplete uploads one user may have at once (429 above).";
    upload_sweep_interval_secs: u64 = 3600, "XUNCHA_UPLOAD_SWEEP_INTERVAL_SECS", false,
        "How often expired incomplete uploads are deleted (one app server per interval). 0: never (use `xuncha uploads sweep`).";
    blob_store_dir: String = String::new(), "XUNCHA_BLOB_STORE_DIR", false,
        "Where photo evidence is stored (originals, previews, thumbnails), by SHA-256. Empty: `blobs` in the data directory.";
    blob_store_s3_bucket: String = String::new(), "XUNCHA_BLOB_STORE_S3_BUCKET", false,
        "Keep photo evidence in this bucket of an S3-compatible store instead of `blob_store_dir`. Empty: the local directory.";
    blob_store_s3_endpoint: String = String::new(), "XUNCHA_BLOB_STORE_S3_ENDPOINT", false,
        "The S3 endpoint URL (e.g. `https://minio.internal:9000`; path-style requests). Empty: AWS for the region.";
    blob_store_s3_region: String = "us-east-1".into(), "XUNCHA_BLOB_STORE_S3_REGION", false,
        "The S3 region.";
    blob_store_s3_access_key_id: String = String::new(), "XUNCHA_BLOB_STORE_S3_ACCESS_KEY_ID", false,
        "The S3 access key id.";
    blob_store_s3_secret_access_key: Option<String> = None, "XUNCHA_BLOB_STORE_S3_SECRET_ACCESS_KEY", true,
        "The S3 secret access key.";
    sync_tombstone_retention_days: u64 = 180, "XUNCHA_SYNC_TOMBSTONE_RETENTION_DAYS", false,
        "How long deleted rows (and scope changes) are remembered for devices that were offline; a device whose copy is older must resync from scratch. At least 180.";
    sync_prune_interval_secs: u64 = 21600, "XUNCHA_SYNC_PRUNE_INTERVAL_SECS", false,
        "How often the sync log is pruned (one app server per interval). 0: never.";
    risk_weights: String = crate::registry::risk::DEFAULT_WEIGHTS.into(), "XUNCHA_RISK_WEIGHTS", false,
        "Risk score weights, `flag=weight` comma-separated; a unit's or equipment's score is the sum of the weights of its flags. Flags not named weigh 0.";
    risk_old_elevator_years: u32 = 15, "XUNCHA_RISK_OLD_ELEVATOR_YEARS", false,
        "An elevator in use for at least this many years is flagged `old_elevator`.";
    risk_frequent_faults_12m: u32 = 6, "XUNCHA_RISK_FREQUENT_FAULTS_12M", false,
        "Equipment with at least this many faults in the last 12 months is flagged `frequent_faults` (0: never).";
    risk_recent_accident_years: u32 = 3, "XUNCHA_RISK_RECENT_ACCIDENT_YEARS", false,
        "A unit with an accident within this many years is flagged `recent_accident`.";
    risk_refresh_interval_secs: u64 = 3600, "XUNCHA_RISK_REFRESH_INTERVAL_SECS", false,
        "How often risk facts that change with the date alone (inspections falling due, hazard deadlines, blacklist windows) are recomputed; one app server does it per interval. 0: never (use `xuncha risk refresh`).";
    overdue_check_interval_secs: u64 = 300, "XUNCHA_OVERDUE_CHECK_INTERVAL_SECS", false,
        "How often hazards past their rectification deadline are looked for and escalated to their region's managers (`escalated_at`, an audit entry); each is escalated once, whatever the number of app servers. 0: never.";
    surprise_reveal_interval_secs: u64 = 15, "XUNCHA_SURPRISE_REVEAL_INTERVAL_SECS", false,
        "How often sealed unannounced checks whose window has opened are revealed to their teams (each exactly once, whatever the number of app servers). 0: never (teams dispatch them).";
    surprise_recent_check_months: u32 = 12, "XUNCHA_SURPRISE_RECENT_CHECK_MONTHS", false,
        "A draw does not put an inspector on a unit they checked (were on an assignment of) within this many months before the window.";
    risk_recent_complaint_months: u32 = 12, "XUNCHA_RISK_RECENT_COMPLAINT_MONTHS", false,
        "A unit with a substantiated complaint within this many months is flagged `recent_complaint`.";
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in self.describe() {
            m.entry(&k, &v);
        }
        m.finish()
    }
}

/// Variables that start with `XUNCHA_` but are not settings, and are fine.
const OTHER_VARS: &[&str] = &[
    "XUNCHA_CONFIG",
    "XUNCHA_DATABASE_URL",
    "XUNCHA_TEST_DATABASE_URL",
    "XUNCHA_TEST_REQUIRE_POSTGRES",
];

impl Config {
    /// Defaults, then `file` (TOML), then the environment `vars`. Returns warnings to log
    /// (unknown `XUNCHA_*` variables) once logging is up.
    pub fn load(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, Vec<String>), String> {
        let mut cfg = Config::default();
        let mut warnings = Vec::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| format!("config file {}: {e}", path.display()))?;
            for (key, value) in table {
                if !cfg.set(&key, Raw::Toml(value))? {
                    return Err(format!(
                        "config file {}: unknown setting `{key}`",
                        path.display()
                    ));
                }
            }
        }
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        // XUNCHA_DATABASE_URL first so that DATABASE_URL, the documented name, wins.
        for (name, value) in &vars {
            if name == "XUNCHA_DATABASE_URL" {
                cfg.set("database_url", Raw::Text(value.clone()))?;
            }
        }
        for (name, value) in &vars {
            if let Some((key, ..)) = SETTINGS.iter().find(|(_, env, ..)| env == name) {
                cfg.set(key, Raw::Text(value.clone()))?;
            } else if name.starts_with("XUNCHA_") && !OTHER_VARS.contains(&name.as_str()) {
                warnings.push(format!("ignoring unknown environment variable {name}"));
            }
        }
        Ok((cfg, warnings))
    }

    /// Checks every value; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        self.bind_addr()?;
        crate::db::Target::parse(&self.database_url, Path::new(&self.data_dir))
            .map_err(|e| format!("setting `database_url`: {e}"))?;
        if self.data_dir.trim().is_empty() {
            return Err("setting `data_dir`: must not be empty".into());
        }
        tracing_subscriber::EnvFilter::try_new(&self.log)
            .map_err(|e| format!("setting `log`: {e}"))?;
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(format!(
                "setting `log_format`: `{}` is not `text` or `json`",
                self.log_format
            ));
        }
        check_range("workers", self.workers as u64, 0, 1024)?;
        check_range("db_pool_size", self.db_pool_size as u64, 1, 1000)?;
        check_range("http_keep_alive_secs", self.http_keep_alive_secs, 0, 3600)?;
        check_range(
            "db_connect_timeout_ms",
            self.db_connect_timeout_ms,
            100,
            600_000,
        )?;
        check_range("db_busy_timeout_ms", self.db_busy_timeout_ms, 0, 600_000)?;
        check_range("max_import_bytes", self.max_import_bytes, 1024, 1 << 40)?;
        check_range(
            "import_max_row_errors",
            self.import_max_row_errors as u64,
            1,
            100_000,
        )?;
        crate::registry::risk::RiskRules::from_config(self)?;
        check_range(
            "sync_tombstone_retention_days",
            self.sync_tombstone_retention_days,
            180,
            36_500,
        )?;
        check_range("auth_cache_secs", self.auth_cache_secs, 0, 3600)?;
        check_range("max_upload_bytes", self.max_upload_bytes, 1024, 1 << 32)?;
        check_range(
            "max_image_pixels",
            self.max_image_pixels,
            1_000_000,
            400_000_000,
        )?;
        check_range("upload_expiry_hours", self.upload_expiry_hours, 1, 24 * 30)?;
        check_range(
            "max_open_uploads_per_user",
            self.max_open_uploads_per_user,
            1,
            10_000,
        )?;
        if self.upload_sweep_interval_secs != 0 {
            check_range(
                "upload_sweep_interval_secs",
                self.upload_sweep_interval_secs,
                60,
                7 * 86_400,
            )?;
        }
        if self.overdue_check_interval_secs != 0 {
            check_range(
                "overdue_check_interval_secs",
                self.overdue_check_interval_secs,
                1,
                86_400,
            )?;
        }
        if self.surprise_reveal_interval_secs != 0 {
            check_range(
                "surprise_reveal_interval_secs",
                self.surprise_reveal_interval_secs,
                1,
                3600,
            )?;
        }
        check_range(
            "surprise_recent_check_months",
            u64::from(self.surprise_recent_check_months),
            0,
            120,
        )?;
        check_range("sync_row_cache_mb", self.sync_row_cache_mb, 0, 4096)?;
        check_range("sync_prefetch_pages", self.sync_prefetch_pages, 0, 1024)?;
        check_range("sync_page_connections", self.sync_page_connections, 1, 2)?;
        if self.cluster_poll_ms != 0 {
            check_range("cluster_poll_ms", self.cluster_poll_ms, 10, 60_000)?;
        }
        if self.sync_prune_interval_secs != 0 {
            check_range(
                "sync_prune_interval_secs",
                self.sync_prune_interval_secs,
                60,
                7 * 86_400,
            )?;
        }
        if self.risk_refresh_interval_secs != 0 {
            check_range(
                "risk_refresh_interval_secs",
                self.risk_refresh_interval_secs,
                60,
                7 * 86_400,
            )?;
        }
        check_range(
            "risk_old_elevator_years",
            self.risk_old_elevator_years as u64,
            1,
            100,
        )?;
        check_range(
            "risk_recent_accident_years",
            self.risk_recent_accident_years as u64,
            1,
            50,
        )?;
        check_range(
            "risk_recent_complaint_months",
            self.risk_recent_complaint_months as u64,
            1,
            600,
        )?;
        if !matches!(
            self.sqlite_synchronous.to_ascii_uppercase().as_str(),
            "FULL" | "NORMAL" | "EXTRA"
        ) {
            return Err(format!(
                "setting `sqlite_synchronous`: `{}` is not FULL, NORMAL or EXTRA",
                self.sqlite_synchronous
            ));
        }
        check_range(
            "access_token_ttl_secs",
            self.access_token_ttl_secs,
            30,
            86_400,
        )?;
        check_range(
            "refresh_token_ttl_days",
            self.refresh_token_ttl_days,
            1,
            365,
        )?;
        if let Some(k) = &self.token_signing_key
            && k.len() < 32
        {
            return Err("setting `token_signing_key`: must be at least 32 characters".into());
        }
        if let Some(p) = &self.admin_password {
            crate::auth::password::check_policy(p)
                .map_err(|e| format!("setting `admin_password`: {e}"))?;
        }
        // OWASP's argon2id floor: m=19456 KiB with t=2, or the equivalent trade-offs down to
        // m=7168 KiB with t=5. Weaker settings are refused, not warned about.
        check_range(
            "argon2_memory_kib",
            self.argon2_memory_kib as u64,
            7168,
            4_194_304,
        )?;
        check_range("argon2_iterations", self.argon2_iterations as u64, 1, 100)?;
        check_range("argon2_parallelism", self.argon2_parallelism as u64, 1, 64)?;
        if (self.argon2_memory_kib as u64) * (self.argon2_iterations as u64) < 36_864 {
            return Err(
                "settings `argon2_memory_kib` × `argon2_iterations`: below OWASP's minimum (19456 KiB × 2)"
                    .into(),
            );
        }
        check_range(
            "argon2_max_concurrent",
            self.argon2_max_concurrent as u64,
            0,
            1024,
        )?;
        check_range(
            "login_max_failures_per_account",
            self.login_max_failures_per_account as u64,
            1,
            1000,
        )?;
        check_range(
            "login_max_failures_per_address",
            self.login_max_failures_per_address as u64,
            1,
            100_000,
        )?;
        check_range(
            "login_failure_window_secs",
            self.login_failure_window_secs,
            1,
            86_400,
        )?;
        check_range("login_lockout_secs", self.login_lockout_secs, 1, 86_400)?;
        check_range(
            "max_json_body_bytes",
            self.max_json_body_bytes as u64,
            1024,
            64 << 20,
        )?;
        check_range(
            "compress_min_bytes",
            self.compress_min_bytes as u64,
            0,
            1 << 30,
        )?;
        self.trusted_proxy_addrs()?;
        check_range("shutdown_timeout_secs", self.shutdown_timeout_secs, 0, 3600)?;
        Ok(())
    }

    pub fn bind_addr(&self) -> Result<SocketAddr, String> {
        self.bind
            .parse()
            .map_err(|_| format!("setting `bind`: `{}` is not an address:port", self.bind))
    }

    pub fn trusted_proxy_addrs(&self) -> Result<Vec<IpAddr>, String> {
        self.trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<IpAddr>()
                    .map_err(|_| format!("setting `trusted_proxies`: `{p}` is not an IP address"))
            })
            .collect()
    }

    pub fn blob_store_dir(&self) -> PathBuf {
        if self.blob_store_dir.trim().is_empty() {
            self.data_dir().join("blobs")
        } else {
            PathBuf::from(&self.blob_store_dir)
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        PathBuf::from(&self.data_dir)
    }

    pub fn db_target(&self) -> Result<crate::db::Target, String> {
        crate::db::Target::parse(&self.database_url, &self.data_dir())
    }

    pub fn pool_options(&self) -> crate::db::PoolOptions {
        crate::db::PoolOptions {
            max_size: self.db_pool_size,
            connect_timeout: Duration::from_millis(self.db_connect_timeout_ms),
            busy_timeout: Duration::from_millis(self.db_busy_timeout_ms),
            sqlite_synchronous: self.sqlite_synchronous.to_ascii_uppercase(),
        }
    }

    pub fn effective_workers(&self) -> usize {
        if self.workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            self.workers
        }
    }
}

fn check_range(name: &str, v: u64, lo: u64, hi: u64) -> Result<(), String> {
    if v < lo || v > hi {
        return Err(format!("setting `{name}`: {v} is outside {lo}..={hi}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn env_overrides_file_and_names_bad_values() {
        let dir = std::env::temp_dir().join(format!("xuncha-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("x.toml");
        std::fs::write(&file, "bind = \"0.0.0.0:9000\"\ndb_pool_size = 4\n").unwrap();
        let (cfg, warnings) = Config::load(
            Some(&file),
            vars(&[("XUNCHA_DB_POOL_SIZE", "8"), ("XUNCHA_NOPE", "1")]),
        )
        .unwrap();
        assert_eq!(cfg.bind, "0.0.0.0:9000");
        assert_eq!(cfg.db_pool_size, 8);
        assert_eq!(warnings.len(), 1);

        let err = Config::load(None, vars(&[("XUNCHA_DB_POOL_SIZE", "lots")])).unwrap_err();
        assert!(err.contains("db_pool_size"), "{err}");

        std::fs::write(&file, "colour = \"blue\"\n").unwrap();
        let err = Config::load(Some(&file), vars(&[])).unwrap_err();
        assert!(err.contains("colour"), "{err}");

        let (cfg, _) = Config::load(None, vars(&[("XUNCHA_ARGON2_MEMORY_KIB", "8192")])).unwrap();
        assert!(cfg.validate().unwrap_err().contains("argon2"));
        let (cfg, _) = Config::load(None, vars(&[("DATABASE_URL", "mysql://x")])).unwrap();
        assert!(cfg.validate().unwrap_err().contains("database_url"));
    }

    #[test]
    fn secrets_are_masked() {
        let cfg = Config {
            token_signing_key: Some("k".repeat(40)),
            ..Config::default()
        };
        let text = format!("{cfg:?}");
        assert!(!text.contains("kkkk"), "{text}");
    }
}
