//! One simulated phone: its session, its copy of its scope, its queue of mutations and its
//! photos, and what it does (log in, sync, work offline, reconnect, push, upload, refresh).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, RequestBuilder};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{Api, Fail, Fault, Resp};
use super::copy::{Copy, PullBody};
use super::rng::Rng;
use super::stats::Ep;

/// Failed attempts of one request (transport errors, 5xx, 429) before the device gives up
/// (with the backoff below, about a minute of retrying, as a phone in the field would).
const MAX_FAILURES: u32 = 12;
/// `reset` answers in a row before a pull gives up.
const MAX_RESETS: u32 = 3;

/// Which simulated faults a request may meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Faults {
    None,
    /// The answer may be lost (the server did the work).
    AnswerLost,
    /// The answer may be lost, or the connection dropped in flight.
    Any,
}

/// Settings every device shares.
#[derive(Debug, Clone)]
pub struct Settings {
    pub password: String,
    pub page_limit: u32,
    /// Chance that a pull or push request is dropped (aborted in flight or its answer lost).
    pub drop_rate: f64,
    /// Chance that a photo upload breaks off midway (then resumes with HEAD + PATCH).
    pub interrupt_rate: f64,
    /// Mutations per push request.
    pub push_batch: usize,
    /// Mutations of the first offline session (the morning push).
    pub mutations: usize,
}

#[derive(Debug, Clone)]
pub struct DevErr(pub String);

impl std::fmt::Display for DevErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The work a manager gave this device's user: an assignment of a unit (and a piece of its
/// equipment, with its category, to check item by item).
#[derive(Debug, Clone)]
pub struct WorkOrder {
    pub assignment_id: String,
    pub unit_id: String,
    pub equipment: Option<(String, String)>,
}

pub struct Photo {
    pub name: String,
    pub bytes: Option<Arc<Vec<u8>>>,
    pub sha256: String,
    pub uploaded: bool,
}

/// What an acknowledged mutation must have left on the server.
#[derive(Debug, Clone)]
pub enum Expect {
    Hazard {
        id: String,
        description: String,
    },
    HazardEdit {
        id: String,
        description: Option<String>,
    },
    InspectionStart {
        id: String,
    },
    Item {
        inspection_id: String,
        item_code: String,
        equipment_id: Option<String>,
    },
    Submit {
        id: String,
    },
    Evidence {
        id: String,
        photo: usize,
    },
}

pub(super) struct Mutation {
    seq: u64,
    name: &'static str,
    args: Value,
    expect: Expect,
}

/// A mutation the server acknowledged, with its result.
#[derive(Debug, Clone)]
pub struct Acked {
    pub seq: u64,
    pub name: &'static str,
    pub status: String,
    pub version: Option<u64>,
    pub expect: Expect,
}

#[derive(Deserialize)]
struct TokenPair {
    access_token: String,
    pub(super) refresh_token: String,
    #[serde(default)]
    user: Option<LoginUser>,
}

#[derive(Deserialize)]
struct LoginUser {
    id: String,
    region_code: String,
}

#[derive(Deserialize)]
struct PushResponse {
    results: Vec<PushResult>,
}

#[derive(Deserialize)]
struct PushResult {
    seq: u64,
    status: String,
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    error: Option<PushError>,
}

#[derive(Deserialize)]
struct PushError {
    code: String,
}

pub struct Device {
    pub idx: usize,
    pub device_id: String,
    pub username: String,
    pub user_id: String,
    pub region: String,
    pub(super) access: String,
    refresh_token: String,
    pub(super) rng: Rng,
    pub copy: Copy,
    pub cursor: Option<String>,
    pub last_mutation_seq: u64,
    pub(super) next_seq: u64,
    pub(super) queue: Vec<Mutation>,
    pub acked: Vec<Acked>,
    pub photos: Vec<Photo>,
    pub work: Option<WorkOrder>,
    /// Demo hazards this user reported that the device edits (chosen after its first sync).
    pub(super) edit_targets: Vec<String>,
    pub failed: Option<String>,
}

/// 0.2 s, 0.4 s, … up to 6.4 s between attempts (jittered by the caller where it can).
pub(super) fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(failures.clamp(1, 6)))
}

