//! Builds the application: state, middleware, routes, and the HTTP server.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Compress, ErrorHandlers, from_fn};
use actix_web::{App, HttpResponse, HttpServer, Route, web};

use crate::auth::password::Hasher;
use crate::auth::tokens::{TokenKeys, random_token};
use crate::config::Config;
use crate::db::{Db, meta};
use crate::error::ApiError;
use crate::http::middleware;
use crate::time::Clock;

/// Everything a request handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub tokens: Arc<TokenKeys>,
    pub hasher: Arc<Hasher>,
    pub proxies: Arc<Vec<IpAddr>>,
    pub clock: Clock,
    /// Identifies this database in sync cursors (a cursor from another database resets).
    pub database_id: Arc<String>,
    /// Signs sync cursors (HMAC), shared by every server on the database.
    pub cursor_key: Arc<Vec<u8>>,
    /// Verified sessions (see `auth::cache`).
    pub sessions: Arc<crate::auth::cache::SessionCache>,
    /// `last_mutation_seq` of caught-up devices (see `sync::caught_up`).
    pub caught_up: Arc<crate::sync::caught_up::CaughtUp>,
    /// Rows as pulls send them, shared by devices (see `sync::rowcache`).
    pub row_cache: Arc<crate::sync::rowcache::RowCache>,
    /// Pull pages read ahead (see `sync::prefetch`).
    pub prefetch: Arc<crate::sync::prefetch::Prefetch>,
    /// Where evidence photos are stored.
    pub blobs: crate::evidence::blobs::BlobStore,
    /// Completed photos processed at once (decode, renditions, copy to the store): one per
    /// core, so that memory stays bounded however many uploads finish together.
    pub ingest_permits: Arc<tokio::sync::Semaphore>,
    /// The threads that hash, decode and render completed photos.
    pub ingest_pool: Arc<crate::evidence::pool::IngestPool>,
}

/// One route: method, path (actix and OpenAPI share the `{param}` syntax) and its handler.
/// The same table registers the routes and feeds the test that checks the API spec.
pub struct RouteDef {
    pub method: Method,
    pub path: &'static str,
    pub route: fn() -> Route,
}

impl RouteDef {
    pub fn get(path: &'static str, route: fn() -> Route) -> Self {
        RouteDef {
            method: Method::GET,
            path,
            route,
        }
    }
    pub fn post(path: &'static str, route: fn() -> Route) -> Self {
        RouteDef {
            method: Method::POST,
            path,
            route,
        }
    }
    pub fn patch(path: &'static str, route: fn() -> Route) -> Self {
        RouteDef {
            method: Method::PATCH,
            path,
            route,
        }
    }
    pub fn head(path: &'static str, route: fn() -> Route) -> Self {
        RouteDef {
            method: Method::HEAD,
            path,
            route,
        }
    }
    pub fn options(path: &'static str, route: fn() -> Route) -> Self {
        RouteDef {
            method: Method::OPTIONS,
            path,
            route,
        }
    }
    pub fn delete(path: &'static str, route: fn() -> Route) -> Self {
        RouteDef {
            method: Method::DELETE,
            path,
            route,
        }
    }
}

/// Every route of the API.
pub fn route_table() -> Vec<RouteDef> {
    let mut routes = crate::http::health::routes();
    // The router tries routes in this order, matching the ones with `{…}` segments by regex:
    // the devices' hot path (pull, push) comes before the many parameterised routes.
    routes.extend(crate::sync::routes::routes());
    routes.extend(crate::auth::routes::routes());
    routes.extend(crate::registry::routes::routes());
    routes.extend(crate::work::routes::routes());
    routes.extend(crate::evidence::routes::routes());
    routes.extend(crate::audit::routes::routes());
    routes.extend(crate::surprise::routes::routes());
    routes
}

fn configure(cfg: &mut web::ServiceConfig) {
    let routes = route_table();
    let mut paths: Vec<&'static str> = Vec::new();
    for r in &routes {
        if !paths.contains(&r.path) {
            paths.push(r.path);
        }
    }
    for path in paths {
        let mut resource = web::resource(path);
        let mut methods: Vec<&str> = Vec::new();
        for r in routes.iter().filter(|r| r.path == path) {
            resource = resource.route((r.route)());
            methods.push(r.method.as_str());
        }
        // A 405 names the methods the path has (RFC 9110 §15.5.6: it must carry `Allow`).
        let allow = HeaderValue::from_str(&methods.join(", ")).ok();
        cfg.service(resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move {
                let mut res = HttpResponse::from_error(ApiError::MethodNotAllowed);
                if let Some(allow) = allow {
                    res.headers_mut().insert(header::ALLOW, allow);
                }
                res
            }
        })));
    }
}

