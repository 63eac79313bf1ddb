//! Fault tests: the real binary (`xuncha serve`, a child process) killed with SIGKILL in the
//! middle of a push batch and of photo uploads, then restarted on the same database; a
//! throwaway PostgreSQL cluster stopped and started again under load; a photo store on a
//! full disk. What each must show: nothing acknowledged is lost, nothing is applied twice,
//! a device's copy ends equal to its scope, failures answer the error envelope (503, never a
//! 500 or a hang), and no half-written photo is ever served.
//!
//! Nothing here waits a fixed time for something to happen: the tests poll (`/readyz`, the
//! database, a file's size) in bounded loops. Delays only pace the load or choose a moment
//! to inject a fault.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use diesel::Connection;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{
    ADMIN_PASSWORD, Backend, BinResp, Direct, PASSWORD, Resp, SIGNING_KEY, TestDb, spec,
};
use crate::registry::uscc;

crate::both_backends_raw!(
    a_push_batch_killed_at_any_moment_applies_exactly_once,
    an_upload_killed_mid_patch_resumes_and_nothing_partial_is_served,
    a_full_photo_store_fails_cleanly_and_recovers,
);

// ---------------------------------------------------------------------------------------
// The server as a child process.

/// `xuncha` with none of the caller's settings.
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xuncha"));
    for (k, _) in std::env::vars() {
        if k.starts_with("XUNCHA_") || k == "DATABASE_URL" {
            c.env_remove(k);
        }
    }
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `xuncha serve` on a fixed port (the same after a restart, as behind a load balancer, so
/// tus `Location`s stay valid), its output appended to `log`.
struct Server {
    child: Option<Child>,
    base: String,
    port: u16,
    db_url: String,
    data_dir: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
}

impl Server {
    async fn start(db_url: &str, data_dir: &Path, log_dir: &Path, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let mut s = Server {
            child: None,
            base: format!("http://127.0.0.1:{port}"),
            port,
            db_url: db_url.to_string(),
            data_dir: data_dir.to_path_buf(),
            log: log_dir.join("server.log"),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        s.spawn().await;
        s
    }

    async fn spawn(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = bin()
            .args([
                "serve",
                "--bind",
                &format!("127.0.0.1:{}", self.port),
                "--database-url",
                &self.db_url,
                "--data-dir",
            ])
            .arg(&self.data_dir)
            .env("XUNCHA_TOKEN_SIGNING_KEY", SIGNING_KEY)
            .env("XUNCHA_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("XUNCHA_WORKERS", "2")
            .env("XUNCHA_DB_POOL_SIZE", "4")
            .env("XUNCHA_SHUTDOWN_TIMEOUT_SECS", "0")
            .env("XUNCHA_LOG", "warn")
            .env("XUNCHA_RISK_REFRESH_INTERVAL_SECS", "0")
            .env("XUNCHA_SYNC_PRUNE_INTERVAL_SECS", "0")
            .env("XUNCHA_OVERDUE_CHECK_INTERVAL_SECS", "0")
            .env("XUNCHA_SURPRISE_REVEAL_INTERVAL_SECS", "0")
            .env("XUNCHA_UPLOAD_SWEEP_INTERVAL_SECS", "0")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_ready().await;
    }

    /// Polls `/readyz` until the server answers 200 (60 s at most).
    async fn wait_ready(&mut self) {
        let client = http_client();
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the server exited ({status}):\n{}", self.log_tail());
            }
            if let Ok(r) = client
                .get(format!("{}/readyz", self.base))
                .timeout(Duration::from_secs(5))
                .send()
                .await
                && r.status().as_u16() == 200
            {
                return;
            }
            assert!(
                Instant::now() < until,
                "the server did not become ready:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush, nothing the process could do about it.
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// No pooled connections: every request opens its own, so none outlives a killed server.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// A client of one server; every answer is checked against the spec.
#[derive(Clone)]
struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    fn new(server: &Server) -> Api {
        Api {
            base: server.base.clone(),
            client: http_client(),
        }
    }

    fn rb(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let rb = self.client.request(method, format!("{}{path}", self.base));
        match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// Sends; a transport error (refused, reset, timed out) is `Err`.
    async fn try_send(
        &self,
        method: Method,
        path: &str,
        rb: reqwest::RequestBuilder,
    ) -> Result<BinResp, String> {
        let resp = rb.send().await.map_err(|e| format!("{e:?}"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(|e| format!("{e:?}"))?.to_vec();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        spec::check_response(method.as_str(), path, status, &headers, &text, &body);
        Ok(BinResp {
            status,
            headers,
            bytes,
            body,
        })
    }

    async fn try_req(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Resp, String> {
        let mut rb = self.rb(method.clone(), path, token);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = self.try_send(method, path, rb).await?;
        Ok(Resp {
            status: r.status,
            headers: r.headers,
            text: String::from_utf8_lossy(&r.bytes).to_string(),
            body: r.body,
        })
    }

    async fn req(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        self.try_req(method, path, token, body)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    async fn get(&self, path: &str, token: &str) -> Resp {
        self.req(Method::GET, path, Some(token), None).await
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.req(Method::POST, path, Some(token), Some(body)).await
    }

    async fn login(&self, username: &str, password: &str, device: &str) -> String {
        let r = self
            .req(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(&json!({"username": username, "password": password,
                             "device_id": device, "device_name": "fault test phone"})),
            )
            .await;
        r.expect(200);
        r.body["access_token"].as_str().unwrap().to_string()
    }

    async fn push(&self, token: &str, device: &str, mutations: &[Value]) -> Resp {
        self.post(
            "/api/v1/sync/push",
            token,
            &json!({"device_id": device, "mutations": mutations}),
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------
// A district: a manager, inspectors, a unit.

struct World {
    unit: String,
}

async fn world(api: &Api, inspectors: &[&str]) -> World {
    let admin = api.login("admin", ADMIN_PASSWORD, "admin-console").await;
    let mut users = vec![("mgr", "manager")];
    users.extend(inspectors.iter().map(|n| (*n, "inspector")));
    for (name, role) in users {
        api.post(
            "/api/v1/users",
            &admin,
            &json!({"username": name, "password": PASSWORD, "display_name": format!("{name} 检查员"),
                    "role": role, "region_code": "330106"}),
        )
        .await
        .expect(201);
    }
    let mgr = api.login("mgr", PASSWORD, "mgr-desk").await;
    let r = api
        .post(
            "/api/v1/units",
            &mgr,
            &json!({"uscc": uscc("330106", 7), "name": "示范商场", "address": "文三路 1 号",
                    "region_code": "330106", "place_type": "mall"}),
        )
        .await;
    r.expect(201);
    World {
        unit: r.body["id"].as_str().unwrap().to_string(),
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn report(seq: i64, id: &str, unit: &str, what: &str) -> Value {
    json!({"seq": seq, "name": "hazard.report", "args": {"id": id, "unit_id": unit,
           "description": what, "level": "general", "fixed_on_site": false}})
}

fn attach(seq: i64, id: &str, hazard: &str, sha: &str) -> Value {
    json!({"seq": seq, "name": "evidence.attach", "args": {"id": id, "sha256": sha,
           "hazard_id": hazard, "kind": "finding"}})
}

fn sha_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// A device: its queue position, its cursor and its copy of its scope.

struct Device {
    id: String,
    token: String,
    /// The last seq it pushed and saw acknowledged.
    seq: i64,
    cursor: Option<String>,
    /// (table, id) → version.
    copy: HashMap<(String, String), i64>,
}

impl Device {
    async fn login(api: &Api, user: &str, id: &str) -> Device {
        Device {
            id: id.to_string(),
            token: api.login(user, PASSWORD, id).await,
            seq: 0,
            cursor: None,
            copy: HashMap::new(),
        }
    }

    fn pull_path(&self) -> String {
        match &self.cursor {
            Some(c) => format!("/api/v1/sync/pull?limit=500&cursor={}", enc(c)),
            None => "/api/v1/sync/pull?limit=500".to_string(),
        }
    }

    /// Applies one pull answer; `Ok(has_more)`.
    fn apply(&mut self, body: &Value) -> bool {
        if body["reset"] == true {
            self.cursor = None;
            self.copy.clear();
            return true;
        }
        for ch in body["changes"].as_array().unwrap() {
            let key = (
                ch["table"].as_str().unwrap().to_string(),
                ch["id"].as_str().unwrap().to_string(),
            );
            match ch["op"].as_str().unwrap() {
                "put" => {
                    self.copy.insert(key, ch["version"].as_i64().unwrap());
                }
                _ => {
                    self.copy.remove(&key);
                }
            }
        }
        self.cursor = Some(body["cursor"].as_str().unwrap().to_string());
        body["has_more"] == true
    }

    /// Pulls until caught up.
    async fn pull_all(&mut self, api: &Api) {
        for _ in 0..1000 {
            let r = api.get(&self.pull_path(), &self.token).await;
            r.expect(200);
            if !self.apply(&r.body) {
                return;
            }
        }
        panic!("pull never caught up");
    }

    /// The spec's checksum over this copy, per table: (count, checksum).
    fn checksums(&self) -> BTreeMap<String, (u64, String)> {
        let mut sums: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for ((table, id), version) in &self.copy {
            let d = Sha256::digest(format!("{id}:{version}").as_bytes());
            let term = u64::from_be_bytes(d[..8].try_into().unwrap());
            let e = sums.entry(table.clone()).or_default();
            e.0 += 1;
            e.1 = e.1.wrapping_add(term);
        }
        sums.into_iter()
            .map(|(t, (n, s))| (t, (n, format!("{s:016x}"))))
            .collect()
    }

    /// The server's checksum of this device's scope equals the copy's.
    async fn assert_copy_is_scope(&self, api: &Api) {
        let cursor = self.cursor.as_deref().unwrap();
        let r = api
            .get(
                &format!("/api/v1/sync/checksum?cursor={}", enc(cursor)),
                &self.token,
            )
            .await;
        r.expect(200);
        assert!(r.body["stale"].is_null(), "not caught up: {}", r.text);
        let mine = self.checksums();
        for (table, sum) in r.body["tables"].as_object().unwrap() {
            let theirs = (
                sum["count"].as_u64().unwrap(),
                sum["checksum"].as_str().unwrap().to_string(),
            );
            let ours = mine
                .get(table)
                .cloned()
                .unwrap_or((0, "0000000000000000".into()));
            assert_eq!(
                ours, theirs,
                "table {table}: the device's copy differs from its scope"
            );
        }
    }
}

/// A connection of the test's own to the server's database.
fn direct(url: &str, backend: Backend) -> Direct {
    use diesel::connection::SimpleConnection;
    match backend {
        Backend::Sqlite => {
            let mut c =
                diesel::SqliteConnection::establish(url.trim_start_matches("sqlite://")).unwrap();
            c.batch_execute("PRAGMA busy_timeout = 5000;").unwrap();
            Direct::Sqlite(c)
        }
        Backend::Postgres => Direct::Pg(diesel::PgConnection::establish(url).unwrap()),
    }
}

/// Polls `done` every millisecond until it holds or `limit` passes; answers whether it held.
async fn poll_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    done()
}

// ---------------------------------------------------------------------------------------
// 1. kill -9 during a push batch.

#[derive(Debug, Clone, Copy)]
enum Moment {
    /// A few milliseconds after the request leaves: while it is read or its first group is
    /// being applied (or, on a slow day, before it arrives).
    Early,
    /// Once the first group of the batch has committed, while the next is being applied.
    MidBatch,
    /// After the device received the answer (it then "lost" it and retries anyway).
    AfterAnswer,
}

const SEED_HAZARDS: usize = 50;
const BATCH: usize = 300;

/// A phone's offline morning as one batch of `BATCH` mutations from `first_seq`: new hazards,
/// a photo attached to every fourth, and an edit of each seed hazard at the version the
/// device holds. Answers the batch and, per mutation, the row it writes.
fn morning(
    round: usize,
    first_seq: i64,
    unit: &str,
    seeds: &[String],
    dev: &Device,
) -> (Vec<Value>, Vec<(String, String)>) {
    let mut muts = Vec::new();
    let mut rows = Vec::new();
    let mut seq = first_seq;
    let mut next = || {
        seq += 1;
        seq - 1
    };
    for (k, seed) in seeds.iter().enumerate() {
        let h = new_id();
        muts.push(report(next(), &h, unit, &format!("第{round}轮 隐患 {k}-0")));
        rows.push(("hazards".to_string(), h.clone()));
        let e = new_id();
        let sha = hex::encode(uuid::Uuid::new_v4().as_bytes().repeat(2));
        muts.push(attach(next(), &e, &h, &sha));
        rows.push(("evidence".to_string(), e));
        let base = dev.copy[&("hazards".to_string(), seed.clone())];
        muts.push(
            json!({"seq": next(), "name": "hazard.update", "args": {"id": seed,
            "base_version": base, "fields": {"description": format!("第{round}轮 复查 {k}")}}}),
        );
        rows.push(("hazards".to_string(), seed.clone()));
        for j in 1..4 {
            let h = new_id();
            muts.push(report(
                next(),
                &h,
                unit,
                &format!("第{round}轮 隐患 {k}-{j}"),
            ));
            rows.push(("hazards".to_string(), h));
        }
    }
    assert_eq!(muts.len(), BATCH);
    (muts, rows)
}

fn last_seq(db: &mut Direct, device: &str) -> i64 {
    db.count(&format!(
        "SELECT last_mutation_seq AS n FROM devices WHERE device_id = '{device}'"
    ))
}

fn head(db: &mut Direct) -> i64 {
    db.count("SELECT seq AS n FROM sync_clock WHERE id = 1")
}

async fn a_push_batch_killed_at_any_moment_applies_exactly_once(backend: Backend) {
    let started = Instant::now();
    let db = TestDb::new(backend);
    let mut server = Server::start(&db.url, db.data_dir(), db.data_dir(), &[]).await;
    let api = Api::new(&server);
    let w = world(&api, &["ins"]).await;
    let mut dev = Device::login(&api, "ins", "phone-1").await;
    dev.pull_all(&api).await;

    // What the device already shares with the server: hazards it will edit offline.
    let seeds: Vec<String> = (0..SEED_HAZARDS).map(|_| new_id()).collect();
    let batch: Vec<Value> = seeds
        .iter()
        .enumerate()
        .map(|(i, h)| report(i as i64 + 1, h, &w.unit, &format!("原有隐患 {i}")))
        .collect();
    let r = api.push(&dev.token, &dev.id, &batch).await;
    r.expect(200);
    dev.seq = SEED_HAZARDS as i64;
    // Per row, the version of the last mutation that wrote it.
    let mut written: HashMap<(String, String), i64> = HashMap::new();
    for (m, res) in batch.iter().zip(r.body["results"].as_array().unwrap()) {
        assert_eq!(res["status"], "applied", "{res}");
        written.insert(
            ("hazards".into(), m["args"]["id"].as_str().unwrap().into()),
            res["version"].as_i64().unwrap(),
        );
    }
    dev.pull_all(&api).await;

    let mut db_conn = direct(&db.url, backend);
    let moments = [Moment::Early, Moment::MidBatch, Moment::AfterAnswer];
    for (round, moment) in moments.into_iter().enumerate() {
        let t_round = Instant::now();
        let base = dev.seq;
        let (muts, rows) = morning(round, base + 1, &w.unit, &seeds, &dev);
        let body = json!({"device_id": dev.id, "mutations": muts});
        let rb = api
            .rb(Method::POST, "/api/v1/sync/push", Some(&dev.token))
            .json(&body);
        let in_flight = actix_rt::spawn(async move {
            let resp = rb.send().await.ok()?;
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.ok()?;
            Some((status, body))
        });
        match moment {
            Moment::Early => tokio::time::sleep(Duration::from_millis(15)).await,
            Moment::MidBatch => {
                poll_until(Duration::from_secs(30), || {
                    in_flight.is_finished() || last_seq(&mut db_conn, &dev.id) > base
                })
                .await;
            }
            Moment::AfterAnswer => {
                poll_until(Duration::from_secs(30), || in_flight.is_finished()).await;
            }
        }
        server.kill9();
        let answered = in_flight.await.unwrap();
        let applied_before = last_seq(&mut db_conn, &dev.id) - base;
        let head_at_kill = head(&mut db_conn);

        if let Some((status, body)) = &answered {
            assert_eq!(*status, 200, "{body}");
            assert_eq!(
                applied_before, BATCH as i64,
                "answered before committing: {body}"
            );
        }
        if matches!(moment, Moment::AfterAnswer) {
            assert!(
                answered.is_some(),
                "the device got its answer before the kill"
            );
        }

        let t_kill = t_round.elapsed();
        server.spawn().await;
        let t_up = t_round.elapsed();
        // The device never saw (or lost) the answer: it retries the same batch, same seqs.
        let retry = api.push(&dev.token, &dev.id, &muts).await;
        retry.expect(200);
        let results = retry.body["results"].as_array().unwrap();
        assert_eq!(results.len(), BATCH);
        for (i, res) in results.iter().enumerate() {
            let seq = base + 1 + i as i64;
            assert_eq!(res["seq"], seq);
            // Nothing is applied twice (a second report of one id would be rejected as
            // `already_exists`), nothing is rejected, nothing conflicts with itself.
            assert_eq!(res["status"], "applied", "seq {seq}: {res}");
            let v = res["version"].as_i64().unwrap();
            if (i as i64) < applied_before {
                assert!(
                    v <= head_at_kill,
                    "seq {seq} was committed before the kill: its stored result answers (v{v} > head {head_at_kill})"
                );
            } else {
                assert!(
                    v > head_at_kill,
                    "seq {seq} was not committed before the kill: applied now (v{v} <= head {head_at_kill})"
                );
            }
        }
        if let Some((_, first)) = &answered {
            assert_eq!(
                first["results"], retry.body["results"],
                "a retried batch answers exactly what the first answer said"
            );
        }
        // And again: the log answers, nothing moves.
        let head_before = head(&mut db_conn);
        let again = api.push(&dev.token, &dev.id, &muts).await;
        again.expect(200);
        assert_eq!(again.body["results"], retry.body["results"]);
        assert_eq!(head(&mut db_conn), head_before);
        for (row, res) in rows.into_iter().zip(results) {
            written.insert(row, res["version"].as_i64().unwrap());
        }
        dev.seq = base + BATCH as i64;
        let t_retry = t_round.elapsed();
        dev.pull_all(&api).await;
        eprintln!(
            "{backend:?} round {round} ({moment:?}): killed after {t_kill:?} with {applied_before} \
             of {BATCH} committed, answer received: {}; up again at {t_up:?}, retried by \
             {t_retry:?}, pulled by {:?}",
            answered.is_some(),
            t_round.elapsed()
        );
    }

    // Exactly once, seen from the database: every row and every audit entry once.
    let rounds = moments.len();
    let hazards = (SEED_HAZARDS + rounds * 200) as i64;
    let photos = (rounds * SEED_HAZARDS) as i64;
    let edits = (rounds * SEED_HAZARDS) as i64;
    let counts = [
        ("SELECT COUNT(*) AS n FROM hazards", hazards),
        ("SELECT COUNT(*) AS n FROM evidence", photos),
        (
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'hazard.report'",
            hazards,
        ),
        (
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'hazard.update'",
            edits,
        ),
        (
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'evidence.attach'",
            photos,
        ),
        ("SELECT COUNT(*) AS n FROM sync_conflicts", 0),
        ("SELECT COUNT(*) AS n FROM sync_mutations", dev.seq),
    ];
    for (sql, want) in counts {
        assert_eq!(db_conn.count(sql), want, "{sql}");
    }
    assert_eq!(dev.seq, hazards + photos + edits);
    assert_eq!(last_seq(&mut db_conn, &dev.id), dev.seq);

    // The device's copy: every row it wrote, at the version its last mutation of it made,
    // and the whole of it equal to its scope on the server.
    for ((table, id), version) in &written {
        assert_eq!(
            dev.copy.get(&(table.clone(), id.clone())),
            Some(version),
            "{table} {id}"
        );
    }
    let in_copy = |t: &str| dev.copy.keys().filter(|(table, _)| table == t).count() as i64;
    assert_eq!(in_copy("hazards"), hazards);
    assert_eq!(in_copy("evidence"), photos);
    dev.assert_copy_is_scope(&api).await;
    // A second device of the same inspector, starting from nothing, holds the same.
    let mut other = Device::login(&api, "ins", "phone-2").await;
    other.pull_all(&api).await;
    assert_eq!(other.checksums(), dev.checksums());
    eprintln!("{backend:?}: push kill test took {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------
// 2. kill -9 during uploads.

const UPLOADS: &str = "/api/v1/uploads/";

fn meta(sha: &str) -> String {
    use base64::Engine;
    let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "sha256 {},filename {},content_type {}",
        b(sha),
        b("photo.jpg"),
        b("image/jpeg")
    )
}

/// A tus client of one user.
struct Tus<'a> {
    api: &'a Api,
    token: String,
}

impl Tus<'_> {
    fn rb(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.api
            .rb(method, path, Some(&self.token))
            .header("tus-resumable", "1.0.0")
    }

    /// Creates an upload for `photo`; answers its path.
    async fn create(&self, photo: &[u8]) -> String {
        let rb = self
            .rb(Method::POST, UPLOADS)
            .header("upload-length", photo.len().to_string())
            .header("upload-metadata", meta(&sha_hex(photo)));
        let r = self.api.try_send(Method::POST, UPLOADS, rb).await.unwrap();
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
        let loc = r.header("location").unwrap();
        loc[loc.find("/api/").unwrap()..].to_string()
    }

    fn patch_rb(&self, path: &str, offset: usize) -> reqwest::RequestBuilder {
        self.rb(Method::PATCH, path)
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
    }

    async fn patch(&self, path: &str, offset: usize, chunk: &[u8]) -> BinResp {
        let rb = self.patch_rb(path, offset).body(chunk.to_vec());
        self.api.try_send(Method::PATCH, path, rb).await.unwrap()
    }

    async fn head(&self, path: &str) -> BinResp {
        let rb = self.rb(Method::HEAD, path);
        self.api.try_send(Method::HEAD, path, rb).await.unwrap()
    }

    async fn offset(&self, path: &str) -> usize {
        let r = self.head(path).await;
        assert_eq!(r.status, 200);
        r.header("upload-offset").unwrap().parse().unwrap()
    }
}

async fn download(api: &Api, token: &str, evidence: &str, variant: &str) -> BinResp {
    let path = format!("/api/v1/evidence/{evidence}/{variant}");
    let rb = api.rb(Method::GET, &path, Some(token));
    api.try_send(Method::GET, &path, rb).await.unwrap()
}

/// The evidence row is pending and none of its files is served (409, never bytes).
async fn assert_not_served(api: &Api, token: &str, evidence: &str) {
    let r = api
        .get(&format!("/api/v1/evidence/{evidence}"), token)
        .await;
    r.expect(200);
    assert_eq!(r.body["status"], "pending", "{}", r.text);
    for variant in ["original", "preview", "thumb"] {
        let r = download(api, token, evidence, variant).await;
        assert_eq!(r.status, 409, "{variant}: {:?}", r.body);
        assert_eq!(r.body["error"]["code"], "evidence_pending");
    }
}

/// The evidence row is complete and serves the photo byte for byte, and renditions that
/// are whole JPEGs of the documented sizes.
async fn assert_served(api: &Api, token: &str, evidence: &str, photo: &[u8]) {
    let r = api
        .get(&format!("/api/v1/evidence/{evidence}"), token)
        .await;
    r.expect(200);
    assert_eq!(r.body["status"], "complete", "{}", r.text);
    let original = download(api, token, evidence, "original").await;
    assert_eq!(original.status, 200);
    assert!(
        original.bytes == photo,
        "the original is served byte for byte"
    );
    for (variant, side) in [("preview", 1280), ("thumb", 320)] {
        let r = download(api, token, evidence, variant).await;
        assert_eq!(r.status, 200, "{variant}");
        let mut dec = jpeg_decoder::Decoder::new(&r.bytes[..]);
        dec.decode()
            .unwrap_or_else(|e| panic!("{variant} is not a whole JPEG: {e}"));
        let info = dec.info().unwrap();
        assert!(
            info.width.max(info.height) <= side && info.width.max(info.height) > 0,
            "{variant}: {}x{}",
            info.width,
            info.height
        );
    }
}

/// Every stored original of `sha` (the object itself, not a staging file) is the whole photo.
fn assert_no_truncated_original(blob_dir: &Path, photo: &[u8]) -> usize {
    let sha = sha_hex(photo);
    let dir = blob_dir.join("original").join(&sha[..2]);
    let mut staging = 0;
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().to_string();
            if name == sha {
                assert!(
                    std::fs::read(e.path()).unwrap() == photo,
                    "a truncated original is stored under its final name"
                );
            } else {
                staging += 1;
            }
        }
    }
    staging
}

fn part_file(data_dir: &Path, upload_path: &str) -> PathBuf {
    let id = upload_path.rsplit('/').next().unwrap();
    data_dir.join("uploads").join(format!("{id}.part"))
}

async fn an_upload_killed_mid_patch_resumes_and_nothing_partial_is_served(backend: Backend) {
    let started = Instant::now();
    let db = TestDb::new(backend);
    let data_dir = db.data_dir().to_path_buf();
    let mut server = Server::start(&db.url, &data_dir, &data_dir, &[]).await;
    let api = Api::new(&server);
    let w = world(&api, &["ins"]).await;
    let mut dev = Device::login(&api, "ins", "phone-1").await;
    let photo = crate::evidence::jpeg(1024, 768, 21);
    let photo2 = crate::evidence::jpeg(1280, 960, 22);
    // The device reported a hazard and attached both photos offline: rows before bytes.
    let hazard = new_id();
    let (ev1, ev2) = (new_id(), new_id());
    let r = api
        .push(
            &dev.token,
            &dev.id,
            &[
                report(1, &hazard, &w.unit, "消防通道堵塞"),
                attach(2, &ev1, &hazard, &sha_hex(&photo)),
                attach(3, &ev2, &hazard, &sha_hex(&photo2)),
            ],
        )
        .await;
    r.expect(200);
    dev.seq = 3;
    assert_not_served(&api, &dev.token, &ev1).await;
    let tus = Tus {
        api: &api,
        token: dev.token.clone(),
    };
    let mut db_conn = direct(&db.url, backend);

    // A first chunk goes through: acknowledged.
    let up = tus.create(&photo).await;
    let first = photo.len() / 4;
    let r = tus.patch(&up, 0, &photo[..first]).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("upload-offset"), Some(first.to_string().as_str()));
    // The second is streamed: half of it arrives, then the server dies mid-PATCH.
    let sent = first + photo.len() / 4;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    let rb = tus
        .patch_rb(&up, first)
        .body(reqwest::Body::wrap_stream(body));
    let in_flight = actix_rt::spawn(async move { rb.send().await.map(|r| r.status().as_u16()) });
    tx.send(photo[first..sent].to_vec()).unwrap();
    let part = part_file(&data_dir, &up);
    let on_disk = || {
        std::fs::metadata(&part)
            .map(|m| m.len() as usize)
            .unwrap_or(0)
    };
    assert!(
        poll_until(Duration::from_secs(30), || on_disk() >= sent).await,
        "the server never wrote the streamed bytes"
    );
    assert_not_served(&api, &dev.token, &ev1).await;
    server.kill9();
    let outcome = in_flight.await.unwrap();
    assert!(
        outcome.is_err(),
        "the PATCH cannot have been answered: {outcome:?}"
    );
    drop(tx);

    server.spawn().await;
    // The server holds at most what was sent, at least what was acknowledged, and those
    // bytes are the photo's.
    let offset = tus.offset(&up).await;
    assert!(
        (first..=sent).contains(&offset),
        "HEAD offset {offset}, acknowledged {first}, sent {sent}"
    );
    let held = std::fs::read(&part).unwrap();
    assert!(held.len() >= offset);
    assert!(
        held[..offset] == photo[..offset],
        "the acknowledged bytes are intact"
    );
    assert_not_served(&api, &dev.token, &ev1).await;
    // The dead PATCH still holds the upload (documented: about a minute) …
    let r = tus.patch(&up, offset, &photo[offset..]).await;
    assert_eq!(r.status, 423, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "upload_locked");
    assert_eq!(
        tus.offset(&up).await,
        offset,
        "a refused PATCH moves nothing"
    );
    // … until its lease runs out. Stand-in for waiting that minute: the lease is dated back.
    let id = up.rsplit('/').next().unwrap();
    db_conn
        .exec(&format!(
            "UPDATE uploads SET locked_until = created_at WHERE id = '{id}'"
        ))
        .unwrap();
    // The device resumes from the offset HEAD gave and completes.
    let r = tus.patch(&up, offset, &photo[offset..]).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(
        r.header("upload-offset"),
        Some(photo.len().to_string().as_str())
    );
    assert_served(&api, &dev.token, &ev1, &photo).await;

    // Killed while the finished upload is being checked and stored.
    let up2 = tus.create(&photo2).await;
    let id2 = up2.rsplit('/').next().unwrap().to_string();
    let rb = tus.patch_rb(&up2, 0).body(photo2.clone());
    let in_flight = actix_rt::spawn(async move { rb.send().await.map(|r| r.status().as_u16()) });
    let storing =
        format!("SELECT COUNT(*) AS n FROM uploads WHERE id = '{id2}' AND upload_offset = length");
    poll_until(Duration::from_secs(30), || {
        in_flight.is_finished() || db_conn.count(&storing) == 1
    })
    .await;
    server.kill9();
    let outcome = in_flight.await.unwrap();
    eprintln!(
        "{backend:?}: PATCH of the whole photo killed while storing; answered: {:?}",
        outcome.ok()
    );
    server.spawn().await;
    let blob_dir = data_dir.join("blobs");
    let staging = assert_no_truncated_original(&blob_dir, &photo2);
    if staging > 0 {
        eprintln!("{backend:?}: {staging} staging file(s) of the killed store are left behind");
    }
    let offset = tus.offset(&up2).await;
    let ev = api
        .get(&format!("/api/v1/evidence/{ev2}"), &dev.token)
        .await;
    if ev.body["status"] == "pending" {
        assert_not_served(&api, &dev.token, &ev2).await;
    }
    // The device resumes from HEAD's offset: the rest of the bytes, or none, which retries
    // the completion (the spec's rule).
    let r = tus.patch(&up2, offset, &photo2[offset..]).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_served(&api, &dev.token, &ev2, &photo2).await;
    assert_no_truncated_original(&blob_dir, &photo2);
    assert_eq!(
        db_conn.count("SELECT COUNT(*) AS n FROM blobs"),
        2,
        "each photo stored once"
    );
    // The device's copy holds both rows complete.
    dev.pull_all(&api).await;
    dev.assert_copy_is_scope(&api).await;
    eprintln!("{backend:?}: upload kill test took {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------
// 3. PostgreSQL restarted under load.

/// Where `initdb` and `pg_ctl` are, if anywhere.
fn pg_bin_dir() -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from("/usr/lib/postgresql/15/bin")];
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut more: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        more.sort();
        candidates.extend(more.into_iter().rev());
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        candidates.push(PathBuf::from(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ));
    }
    candidates
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A PostgreSQL cluster of the test's own, in a temp dir on a free port (PostgreSQL refuses
/// to run as root: then it runs as `postgres`). [`ClusterGuard`] stops and removes it.
#[derive(Clone)]
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    fn run(&self, tool: &str, args: &[&str]) -> std::process::Output {
        let tool = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(tool);
            c
        } else {
            Command::new(tool)
        };
        cmd.args(args).stdin(Stdio::null()).output().unwrap()
    }

    fn init(bin: PathBuf) -> ClusterGuard {
        let dir = std::env::temp_dir().join(format!("xuncha-pg-{}", &new_id()[..8]));
        std::fs::create_dir_all(&dir).unwrap();
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["postgres:", &dir.display().to_string()])
                .status()
                .unwrap();
            assert!(ok.success(), "chown the cluster dir to postgres");
        }
        let c = ClusterGuard(Cluster {
            bin,
            port: free_port(),
            dir,
            as_postgres,
        });
        let data = c.0.dir.join("data").display().to_string();
        let out = c.0.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        assert!(out.status.success(), "initdb: {out:?}");
        c.0.start();
        c
    }

    /// Starts the cluster and waits until it takes connections. `fsync=off`: the machine
    /// does not crash here, only PostgreSQL's processes die, and what they wrote is in the
    /// page cache either way; without it the checkpoint that ends crash recovery takes
    /// seconds on a busy disk.
    fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=30 -c shared_buffers=16MB \
             -c fsync=off",
            self.port,
            self.dir.display()
        );
        let data = self.dir.join("data").display().to_string();
        let log = self.dir.join("pg.log").display().to_string();
        let out = self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &opts, "-w", "-t", "60", "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {out:?}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// `pg_ctl stop -m immediate`: every backend killed, no checkpoint; recovery at start.
    fn stop_immediate(&self) {
        let data = self.dir.join("data").display().to_string();
        let out = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        assert!(out.status.success(), "pg_ctl stop: {out:?}");
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs `f` on a blocking thread, so that the load keeps running meanwhile.
    async fn off_thread(&self, f: fn(&Cluster)) {
        let c = self.clone();
        actix_web::rt::task::spawn_blocking(move || f(&c))
            .await
            .unwrap();
    }
}

struct ClusterGuard(Cluster);

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        let data = self.0.dir.join("data").display().to_string();
        let _ = self
            .0
            .run("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.0.dir);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Up,
    Down,
    Recovered,
    Stop,
}

#[derive(Default)]
struct Tally {
    /// Answers per phase: 200s and 503s.
    ok: HashMap<&'static str, usize>,
    unavailable: HashMap<&'static str, usize>,
    /// Anything else: a 500, another status, a hang (transport error or timeout).
    bad: Vec<String>,
    /// Pushes acknowledged (200), per worker.
    acked_pushes: Vec<usize>,
    /// Hazard ids whose push was acknowledged.
    acked: Vec<String>,
    slowest: Duration,
    /// When PostgreSQL was told to stop, and the first 503 came.
    stopping: Option<Instant>,
    first_503: Option<Instant>,
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Up => "up",
        Phase::Down => "down",
        Phase::Recovered => "recovered",
        Phase::Stop => "stop",
    }
}

/// Classifies one answer: 200, 503 with the envelope, or bad.
fn tally(t: &RefCell<Tally>, phase: Phase, what: &str, took: Duration, r: &Result<Resp, String>) {
    let mut t = t.borrow_mut();
    t.slowest = t.slowest.max(took);
    let p = phase_name(phase);
    if took > Duration::from_millis(1500) {
        eprintln!(
            "slow: {what} ({p}) {took:?} -> {:?}",
            r.as_ref().map(|r| r.status)
        );
    }
    match r {
        Ok(r) if r.status == 200 => *t.ok.entry(p).or_default() += 1,
        Ok(r) if r.status == 503 => {
            t.first_503.get_or_insert_with(Instant::now);
            if r.error_code() == "storage_unavailable"
                && r.body["error"]["message"].is_string()
                && r.header("retry-after").is_some()
            {
                *t.unavailable.entry(p).or_default() += 1;
            } else {
                t.bad.push(format!(
                    "{what} ({p}): 503 without the envelope: {}",
                    r.text
                ));
            }
        }
        Ok(r) => t.bad.push(format!("{what} ({p}): {} {}", r.status, r.text)),
        Err(e) => t
            .bad
            .push(format!("{what} ({p}): no answer after {took:?}: {e}")),
    }
}

/// One phone under light load: push a few hazards (the same batch again until it is
/// acknowledged), pull, and now and then log in again.
async fn phone(
    api: Api,
    user: String,
    device: String,
    unit: String,
    worker: usize,
    phase: Rc<Cell<Phase>>,
    t: Rc<RefCell<Tally>>,
) {
    let mut dev = Device::login(&api, &user, &device).await;
    dev.pull_all(&api).await;
    let mut pending: Option<Vec<Value>> = None;
    let mut round = 0usize;
    loop {
        let p = phase.get();
        if p == Phase::Stop && pending.is_none() {
            return;
        }
        round += 1;
        let batch = pending.take().unwrap_or_else(|| {
            (1..=3)
                .map(|i| {
                    report(
                        dev.seq + i,
                        &new_id(),
                        &unit,
                        &format!("负载 {device} {round}"),
                    )
                })
                .collect()
        });
        let body = json!({"device_id": dev.id, "mutations": batch});
        let t0 = Instant::now();
        let r = api
            .try_req(
                Method::POST,
                "/api/v1/sync/push",
                Some(&dev.token),
                Some(&body),
            )
            .await;
        tally(&t, p, "push", t0.elapsed(), &r);
        match r {
            Ok(r) if r.status == 200 => {
                for res in r.body["results"].as_array().unwrap() {
                    assert_eq!(res["status"], "applied", "{res}");
                }
                let mut tl = t.borrow_mut();
                tl.acked_pushes[worker] += 1;
                tl.acked.extend(
                    batch
                        .iter()
                        .map(|m| m["args"]["id"].as_str().unwrap().to_string()),
                );
                dev.seq += batch.len() as i64;
            }
            _ => pending = Some(batch),
        }
        let t0 = Instant::now();
        let r = api
            .try_req(Method::GET, &dev.pull_path(), Some(&dev.token), None)
            .await;
        tally(&t, p, "pull", t0.elapsed(), &r);
        if let Ok(r) = &r
            && r.status == 200
        {
            dev.apply(&r.body);
        }
        if round.is_multiple_of(4) {
            let t0 = Instant::now();
            let body = json!({"username": user, "password": PASSWORD,
                              "device_id": format!("{device}-login"), "device_name": "spare"});
            let r = api
                .try_req(Method::POST, "/api/v1/auth/login", None, Some(&body))
                .await;
            tally(&t, p, "login", t0.elapsed(), &r);
        }
        // Light load: a phone's pace, not a benchmark.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_rt::test]
async fn postgres_restarted_under_load_answers_503_then_recovers_without_a_restart() {
    let Some(pg_bin) = pg_bin_dir() else {
        eprintln!(
            "\n!!! SKIPPED faults::postgres_restarted_under_load…: initdb/pg_ctl not found \
             (looked in /usr/lib/postgresql/*/bin and pg_config --bindir) !!!\n"
        );
        return;
    };
    let started = Instant::now();
    let guard = Cluster::init(pg_bin);
    let cluster = guard.0.clone();
    // The server's data directory, removed with the cluster.
    let work = cluster.dir.join("xuncha");
    std::fs::create_dir_all(&work).unwrap();
    // A request waits at most 1 s for a connection before it answers 503.
    let server = Server::start(
        &cluster.url(),
        &work,
        &work,
        &[("XUNCHA_DB_CONNECT_TIMEOUT_MS", "1000")],
    )
    .await;
    let api = Api::new(&server);
    let phones = ["ins1", "ins2", "ins3"];
    let w = world(&api, &phones).await;

    let phase = Rc::new(Cell::new(Phase::Up));
    let t = Rc::new(RefCell::new(Tally {
        acked_pushes: vec![0; phones.len()],
        ..Tally::default()
    }));
    let workers: Vec<_> = phones
        .iter()
        .enumerate()
        .map(|(i, user)| {
            actix_rt::spawn(phone(
                api.clone(),
                user.to_string(),
                format!("load-{i}"),
                w.unit.clone(),
                i,
                phase.clone(),
                t.clone(),
            ))
        })
        .collect();
    let pushes_each = |n: usize| {
        let t = t.clone();
        move || t.borrow().acked_pushes.iter().all(|&p| p >= n)
    };
    assert!(
        poll_until(Duration::from_secs(60), pushes_each(3)).await,
        "the load never got going"
    );

    // PostgreSQL goes away: every backend killed, no shutdown checkpoint.
    let stopping = Instant::now();
    t.borrow_mut().stopping = Some(stopping);
    cluster.off_thread(Cluster::stop_immediate).await;
    let stopped = Instant::now();
    phase.set(Phase::Down);
    let readyz = |api: Api| async move {
        api.try_req(Method::GET, "/readyz", None, None)
            .await
            .map(|r| (r.status, r.error_code().to_string()))
    };
    let mut not_ready = false;
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if let Ok((503, code)) = readyz(api.clone()).await {
            assert_eq!(code, "storage_unavailable");
            not_ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        not_ready,
        "/readyz kept answering ready with the database gone"
    );
    let healthz = api
        .try_req(Method::GET, "/healthz", None, None)
        .await
        .unwrap();
    assert_eq!(healthz.status, 200, "the process itself is up");
    let t2 = t.clone();
    assert!(
        poll_until(Duration::from_secs(30), move || {
            t2.borrow().unavailable.get("down").copied().unwrap_or(0) >= phones.len()
        })
        .await,
        "requests did not answer 503 while the database was down"
    );
    let acked_while_down = t.borrow().acked_pushes.clone();

    // PostgreSQL comes back: the same server recovers on its own.
    cluster.off_thread(Cluster::start).await;
    let restarted = Instant::now();

    let down_for = restarted - stopped;
    phase.set(Phase::Recovered);
    let mut ready = false;
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if let Ok((200, _)) = readyz(api.clone()).await {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "/readyz never recovered:\n{}", server.log_tail());
    let ready_after = restarted.elapsed();
    let want: Vec<usize> = acked_while_down.iter().map(|n| n + 3).collect();
    let t2 = t.clone();
    assert!(
        poll_until(Duration::from_secs(30), move || {
            t2.borrow()
                .acked_pushes
                .iter()
                .zip(&want)
                .all(|(have, want)| have >= want)
        })
        .await,
        "pushes did not succeed again after PostgreSQL came back:\n{}",
        server.log_tail()
    );
    let recovered_after = restarted.elapsed();
    phase.set(Phase::Stop);
    for w in workers {
        w.await.unwrap();
    }

    let t: Tally = t.take();
    assert!(
        t.bad.is_empty(),
        "answers other than 200 / 503: {:#?}",
        t.bad
    );
    assert!(
        t.first_503.unwrap() >= stopping,
        "a 503 before PostgreSQL went down"
    );
    // A request waits for a connection 1 s at most (here), twice at worst (a queue slot,
    // then the pool); the margin is for a loaded machine.
    assert!(
        t.slowest < Duration::from_secs(5),
        "a request took {:?}: the database's absence must not hold requests",
        t.slowest
    );
    // Nothing acknowledged was lost, nothing applied twice.
    let mut db_conn = direct(&cluster.url(), Backend::Postgres);
    let unique: HashSet<&String> = t.acked.iter().collect();
    assert_eq!(unique.len(), t.acked.len());
    assert_eq!(
        db_conn.count("SELECT COUNT(*) AS n FROM hazards"),
        t.acked.len() as i64,
        "every acknowledged hazard, and only those"
    );
    for chunk in t.acked.chunks(200) {
        let list = chunk
            .iter()
            .map(|id| format!("'{id}'"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            db_conn.count(&format!(
                "SELECT COUNT(*) AS n FROM hazards WHERE id IN ({list})"
            )),
            chunk.len() as i64
        );
    }
    // A phone starting over sees them all, and its copy is its scope.
    let mut dev = Device::login(&api, "ins1", "fresh-phone").await;
    dev.pull_all(&api).await;
    for id in &t.acked {
        assert!(dev.copy.contains_key(&("hazards".to_string(), id.clone())));
    }
    dev.assert_copy_is_scope(&api).await;
    eprintln!(
        "PostgreSQL restart: down {down_for:?}, ready {ready_after:?} and pushing {recovered_after:?} \
         after it came back; answers {:?} ok, {:?} 503, slowest {:?}; test took {:?}",
        t.ok,
        t.unavailable,
        t.slowest,
        started.elapsed()
    );
    drop(server);
    drop(guard);
}

// ---------------------------------------------------------------------------------------
// 4. A full disk under the photo store.

/// A tmpfs mounted on `dir`; unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!("mount: {}", String::from_utf8_lossy(&out.stderr));
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }

    /// Bytes free, as `df` reports them.
    fn free(&self) -> u64 {
        let out = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&self.0)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Fills the disk until `leave` bytes (about) are free.
    fn fill_to(&self, leave: u64) {
        let filler = self.0.join("filler");
        let _ = std::fs::remove_file(&filler);
        let free = self.free();
        assert!(free > leave, "{free} bytes free, wanted to leave {leave}");
        std::fs::write(&filler, vec![0u8; (free - leave) as usize]).unwrap();
    }

    fn unfill(&self) {
        std::fs::remove_file(self.0.join("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

async fn a_full_photo_store_fails_cleanly_and_recovers(backend: Backend) {
    let started = Instant::now();
    let db = TestDb::new(backend);
    // The data directory on a small disk of its own: the upload spool (`uploads/`) and the
    // photo store (`blob_store_dir`, here named as what it is by default: `blobs/` in the data
    // directory) share it. (The SQLite database is elsewhere: `--database-url` names it.)
    let data_dir = db.data_dir().join("disk");
    let Some(disk) = Tmpfs::mount(&data_dir, "8m") else {
        eprintln!(
            "\n!!! SKIPPED faults::…::a_full_photo_store_fails_cleanly_and_recovers: cannot mount \
             a tmpfs (not root?) !!!\n"
        );
        return;
    };
    let blob_dir = data_dir.join("blobs");
    let server = Server::start(
        &db.url,
        &data_dir,
        db.data_dir(),
        &[("XUNCHA_BLOB_STORE_DIR", blob_dir.to_str().unwrap())],
    )
    .await;
    let api = Api::new(&server);
    let w = world(&api, &["ins"]).await;
    let dev = Device::login(&api, "ins", "phone-1").await;
    let photo = crate::evidence::jpeg(1024, 768, 31);
    let size = photo.len() as u64;
    let hazard = new_id();
    let ev = new_id();
    let r = api
        .push(
            &dev.token,
            &dev.id,
            &[
                report(1, &hazard, &w.unit, "压力表超期未检"),
                attach(2, &ev, &hazard, &sha_hex(&photo)),
            ],
        )
        .await;
    r.expect(200);
    let tus = Tus {
        api: &api,
        token: dev.token.clone(),
    };
    let up = tus.create(&photo).await;
    let mut db_conn = direct(&db.url, backend);
    let sha = sha_hex(&photo);
    let blob_rows = format!("SELECT COUNT(*) AS n FROM blobs WHERE sha256 = '{sha}'");

    // No room for the bytes themselves: the PATCH fails with 503, keeps nothing of its
    // chunk, and the offset stays where it was.
    disk.fill_to(size / 2);
    let r = tus.patch(&up, 0, &photo).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "storage_unavailable");
    assert_eq!(tus.offset(&up).await, 0);
    assert_not_served(&api, &dev.token, &ev).await;

    // Room for the bytes but not for the stored photo: the completion fails with 503, the
    // bytes are kept (HEAD: offset = length), nothing is stored or marked complete.
    disk.fill_to(size + size / 2);
    let r = tus.patch(&up, 0, &photo).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "storage_unavailable");
    assert_eq!(tus.offset(&up).await, photo.len());
    assert_not_served(&api, &dev.token, &ev).await;
    assert_eq!(db_conn.count(&blob_rows), 0);
    assert_no_truncated_original(&blob_dir, &photo);
    // Retrying while the disk is still full fails the same way, and changes nothing.
    let r = tus.patch(&up, photo.len(), &[]).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(tus.offset(&up).await, photo.len());
    assert_not_served(&api, &dev.token, &ev).await;

    // Space is freed: the empty PATCH at the end retries the completion, which succeeds.
    disk.unfill();
    let r = tus.patch(&up, photo.len(), &[]).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(
        r.header("upload-offset"),
        Some(photo.len().to_string().as_str())
    );
    assert_served(&api, &dev.token, &ev, &photo).await;
    assert_eq!(db_conn.count(&blob_rows), 1);
    let staging = assert_no_truncated_original(&blob_dir, &photo);
    assert_eq!(staging, 0, "failed stores leave no staging files behind");
    // A second photo, uploaded with a clear disk, goes straight through.
    let photo2 = crate::evidence::jpeg(640, 480, 32);
    let up2 = tus.create(&photo2).await;
    assert_eq!(tus.patch(&up2, 0, &photo2).await.status, 204);
    drop(server);
    drop(disk);
    eprintln!("{backend:?}: disk full test took {:?}", started.elapsed());
}
