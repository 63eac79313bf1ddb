//! Test harness: the real app (same start-up path as `xuncha serve`) on 127.0.0.1:0 over a
//! fresh database per test: a SQLite file in a temp dir, or a new PostgreSQL database
//! (created from XUNCHA_TEST_DATABASE_URL's server, default the local one, and dropped after).
//! Every response the helpers receive is checked against api-spec/openapi.yaml.

#![allow(dead_code)]

pub mod spec;

use std::time::Duration;

use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use xuncha::config::Config;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const SIGNING_KEY: &str = "test-signing-key-0123456789abcdef0123456789";
pub const PASSWORD: &str = "user-password-123";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each listed `async fn name(app: TestApp)` once per backend, as
/// `<module>::sqlite::name` and `<module>::pg::name`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_rt::test]
                async fn $name() {
                    super::$name($crate::common::TestApp::spawn($crate::common::Backend::Sqlite).await).await
                }
            )*
        }
        mod pg {
            $(
                #[actix_rt::test]
                async fn $name() {
                    super::$name($crate::common::TestApp::spawn($crate::common::Backend::Postgres).await).await
                }
            )*
        }
    };
}

/// Like `both_backends!` for tests that start their own app(s) with custom settings: each
/// listed `async fn name(backend: Backend)` runs once per backend, as
/// `<module>::own::sqlite::name` and `<module>::own::pg::name`.
#[macro_export]
macro_rules! both_backends_raw {
    ($($name:ident),* $(,)?) => {
        mod own {
            mod sqlite {
                $(
                    #[actix_rt::test]
                    async fn $name() {
                        super::super::$name($crate::common::Backend::Sqlite).await
                    }
                )*
            }
            mod pg {
                $(
                    #[actix_rt::test]
                    async fn $name() {
                        super::super::$name($crate::common::Backend::Postgres).await
                    }
                )*
            }
        }
    };
}

/// A database made for one test and removed after it.
pub struct TestDb {
    pub backend: Backend,
    /// The URL the app uses.
    pub url: String,
    dir: std::path::PathBuf,
    pg_admin_url: Option<String>,
    pg_name: Option<String>,
    /// Whether dropping this removes the database (false for a second server's handle).
    owner: bool,
}