impl Device {
    pub fn new(idx: usize, username: String, run_tag: &str, seed: u64) -> Device {
        Device {
            idx,
            device_id: format!("sim-{run_tag}-{idx:05}"),
            username,
            user_id: String::new(),
            region: String::new(),
            access: String::new(),
            refresh_token: String::new(),
            rng: Rng::for_device(seed, idx),
            copy: Copy::new(""),
            cursor: None,
            last_mutation_seq: 0,
            next_seq: 1,
            queue: Vec::new(),
            acked: Vec::new(),
            photos: Vec::new(),
            work: None,
            edit_targets: Vec::new(),
            failed: None,
        }
    }

    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Logs in (again): a new device session, a new token pair.
    pub async fn login(&mut self, api: &Api, s: &Settings) -> Result<(), DevErr> {
        let url = api.url("/api/v1/auth/login");
        let body = json!({
            "username": self.username,
            "password": s.password,
            "device_id": self.device_id,
            "device_name": format!("xuncha-sim phone {}", self.idx),
        });
        let mut failures = 0;
        loop {
            match api
                .send(Ep::Login, api.client.post(&url).json(&body), Fault::None)
                .await
            {
                Ok(r) if r.status == 200 => {
                    let t: TokenPair = r.json().map_err(|e| DevErr(format!("login: {e}")))?;
                    let user = t
                        .user
                        .ok_or_else(|| DevErr("login: no user in the answer".into()))?;
                    if self.user_id.is_empty() {
                        self.copy = Copy::new(&user.id);
                    }
                    self.user_id = user.id;
                    self.region = user.region_code;
                    self.access = t.access_token;
                    self.refresh_token = t.refresh_token;
                    return Ok(());
                }
                Ok(r) => {
                    api.stats
                        .error(format!("login: HTTP {} {}", r.status, r.error_code()));
                    failures += 1;
                    if !(r.status == 429 || r.status >= 500) || failures >= MAX_FAILURES {
                        return Err(DevErr(format!(
                            "login of {} answered {}",
                            self.username, r.status
                        )));
                    }
                    let wait = r
                        .header("retry-after")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map_or_else(|| backoff(failures), |s| Duration::from_secs(s.min(60)));
                    tokio::time::sleep(wait).await;
                }
                Err(Fail::Transport(kind, msg)) => {
                    api.stats
                        .error_with(format!("login: transport {kind}"), &msg);
                    failures += 1;
                    if failures >= MAX_FAILURES {
                        return Err(DevErr(format!("login: {msg}")));
                    }
                    tokio::time::sleep(backoff(failures)).await;
                }
                Err(Fail::Dropped) => {}
            }
        }
    }

    /// Rotates the refresh token. A refresh is never retried with a token the server may
    /// have spent (that would end the session as stolen): after a transport failure or an
    /// unexpected answer the device logs in again.
    pub async fn refresh(&mut self, api: &Api, s: &Settings) -> Result<(), DevErr> {
        let url = api.url("/api/v1/auth/refresh");
        let body = json!({ "refresh_token": self.refresh_token });
        let mut failures = 0;
        loop {
            match api
                .send(Ep::Refresh, api.client.post(&url).json(&body), Fault::None)
                .await
            {
                Ok(r) if r.status == 200 => {
                    let t: TokenPair = r.json().map_err(|e| DevErr(format!("refresh: {e}")))?;
                    self.access = t.access_token;
                    self.refresh_token = t.refresh_token;
                    return Ok(());
                }
                Ok(r) if r.status == 503 && failures + 1 < MAX_FAILURES => {
                    api.stats
                        .error(format!("refresh: HTTP {} {}", r.status, r.error_code()));
                    failures += 1;
                    tokio::time::sleep(backoff(failures)).await;
                }
                Ok(r) => {
                    api.stats
                        .error(format!("refresh: HTTP {} {}", r.status, r.error_code()));
                    return self.login(api, s).await;
                }
                Err(Fail::Transport(kind, msg)) => {
                    api.stats
                        .error_with(format!("refresh: transport {kind}"), &msg);
                    return self.login(api, s).await;
                }
                Err(Fail::Dropped) => return self.login(api, s).await,
            }
        }
    }