/// Opens the database (running migrations), loads or creates the server's keys and, on an
/// empty database, the admin. Returns the state and the admin password if one was generated.
pub async fn init(config: Config) -> Result<(AppState, Option<String>), String> {
    init_with_clock(config, Clock::default()).await
}

/// [`init`] with a given clock (tests move it forward instead of waiting).
pub async fn init_with_clock(
    config: Config,
    clock: Clock,
) -> Result<(AppState, Option<String>), String> {
    config.validate()?;
    let config = Arc::new(config);
    let cfg = config.clone();
    tokio::task::spawn_blocking(move || init_blocking(cfg, clock))
        .await
        .map_err(|e| format!("start-up task failed: {e}"))?
}

fn init_blocking(config: Arc<Config>, clock: Clock) -> Result<(AppState, Option<String>), String> {
    let target = config.db_target()?;
    let db = Db::open(&target, config.pool_options())?;
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let database_id = meta::get_or_init(&mut conn, meta::DATABASE_ID, || {
        uuid::Uuid::new_v4().to_string()
    })
    .map_err(|e| format!("database: {e}"))?;
    let cursor_key = meta::get_or_init(&mut conn, meta::CURSOR_KEY, random_token)
        .map_err(|e| format!("database: {e}"))?;
    let key = match &config.token_signing_key {
        Some(k) => k.clone(),
        None => meta::get_or_init(&mut conn, meta::TOKEN_KEY, random_token)
            .map_err(|e| format!("database: {e}"))?,
    };
    let hasher = Arc::new(Hasher::new(&config)?);
    let admin_password = crate::auth::users::bootstrap_admin(
        &mut conn,
        &hasher,
        config.admin_password.as_deref(),
        clock.now(),
    )?;
    drop(conn);
    let auth_cache = Duration::from_secs(config.auth_cache_secs);
    let blobs = crate::evidence::blobs::BlobStore::from_config(&config)?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let row_cache_bytes = config.sync_row_cache_mb.saturating_mul(1 << 20) as usize;
    let prefetch_pages = usize::try_from(config.sync_prefetch_pages).unwrap_or(usize::MAX);
    let state = AppState {
        tokens: Arc::new(TokenKeys::new(key.as_bytes(), config.access_token_ttl_secs)),
        proxies: Arc::new(config.trusted_proxy_addrs()?),
        hasher,
        db,
        config,
        clock,
        database_id: Arc::new(database_id),
        cursor_key: Arc::new(cursor_key.into_bytes()),
        sessions: Arc::new(crate::auth::cache::SessionCache::new(auth_cache)),
        caught_up: Arc::default(),
        row_cache: Arc::new(crate::sync::rowcache::RowCache::new(row_cache_bytes)),
        prefetch: Arc::new(crate::sync::prefetch::Prefetch::new(prefetch_pages)),
        blobs,
        ingest_permits: Arc::new(tokio::sync::Semaphore::new(cores)),
        ingest_pool: Arc::new(crate::evidence::pool::IngestPool::new(cores)),
    };
    Ok((state, admin_password))
}