fn pg_server_url() -> String {
    std::env::var("XUNCHA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `postgres://u@h:p/db?x` with the database name replaced.
fn with_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{}", &base[..host_end], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("xuncha-test-{tag}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        match backend {
            Backend::Sqlite => TestDb {
                backend,
                url: format!("sqlite://{}", dir.join("test.db").display()),
                dir,
                pg_admin_url: None,
                pg_name: None,
                owner: true,
            },
            Backend::Postgres => {
                let admin = pg_server_url();
                let prefix = std::env::var("XUNCHA_TEST_DB_PREFIX").unwrap_or_else(|_| "xt".into());
                let name = format!("{prefix}_{}", &tag[..16]);
                let mut conn = PgConnection::establish(&admin).unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL tests need a server: {e}. Set XUNCHA_TEST_DATABASE_URL, or run \
                         scripts/test.sh, which skips the PostgreSQL half when none answers."
                    )
                });
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .expect("create test database");
                TestDb {
                    backend,
                    url: with_db_name(&admin, &name),
                    dir,
                    pg_admin_url: Some(admin),
                    pg_name: Some(name),
                    owner: true,
                }
            }
        }
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The same database for a second app server; dropping it leaves the database alone.
    pub fn beside(&self) -> TestDb {
        TestDb {
            backend: self.backend,
            url: self.url.clone(),
            dir: self.dir.clone(),
            pg_admin_url: None,
            pg_name: None,
            owner: false,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        if let (Some(admin), Some(name)) = (&self.pg_admin_url, &self.pg_name)
            && let Ok(mut conn) = PgConnection::establish(admin)
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The configuration tests run with: a known signing key (so tests can forge tokens), a
/// known admin password, one worker, a small pool.
pub fn test_config(db: &TestDb) -> Config {
    Config {
        bind: "127.0.0.1:0".into(),
        database_url: db.url.clone(),
        data_dir: db.data_dir().display().to_string(),
        workers: 1,
        db_pool_size: 4,
        token_signing_key: Some(SIGNING_KEY.into()),
        admin_password: Some(ADMIN_PASSWORD.into()),
        shutdown_timeout_secs: 0,
        // Tests run the job themselves when they test it.
        risk_refresh_interval_secs: 0,
        sync_prune_interval_secs: 0,
        overdue_check_interval_secs: 0,
        surprise_reveal_interval_secs: 0,
        ..Config::default()
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub backend: Backend,
    /// The server's clock: `app.clock.advance(…)` moves time for the server.
    pub clock: xuncha::time::Clock,
    handle: actix_web::dev::ServerHandle,
    server_db: xuncha::db::Db,
    /// The server's read-ahead of pull pages.
    pub prefetch: std::sync::Arc<xuncha::sync::prefetch::Prefetch>,
    // Dropped after the server is told to stop.
    pub db: TestDb,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop command at once; the workers wind down on their own threads.
        drop(self.handle.stop(false));
    }
}

#[derive(Debug)]
pub struct BinResp {
    pub status: u16,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
    /// The JSON body, if it was JSON.
    pub body: Value,
}

impl BinResp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> &Self {
        self.expect(status);
        assert_eq!(
            self.error_code(),
            code,
            "unexpected error code; body: {}",
            self.text
        );
        assert!(
            self.body["error"]["message"].is_string(),
            "no message: {}",
            self.text
        );
        self
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_on_with(TestDb::new(backend), adjust).await
    }

    /// Starts the app on a test database that the test has already filled (directly, through
    /// the library), instead of a new one.
    pub async fn spawn_on(db: TestDb) -> TestApp {
        Self::spawn_on_with(db, |_| {}).await
    }

    pub async fn spawn_on_with(db: TestDb, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let backend = db.backend;
        let mut cfg = test_config(&db);
        adjust(&mut cfg);
        let clock = xuncha::time::Clock::default();
        let (state, generated) = xuncha::app::init_with_clock(cfg, clock.clone())
            .await
            .expect("app init");
        assert!(generated.is_none(), "admin password was configured");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let handle_db = state.db.clone();
        let prefetch = state.prefetch.clone();
        let running = xuncha::app::serve(state, listener).expect("serve");
        actix_rt::spawn(running.server);
        TestApp {
            base: format!("http://{}", running.addr),
            client: client(),
            backend,
            clock,
            handle: running.handle,
            db,
            server_db: handle_db,
            prefetch,
        }
    }

    /// The server's own database pool, for running a job's function directly.
    pub fn server_db(&self) -> &xuncha::db::Db {
        &self.server_db
    }

    /// A second app server on this one's database (as behind a load balancer).
    pub async fn spawn_beside(&self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_on_with(self.db.beside(), adjust).await
    }

    /// Makes the server read what changed in the database behind its back (writes by another
    /// server or straight SQL) now, instead of at its next cluster poll.
    pub async fn settle(&self) {
        self.server_db.poll_watch().await.expect("cluster poll");
    }

    /// Sends a request; JSON `body` if given. Checks the response against the API spec.
    pub async fn req(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut rb = self
            .client
            .request(method.clone(), format!("{}{}", self.base, path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        self.send(method, path, rb).await
    }

    /// Like [`TestApp::send`] for answers that may be binary (photos): the body as bytes.
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        rb: reqwest::RequestBuilder,
    ) -> BinResp {
        let resp = rb.send().await.expect("request failed");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("response body").to_vec();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        spec::check_response(method.as_str(), path, status, &headers, &text, &body);
        BinResp {
            status,
            headers,
            bytes,
            body,
        }
    }

    /// Sends a prepared request and checks the answer against the spec.
    pub async fn send(&self, method: Method, path: &str, rb: reqwest::RequestBuilder) -> Resp {
        let resp = rb.send().await.expect("request failed");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("response body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        spec::check_response(method.as_str(), path, status, &headers, &text, &body);
        Resp {
            status,
            headers,
            text,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.req(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.req(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.req(Method::PATCH, path, Some(token), Some(body)).await
    }

    /// Pushes one mutation of `device` with sequence number `seq`; answers its result.
    pub async fn push_one(
        &self,
        token: &str,
        device: &str,
        seq: i64,
        name: &str,
        args: Value,
    ) -> Value {
        let r = self
            .post(
                "/api/v1/sync/push",
                token,
                serde_json::json!({"device_id": device,
                       "mutations": [{"seq": seq, "name": name, "args": args}]}),
            )
            .await;
        r.expect(200);
        r.body["results"][0].clone()
    }

    pub async fn login(&self, username: &str, password: &str, device: &str) -> Resp {
        self.req(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": username, "password": password, "device_id": device, "device_name": "test phone"})),
        )
        .await
    }

    /// Logs in and returns the whole token pair.
    pub async fn login_ok(&self, username: &str, password: &str, device: &str) -> Value {
        let r = self.login(username, password, device).await;
        r.expect(200);
        r.body
    }

    pub async fn token(&self, username: &str, password: &str) -> String {
        self.login_ok(username, password, "test-device").await["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    pub async fn admin_token(&self) -> String {
        self.token("admin", ADMIN_PASSWORD).await
    }

    /// Creates a user as `token` and returns it.
    pub async fn create_user(
        &self,
        token: &str,
        username: &str,
        role: &str,
        region: &str,
    ) -> Value {
        let mut body = json!({
            "username": username,
            "password": PASSWORD,
            "display_name": format!("{username} 检查员"),
            "role": role,
            "region_code": region,
        });
        if role == "unit" {
            body["unit_id"] = json!(uuid::Uuid::new_v4().to_string());
        }
        let r = self.post("/api/v1/users", token, body).await;
        r.expect(201);
        r.body
    }

    /// Creates a user (as admin) and logs it in; returns (user, access token).
    pub async fn user_with_token(
        &self,
        username: &str,
        role: &str,
        region: &str,
    ) -> (Value, String) {
        let admin = self.admin_token().await;
        let user = self.create_user(&admin, username, role, region).await;
        let token = self.token(username, PASSWORD).await;
        (user, token)
    }
}

/// A direct connection to a test app's database, for checking what the API cannot show.
pub enum Direct {
    Sqlite(diesel::SqliteConnection),
    Pg(PgConnection),
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

impl Direct {
    pub fn open(app: &TestApp) -> Direct {
        use diesel::connection::SimpleConnection;
        match app.backend {
            Backend::Sqlite => {
                let path = app.db.url.trim_start_matches("sqlite://");
                let mut c = diesel::SqliteConnection::establish(path).expect("open sqlite");
                c.batch_execute("PRAGMA busy_timeout = 5000;")
                    .expect("pragma");
                Direct::Sqlite(c)
            }
            Backend::Postgres => Direct::Pg(PgConnection::establish(&app.db.url).expect("open pg")),
        }
    }

    pub fn exec(&mut self, sql: &str) -> Result<usize, String> {
        match self {
            Direct::Sqlite(c) => diesel::sql_query(sql).execute(c),
            Direct::Pg(c) => diesel::sql_query(sql).execute(c),
        }
        .map_err(|e| e.to_string())
    }

    /// The single BigInt column `n` of `sql`'s first row.
    pub fn count(&mut self, sql: &str) -> i64 {
        let rows: Vec<Count> = match self {
            Direct::Sqlite(c) => diesel::sql_query(sql).load(c),
            Direct::Pg(c) => diesel::sql_query(sql).load(c),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows[0].n
    }
}

/// An S3-compatible server (s3s-fs: the S3 protocol over a directory, signatures checked),
/// started in-process on a free port, with one bucket. Answers its endpoint URL.
pub fn start_s3(root: &std::path::Path, bucket: &str) -> String {
    std::fs::create_dir_all(root.join(bucket)).expect("bucket dir");
    let (tx, rx) = std::sync::mpsc::channel();
    let root = root.to_path_buf();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("s3 runtime");
        rt.block_on(async move {
            let fs = s3s_fs::FileSystem::new(&root).expect("s3s-fs");
            let mut b = s3s::service::S3ServiceBuilder::new(fs);
            b.set_auth(s3s::auth::SimpleAuth::from_single(
                S3_ACCESS_KEY,
                S3_SECRET_KEY,
            ));
            let service = b.build();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind s3");
            tx.send(listener.local_addr().expect("addr"))
                .expect("send addr");
            let http =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let conn = http
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
    });
    format!("http://{}", rx.recv().expect("s3 server started"))
}

pub const S3_ACCESS_KEY: &str = "xuncha-test";
pub const S3_SECRET_KEY: &str = "xuncha-test-secret-key";