    /// Sends an authenticated request: simulated drops (when `droppable`) are retried as a
    /// phone would, an expired access token is refreshed, 5xx / 429 / transport failures are
    /// counted as errors and retried with backoff. Other answers go to the caller.
    pub(super) async fn call<F>(
        &mut self,
        api: &Api,
        s: &Settings,
        ep: Ep,
        droppable: Faults,
        make: F,
    ) -> Result<Resp, DevErr>
    where
        F: Fn(&Client, &str) -> RequestBuilder,
    {
        let mut failures = 0;
        let mut drops = 0;
        let mut refreshed = false;
        loop {
            let fault = if droppable != Faults::None && drops < 8 && self.rng.chance(s.drop_rate) {
                drops += 1;
                if droppable == Faults::Any && self.rng.chance(0.5) {
                    Fault::Abort(Duration::from_millis(self.rng.below(40)))
                } else {
                    Fault::LoseAnswer
                }
            } else {
                Fault::None
            };
            match api.send(ep, make(&api.client, &self.access), fault).await {
                Err(Fail::Dropped) => {
                    api.stats
                        .event(&format!("simulated drop, retried: {}", ep.name()));
                }
                Err(Fail::Transport(kind, msg)) => {
                    api.stats
                        .error_with(format!("{}: transport {kind}", ep.name()), &msg);
                    failures += 1;
                    if failures >= MAX_FAILURES {
                        return Err(DevErr(format!("{}: {msg}", ep.name())));
                    }
                    let jitter = 0.5 + self.rng.unit();
                    tokio::time::sleep(backoff(failures).mul_f64(jitter)).await;
                }
                Ok(r) if r.status == 401 && !refreshed && r.error_code() == "token_expired" => {
                    api.stats
                        .event("access token expired: refreshed and retried");
                    refreshed = true;
                    self.refresh(api, s).await?;
                }
                Ok(r) if r.status == 429 || r.status >= 500 => {
                    api.stats.error(format!(
                        "{}: HTTP {} {}",
                        ep.name(),
                        r.status,
                        r.error_code()
                    ));
                    failures += 1;
                    if failures >= MAX_FAILURES {
                        return Ok(r);
                    }
                    let wait = r
                        .header("retry-after")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map_or(Duration::ZERO, |s| Duration::from_secs(s.min(30)))
                        .max(backoff(failures));
                    let wait = wait.mul_f64(0.5 + self.rng.unit());
                    tokio::time::sleep(wait).await;
                }
                Ok(r) => return Ok(r),
            }
        }
    }

