//! Storage: one connection type over SQLite and PostgreSQL, the pool, migrations and the one
//! write path to synced tables ([`sync_tx`]). Nothing outside this module knows which engine
//! runs; where SQL differs between engines, the engine-specific versions live here.

pub mod meta;
pub mod schema;
mod sync;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::{PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

pub use sync::{
    ScopeKey, SyncBatch, SyncTx, Version, head, lock_device_seq, read_snapshot, sync_batch,
    sync_tx, write_tx,
};
pub use watch::{Watch, note_auth_change};

/// The one connection type every query runs on.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

/// Runs `$body` with `$c` bound to the engine's own connection type. For the few places where
/// the query builder is the same but must be compiled per backend (upserts, `RETURNING`).
#[macro_export]
#[doc(hidden)]
macro_rules! with_engine {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Sqlite($c) => $body,
            $crate::db::DbConn::Pg($c) => $body,
        }
    };
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Which engine, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Target {
    /// Reads `DATABASE_URL`: empty means the embedded default (a SQLite file under the data
    /// directory); `sqlite://PATH`, `sqlite:PATH` or a plain file path mean SQLite;
    /// `postgres://` or `postgresql://` mean PostgreSQL. Any other scheme is refused.
    pub fn parse(url: &str, data_dir: &Path) -> Result<Target, String> {
        let url = url.trim();
        if url.is_empty() {
            return Ok(Target::Sqlite(data_dir.join("xuncha.db")));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Target::Postgres(url.to_string()));
        }
        let path = if let Some(rest) = url.strip_prefix("sqlite://") {
            rest
        } else if let Some(rest) = url.strip_prefix("sqlite:") {
            rest
        } else if let Some((scheme, _)) = url.split_once("://") {
            return Err(format!(
                "unknown database URL scheme `{scheme}://`: use postgres://…, sqlite://PATH or a file path"
            ));
        } else {
            url
        };
        if path.is_empty() || path == ":memory:" || path.starts_with("file::memory:") {
            return Err(
                "an in-memory SQLite database cannot be shared by the connection pool: give a file path"
                    .into(),
            );
        }
        Ok(Target::Sqlite(PathBuf::from(path)))
    }

    pub fn engine(&self) -> &'static str {
        match self {
            Target::Sqlite(_) => "sqlite",
            Target::Postgres(_) => "postgres",
        }
    }

    /// For logs: never the password.
    pub fn redacted(&self) -> String {
        match self {
            Target::Sqlite(p) => format!("sqlite {}", p.display()),
            Target::Postgres(url) => format!("postgres {}", redact_url(url)),
        }
    }
}

fn redact_url(url: &str) -> String {
    // postgres://user:secret@host/db -> postgres://user:***@host/db
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((creds, host)) = rest.split_once('@')
        && let Some((user, _)) = creds.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

/// Pool settings that matter per engine.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: u32,
    pub connect_timeout: Duration,
    pub busy_timeout: Duration,
    pub sqlite_synchronous: String,
}

