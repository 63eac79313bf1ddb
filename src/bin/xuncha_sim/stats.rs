//! What the run measured: latency per endpoint, errors by kind, events (simulated drops,
//! interrupted uploads, refreshes), mutation outcomes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The endpoints whose latency is reported, each on its own line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ep {
    Login,
    Refresh,
    PullInitial,
    PullIncremental,
    PullFinal,
    Push,
    Checksum,
    UploadCreate,
    UploadPatch,
    UploadHead,
    HazardGet,
    SetupList,
    SetupAssign,
    RatePull,
    RateHealthz,
}

impl Ep {
    pub fn name(self) -> &'static str {
        match self {
            Ep::Login => "login",
            Ep::Refresh => "refresh",
            Ep::PullInitial => "pull (initial)",
            Ep::PullIncremental => "pull (incremental)",
            Ep::PullFinal => "pull (final check)",
            Ep::Push => "push",
            Ep::Checksum => "checksum",
            Ep::UploadCreate => "upload create (POST)",
            Ep::UploadPatch => "upload PATCH",
            Ep::UploadHead => "upload HEAD",
            Ep::HazardGet => "GET hazard (check)",
            Ep::SetupList => "setup: list units/equipment",
            Ep::SetupAssign => "setup: POST assignment",
            Ep::RatePull => "pull (caught up, rate)",
            Ep::RateHealthz => "/healthz (rate)",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Ep::Login => "login",
            Ep::Refresh => "refresh",
            Ep::PullInitial => "pull_initial",
            Ep::PullIncremental => "pull_incremental",
            Ep::PullFinal => "pull_final",
            Ep::Push => "push",
            Ep::Checksum => "checksum",
            Ep::UploadCreate => "upload_create",
            Ep::UploadPatch => "upload_patch",
            Ep::UploadHead => "upload_head",
            Ep::HazardGet => "hazard_get",
            Ep::SetupList => "setup_list",
            Ep::SetupAssign => "setup_assign",
            Ep::RatePull => "rate_pull",
            Ep::RateHealthz => "rate_healthz",
        }
    }
}

#[derive(Default)]
struct Inner {
    /// Microseconds, per endpoint.
    latency: HashMap<Ep, Vec<u32>>,
    errors: BTreeMap<String, u64>,
    /// The first message seen for each error kind (transport errors say more than a kind).
    examples: BTreeMap<String, String>,
    events: BTreeMap<String, u64>,
    /// (mutation name, status or `rejected: code`) → count.
    outcomes: BTreeMap<(String, String), u64>,
}

#[derive(Default)]
pub struct Stats {
    inner: Mutex<Inner>,
    pub requests: AtomicU64,
    pub error_count: AtomicU64,
    pub rows: AtomicU64,
    pub body_bytes: AtomicU64,
}

/// Latency figures of one endpoint, in milliseconds.
#[derive(Debug, Clone)]
pub struct Summary {
    pub ep: Ep,
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Stats {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters for a report: keep going with what is there.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record(&self, ep: Ep, took: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let us = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        self.lock().latency.entry(ep).or_default().push(us);
    }

    pub fn error(&self, what: String) {
        self.error_count.fetch_add(1, Ordering::Relaxed);
        *self.lock().errors.entry(what).or_default() += 1;
    }

    /// An error with an example message kept for the report.
    pub fn error_with(&self, what: String, example: &str) {
        self.error_count.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.lock();
        inner
            .examples
            .entry(what.clone())
            .or_insert_with(|| example.chars().take(300).collect());
        *inner.errors.entry(what).or_default() += 1;
    }

    pub fn examples(&self) -> BTreeMap<String, String> {
        self.lock().examples.clone()
    }

    pub fn event(&self, what: &str) {
        self.event_n(what, 1);
    }

    pub fn event_n(&self, what: &str, n: u64) {
        *self.lock().events.entry(what.to_string()).or_default() += n;
    }

    pub fn outcome(&self, name: &str, status: &str) {
        *self
            .lock()
            .outcomes
            .entry((name.to_string(), status.to_string()))
            .or_default() += 1;
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.lock().errors.clone()
    }

    pub fn events(&self) -> BTreeMap<String, u64> {
        self.lock().events.clone()
    }

    pub fn outcomes(&self) -> BTreeMap<(String, String), u64> {
        self.lock().outcomes.clone()
    }

    pub fn summaries(&self) -> Vec<Summary> {
        let inner = self.lock();
        let mut eps: Vec<Ep> = inner.latency.keys().copied().collect();
        eps.sort();
        eps.into_iter()
            .filter_map(|ep| inner.latency.get(&ep).map(|v| summarize(ep, v)))
            .collect()
    }

    /// Figures over several endpoints together (e.g. every pull of the fleet).
    pub fn summary_of(&self, eps: &[Ep], label: Ep) -> Option<Summary> {
        let inner = self.lock();
        let all: Vec<u32> = eps
            .iter()
            .filter_map(|ep| inner.latency.get(ep))
            .flatten()
            .copied()
            .collect();
        (!all.is_empty()).then(|| summarize(label, &all))
    }
}

fn summarize(ep: Ep, v: &[u32]) -> Summary {
    let mut s = v.to_vec();
    s.sort_unstable();
    let q = |p: f64| {
        let i = ((s.len() as f64 * p).ceil() as usize).clamp(1, s.len()) - 1;
        f64::from(s[i]) / 1000.0
    };
    Summary {
        ep,
        count: s.len(),
        p50: q(0.50),
        p95: q(0.95),
        p99: q(0.99),
        max: q(1.0),
    }
}