    /// A REST request with this device's session (no simulated drops): `GET` without a body,
    /// `POST` with a JSON body.
    pub async fn rest(
        &mut self,
        api: &Api,
        s: &Settings,
        ep: Ep,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Resp, DevErr> {
        let url = api.url(path);
        self.call(api, s, ep, Faults::None, |c, tok| match body {
            Some(b) => c.post(&url).bearer_auth(tok).json(b),
            None => c.get(&url).bearer_auth(tok),
        })
        .await
    }

    pub(super) fn unexpected(&self, api: &Api, ep: Ep, r: &Resp) -> DevErr {
        let code = r.error_code();
        api.stats
            .error(format!("{}: HTTP {} {code}", ep.name(), r.status));
        DevErr(format!(
            "device {}: {} answered {} {code}: {}",
            self.idx,
            ep.name(),
            r.status,
            String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
        ))
    }

    /// Pulls until caught up (`has_more` false), applying every change to the copy; starts
    /// over on `reset`.
    pub async fn pull(
        &mut self,
        api: &Api,
        s: &Settings,
        final_check: bool,
    ) -> Result<u64, DevErr> {
        let mut resets = 0;
        let mut initial = self.cursor.is_none();
        let mut rows = 0u64;
        loop {
            let mut url = format!("{}/api/v1/sync/pull?limit={}", api.base, s.page_limit);
            if let Some(c) = &self.cursor {
                url.push_str("&cursor=");
                url.push_str(c);
            }
            let ep = if final_check {
                Ep::PullFinal
            } else if initial {
                Ep::PullInitial
            } else {
                Ep::PullIncremental
            };
            let r = self
                .call(
                    api,
                    s,
                    ep,
                    if final_check {
                        Faults::None
                    } else {
                        Faults::Any
                    },
                    |c, tok| c.get(&url).bearer_auth(tok).header("x-sync-protocol", "1"),
                )
                .await?;
            if r.status != 200 {
                return Err(self.unexpected(api, ep, &r));
            }
            let page: PullBody<'_> = serde_json::from_slice(&r.body)
                .map_err(|e| DevErr(format!("device {}: pull answer: {e}", self.idx)))?;
            if page.reset {
                // Nothing in a simulated run (no pruning, no restored database) may make the
                // server answer reset: one would hide a cursor or scope bug behind a fresh
                // copy that then matches the checksum. An error, though the device goes on.
                api.stats.error(format!(
                    "{}: reset ({})",
                    ep.name(),
                    page.reason.as_deref().unwrap_or("no reason")
                ));
                resets += 1;
                if resets > MAX_RESETS {
                    return Err(DevErr(format!(
                        "device {}: pull answered reset {resets} times ({})",
                        self.idx,
                        page.reason.unwrap_or_default()
                    )));
                }
                self.copy.clear();
                self.cursor = None;
                initial = true;
                continue;
            }
            for ch in &page.changes {
                self.copy
                    .apply(ch)
                    .map_err(|e| DevErr(format!("device {}: {e}", self.idx)))?;
            }
            rows += page.changes.len() as u64;
            api.stats.rows.fetch_add(
                page.changes.len() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            let cursor = page.cursor.ok_or_else(|| {
                DevErr(format!("device {}: a pull page without a cursor", self.idx))
            })?;
            self.cursor = Some(cursor);
            self.last_mutation_seq = page.last_mutation_seq;
            if !page.has_more {
                return Ok(rows);
            }
        }
    }

    /// Pushes the queue in batches; a dropped request or answer is retried with the same batch
    /// (the server answers the stored results of what it applied).
    pub async fn push(&mut self, api: &Api, s: &Settings) -> Result<(), DevErr> {
        let url = api.url("/api/v1/sync/push");
        while !self.queue.is_empty() {
            let n = s.push_batch.max(1).min(self.queue.len());
            let mutations: Vec<Value> = self.queue[..n]
                .iter()
                .map(|m| json!({"seq": m.seq, "name": m.name, "args": m.args}))
                .collect();
            let body =
                serde_json::to_vec(&json!({"device_id": self.device_id, "mutations": mutations}))
                    .map_err(|e| DevErr(format!("push body: {e}")))?;
            let r = self
                .call(api, s, Ep::Push, Faults::Any, |c, tok| {
                    c.post(&url)
                        .bearer_auth(tok)
                        .header(CONTENT_TYPE, "application/json")
                        .header("x-sync-protocol", "1")
                        .body(body.clone())
                })
                .await?;
            if r.status != 200 {
                return Err(self.unexpected(api, Ep::Push, &r));
            }
            let pr: PushResponse = r
                .json()
                .map_err(|e| DevErr(format!("device {}: push answer: {e}", self.idx)))?;
            if pr.results.len() != n {
                api.stats.error("push: wrong number of results".into());
                return Err(DevErr(format!(
                    "device {}: pushed {n} mutations, got {} results",
                    self.idx,
                    pr.results.len()
                )));
            }
            for (m, res) in self.queue.drain(..n).zip(pr.results) {
                if m.seq != res.seq {
                    api.stats.error("push: results out of order".into());
                    return Err(DevErr(format!(
                        "device {}: result for seq {} where {} was expected",
                        self.idx, res.seq, m.seq
                    )));
                }
                let code = res.error.map(|e| e.code);
                let label = match &code {
                    Some(c) => format!("{}: {c}", res.status),
                    None => res.status.clone(),
                };
                api.stats.outcome(m.name, &label);
                // Every mutation the simulator makes is valid: a rejection is a bug on one side.
                if res.status == "rejected" {
                    api.stats.error(format!("push: {} {label}", m.name));
                }
                self.acked.push(Acked {
                    seq: m.seq,
                    name: m.name,
                    status: res.status,
                    version: res.version,
                    expect: m.expect,
                });
            }
        }
        Ok(())
    }

    pub(super) fn enqueue(&mut self, name: &'static str, args: Value, expect: Expect) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Mutation {
            seq,
            name,
            args,
            expect,
        });
    }

    /// The access token and caught-up cursor, for the throughput measurement.
    pub fn session(&self) -> Option<(String, String)> {
        self.cursor.clone().map(|c| (self.access.clone(), c))
    }
}