/// r2d2 manager that opens the engine named by the target (never guessing from the URL the
/// way a generic multi-connection `establish` would) and sets each SQLite connection up.
#[derive(Debug)]
pub struct Manager {
    target: Target,
    opts: PoolOptions,
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        match &self.target {
            Target::Sqlite(path) => {
                let mut c = SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(r2d2::Error::ConnectionError)?;
                // WAL: readers never block the writer; foreign keys are off by default in
                // SQLite; the busy timeout makes a second writer wait instead of failing.
                // Savepoint journals (a sync batch nests one per mutation) stay in memory:
                // as temporary files they were a write(2) per page per mutation.
                c.batch_execute(&format!(
                    "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                     PRAGMA temp_store = MEMORY; \
                     PRAGMA busy_timeout = {}; PRAGMA synchronous = {};",
                    self.opts.busy_timeout.as_millis(),
                    self.opts.sqlite_synchronous
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConn::Sqlite(c))
            }
            Target::Postgres(url) => {
                let mut c = PgConnection::establish(url).map_err(r2d2::Error::ConnectionError)?;
                // diesel prepares and caches statements; after five runs PostgreSQL may switch
                // to a generic plan made while a table was small (a sequential scan) and keep
                // it while the table grows, until autovacuum analyses it: a 300,000-row import
                // slowed quadratically (680 s), and a re-import right after one took ~3 s per
                // 500-row lookup. Custom plans see the table as it is. The price, measured with
                // scripts/bench.sh: GET /api/v1/me at ~9k instead of ~18k req/s on PostgreSQL.
                c.batch_execute(
                    "SET TIME ZONE 'UTC'; SET application_name = 'xuncha'; \
                     SET plan_cache_mode = force_custom_plan;",
                )
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConn::Pg(c))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        match conn {
            DbConn::Sqlite(c) => c.ping().map_err(r2d2::Error::QueryError),
            DbConn::Pg(c) => c.ping().map_err(r2d2::Error::QueryError),
        }
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        match conn {
            DbConn::Sqlite(c) => c.is_broken(),
            DbConn::Pg(c) => c.is_broken(),
        }
    }
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConn = r2d2::PooledConnection<Manager>;

/// The database handle kept in the app state.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    engine: &'static str,
    /// One permit per pooled connection. Requests queue here, first come first served,
    /// before they take a blocking thread: r2d2's own wait is not fair, and under load
    /// some requests starved behind later ones (a PostgreSQL p99 of ~400 ms at a 2 ms median).
    permits: Arc<Semaphore>,
    /// The head and auth epoch as this server knows them (see [`watch`]).
    watch: Arc<Watch>,
    /// Connections handed out by [`Db::try_aside`] so far.
    asides: Arc<std::sync::atomic::AtomicU64>,
}

impl Db {
    /// Opens the pool (creating the SQLite file and its directory if needed) and runs the
    /// pending migrations. Blocking: call from a blocking context.
    pub fn open(target: &Target, opts: PoolOptions) -> Result<Db, String> {
        if let Target::Sqlite(path) = target
            && let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create the data directory {}: {e}", dir.display()))?;
        }
        let manager = Manager {
            target: target.clone(),
            opts: opts.clone(),
        };
        let pool = r2d2::Pool::builder()
            .max_size(opts.max_size)
            .min_idle(Some(1))
            .connection_timeout(opts.connect_timeout)
            .test_on_check_out(false)
            .build(manager)
            .map_err(|e| format!("cannot open the database ({}): {e}", target.redacted()))?;
        let db = Db {
            pool,
            engine: target.engine(),
            permits: Arc::new(Semaphore::new(opts.max_size as usize)),
            watch: Arc::new(Watch::new()),
            asides: Arc::default(),
        };
        let mut conn = db.pool.get().map_err(|e| {
            format!(
                "cannot connect to the database ({}): {e}",
                target.redacted()
            )
        })?;
        run_migrations(&mut conn).map_err(|e| format!("database migration failed: {e}"))?;
        Ok(db)
    }

    pub fn engine(&self) -> &'static str {
        self.engine
    }

    pub fn watch(&self) -> &Watch {
        &self.watch
    }

    /// Reads what other servers may have changed (see [`watch`]).
    pub async fn poll_watch(&self) -> Result<(), ApiError> {
        let polled = self.run(|conn| Ok(watch::poll(conn)?)).await?;
        self.watch.observe(polled);
        Ok(())
    }

    /// A connection for blocking code (CLI commands, jobs). Pool exhaustion or a database
    /// that does not answer is `ApiError::Unavailable`.
    pub fn get(&self) -> Result<PooledConn, ApiError> {
        self.pool
            .get()
            .map_err(|e| ApiError::unavailable(e.to_string()))
    }

    /// How many connections [`Db::try_aside`] has handed out.
    pub fn asides_taken(&self) -> u64 {
        self.asides.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Connections no request holds or waits for right now.
    pub fn free_connections(&self) -> usize {
        self.permits.available_permits()
    }

    /// A second connection for blocking code that holds one already, for reads that need no
    /// snapshot of their own; taken without waiting, and only while more than `keep_free`
    /// connections are free, so that it never delays a request. `None` otherwise.
    pub fn try_aside(&self, keep_free: usize) -> Option<Aside> {
        if self.permits.available_permits() <= keep_free {
            return None;
        }
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        // The permit is ours, so the pool has a connection for it (or room to open one);
        // the short wait only covers a database that does not answer.
        let conn = self.pool.get_timeout(ASIDE_WAIT).ok()?;
        self.asides
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(Aside {
            conn,
            _permit: permit,
        })
    }

    /// Runs `f` with a pooled connection on the blocking thread pool, never on an async worker.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let wait = self.pool.connection_timeout();
        let permit = tokio::time::timeout(wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| ApiError::unavailable("timed out waiting for a database connection"))?
            .map_err(ApiError::internal_from)?;
        let pool = self.pool.clone();
        let watch = self.watch.clone();
        actix_web::web::block(move || {
            let _permit = permit;
            let mut conn = pool
                .get()
                .map_err(|e| ApiError::unavailable(e.to_string()))?;
            // Notes left by blocking code that ran on this thread outside `run` are not ours.
            watch::take_notes();
            let out = f(&mut conn);
            // After the closure: its transactions have committed (or rolled back).
            watch.apply_notes();
            out
        })
        .await
        .map_err(|e| ApiError::internal(format!("blocking task failed: {e}")))?
    }
}