/// Background jobs of this server, on its runtime. Each is safe with several app servers on
/// one database (they claim their turn in the database) and idempotent.
fn start_jobs(state: &web::Data<AppState>) {
    let c = &state.config;
    if c.cluster_poll_ms != 0 {
        let state = state.clone();
        let every = Duration::from_millis(c.cluster_poll_ms);
        actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = state.db.poll_watch().await {
                    tracing::debug!(error = %e, "cluster poll failed; retrying");
                }
            }
        });
    }
    spawn_periodic(
        state,
        c.sync_prune_interval_secs,
        "sync prune",
        |state, every| {
            let keep = state.config.sync_tombstone_retention_days;
            let now = state.clock.now();
            Box::new(move |conn| {
                crate::sync::prune::prune_job(conn, now, keep, every)
                    .map(|p| p.map(|p| format!("{p:?}")))
            })
        },
    );
    spawn_periodic(
        state,
        c.upload_sweep_interval_secs,
        "upload sweep",
        |state, every| {
            let now = state.clock.now();
            let dir = crate::evidence::uploads::upload_dir(state);
            Box::new(move |conn| {
                let until = now + chrono::Duration::seconds(every as i64 - 1);
                match crate::db::meta::claim_job(conn, "upload_sweep", now, until)? {
                    false => Ok(None),
                    true => crate::evidence::uploads::sweep(conn, &dir, now)
                        .map(|n| Some(format!("{n} expired uploads removed"))),
                }
            })
        },
    );
    spawn_periodic(
        state,
        c.surprise_reveal_interval_secs,
        "surprise reveal",
        |state, _| {
            let now = state.clock.now();
            Box::new(move |conn| {
                crate::surprise::service::reveal_due(conn, now)
                    .map(|n| (n > 0).then(|| format!("{n} unannounced checks revealed")))
            })
        },
    );
    spawn_periodic(
        state,
        c.overdue_check_interval_secs,
        "overdue escalation",
        |state, _| {
            let now = state.clock.now();
            let rules = crate::registry::risk::RiskRules::from_config(&state.config);
            Box::new(move |conn| {
                let rules = rules.map_err(ApiError::internal)?;
                crate::work::escalation::escalate_overdue(conn, now, &rules)
                    .map(|n| (n > 0).then(|| format!("{n} overdue hazards escalated")))
            })
        },
    );
    spawn_periodic(
        state,
        c.risk_refresh_interval_secs,
        "risk refresh",
        |state, every| {
            let now = state.clock.now();
            let rules = crate::registry::risk::RiskRules::from_config(&state.config);
            Box::new(move |conn| {
                let rules = rules.map_err(ApiError::internal)?;
                crate::registry::facts::refresh_job(conn, now, every, &rules)
                    .map(|s| s.map(|s| format!("{s:?}")))
            })
        },
    );
}

type JobRun = Box<dyn FnOnce(&mut crate::db::DbConn) -> Result<Option<String>, ApiError> + Send>;

/// Runs `job` every `every` seconds (never when 0) on a blocking thread; it answers `None`
/// when another app server has this interval's turn.
fn spawn_periodic(
    state: &web::Data<AppState>,
    every: u64,
    name: &'static str,
    job: fn(&AppState, u64) -> JobRun,
) {
    if every == 0 {
        return;
    }
    let state = state.clone();
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(every));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let started = std::time::Instant::now();
            let run = job(&state, every);
            match state.db.run(run).await {
                Ok(Some(summary)) => tracing::info!(
                    job = name,
                    ms = started.elapsed().as_millis() as u64,
                    %summary,
                    "job done"
                ),
                Ok(None) => tracing::debug!(job = name, "another server has this turn"),
                Err(e) => {
                    tracing::warn!(job = name, error = %e, "job failed; retrying next interval")
                }
            }
        }
    });
}

/// A server bound and ready to be awaited.
pub struct Running {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    pub server: Server,
}

/// Builds the HTTP server on `listener`.
pub fn serve(state: AppState, listener: TcpListener) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    let workers = state.config.effective_workers();
    let shutdown = state.config.shutdown_timeout_secs;
    let keep_alive = match state.config.http_keep_alive_secs {
        0 => actix_web::http::KeepAlive::Disabled,
        s => actix_web::http::KeepAlive::Timeout(Duration::from_secs(s)),
    };
    let data = web::Data::new(state);
    let jobs = data.clone();
    let server =
        HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    ApiError::bad_request("invalid_query", e.to_string()).into()
                }))
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|_, _| ApiError::not_found("resource").into()),
                )
                .app_data(web::JsonConfig::default().error_handler(|e, _| {
                    ApiError::bad_request("malformed_json", e.to_string()).into()
                }))
                .configure(configure)
                .default_service(web::to(|| async {
                    HttpResponse::from_error(ApiError::NotFound {
                        message: "no such route".into(),
                    })
                }))
                .wrap(ErrorHandlers::new().default_handler(middleware::envelope))
                .wrap(from_fn(middleware::reject_nul_query))
                .wrap(from_fn(middleware::compress_gate))
                .wrap(Compress::default())
                .wrap(from_fn(middleware::request_log))
        })
        .workers(workers)
        .shutdown_timeout(shutdown)
        .client_request_timeout(Duration::from_secs(30))
        .keep_alive(keep_alive)
        // Without TCP_NODELAY a response written in two segments waits for the client's delayed
        // ACK (~40 ms) under Nagle; measured on this machine as 2.0k vs 10.5k req/s.
        .on_connect(|conn, _ext| {
            if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>()
                && let Err(e) = tcp.set_nodelay(true)
            {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
        })
        .listen(listener)?
        .run();
    let handle = server.handle();
    start_jobs(&jobs);
    Ok(Running {
        addr,
        handle,
        server,
    })
}