/// How long [`Db::try_aside`] waits for a connection it holds a permit for.
const ASIDE_WAIT: Duration = Duration::from_millis(200);

/// A connection from [`Db::try_aside`], back to the pool when dropped.
pub struct Aside {
    conn: PooledConn,
    _permit: OwnedSemaphorePermit,
}

impl Aside {
    pub fn conn(&mut self) -> &mut DbConn {
        &mut self.conn
    }
}

/// Runs pending migrations. On PostgreSQL an advisory lock makes app servers that start
/// together take turns instead of racing on the same DDL.
pub fn run_migrations(conn: &mut DbConn) -> Result<(), String> {
    const MIGRATION_LOCK: i64 = 0x7875_6e63_6861; // "xuncha"
    match conn {
        DbConn::Sqlite(c) => c
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        DbConn::Pg(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                .map_err(|e| e.to_string())?;
            let result = c
                .run_pending_migrations(PG_MIGRATIONS)
                .map(|_| ())
                .map_err(|e| e.to_string());
            let unlock = c
                .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
                .map_err(|e| e.to_string());
            result.and(unlock)
        }
    }
}

/// After a bulk load (the demo city): on PostgreSQL, `VACUUM (ANALYZE)`, so that the planner
/// knows the tables' sizes and the visibility map lets the sync's page reads be index-only
/// scans (on a table nobody vacuumed yet each of them visits the heap: the 3rd page of a
/// district's equipment took 25 ms, 4.3 ms after VACUUM, with the keyset then in use).
/// Autovacuum gets there too, some minutes later.
/// On SQLite nothing: its plans do not depend on statistics here.
pub fn settle_after_bulk_load(conn: &mut DbConn) -> QueryResult<()> {
    match conn {
        DbConn::Sqlite(_) => Ok(()),
        DbConn::Pg(c) => c.batch_execute("VACUUM (ANALYZE)"),
    }
}

/// Is the database answering? For `/readyz`.
pub fn ping(conn: &mut DbConn) -> Result<(), ApiError> {
    match conn {
        DbConn::Sqlite(c) => c.ping(),
        DbConn::Pg(c) => c.ping(),
    }
    .map_err(|e| ApiError::unavailable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_from_urls() {
        let dir = Path::new("/data");
        assert_eq!(
            Target::parse("", dir),
            Ok(Target::Sqlite("/data/xuncha.db".into()))
        );
        assert_eq!(
            Target::parse("sqlite:///tmp/x.db", dir),
            Ok(Target::Sqlite("/tmp/x.db".into()))
        );
        assert_eq!(
            Target::parse("sqlite:x.db", dir),
            Ok(Target::Sqlite("x.db".into()))
        );
        assert_eq!(
            Target::parse("./x.db", dir),
            Ok(Target::Sqlite("./x.db".into()))
        );
        assert!(matches!(
            Target::parse("postgresql://u@h/db", dir),
            Ok(Target::Postgres(_))
        ));
        let err = Target::parse("mysql://root@localhost/x", dir).unwrap_err();
        assert!(err.contains("mysql://"), "{err}");
        assert!(Target::parse("sqlite::memory:", dir).is_err());
    }

    #[test]
    fn passwords_are_not_logged() {
        let t = Target::Postgres("postgres://app:s3cret@db:5432/x".into());
        assert_eq!(t.redacted(), "postgres postgres://app:***@db:5432/x");
    }
}
