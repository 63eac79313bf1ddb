//! The run: log the fleet in, have a manager give every device an assignment, play the
//! profile on every device at once (bounded by the requests in flight), check convergence,
//! measure caught-up pulls against `/healthz`, and write the report.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{Api, Fault};
use super::device::{DevErr, Device, Settings, WorkOrder};
use super::jpeg;
use super::stats::{Ep, Stats, Summary};
use super::verify::Verdict;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Initial sync, 3 incremental pulls and one push of `mutations` (issue 8's target).
    Morning,
    /// The morning plus photos (tus, some interrupted and resumed), a token refresh and a
    /// second offline session whose photo is uploaded after its evidence row is pushed.
    Full,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Morning => "morning",
            Profile::Full => "full",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub url: String,
    pub devices: usize,
    pub concurrency: usize,
    pub seed: u64,
    pub profile: Profile,
    pub password: String,
    /// Inspectors of the demo city (`inspector001`…); devices take them in turn.
    pub inspectors: usize,
    /// The manager who plans the assignments (city-wide: `manager01`).
    pub manager: String,
    pub page_limit: u32,
    pub drop_rate: f64,
    pub interrupt_rate: f64,
    pub photos: usize,
    /// Width and height of the photos, in pixels.
    pub photo_size: (u16, u16),
    pub mutations: usize,
    pub push_batch: usize,
    /// Devices start spread over this many seconds (0: all at once).
    pub ramp_secs: f64,
    /// Seconds of each caught-up pull and /healthz throughput run (0: skip).
    pub rate_secs: f64,
    /// Devices checked at once at the end (the check is not the load being measured).
    pub check_concurrency: usize,
    pub server_pid: Option<u32>,
    pub gzip: bool,
    pub timeout_secs: u64,
    pub progress_secs: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            url: "http://127.0.0.1:8080".into(),
            devices: 20,
            concurrency: 200,
            seed: 1,
            profile: Profile::Full,
            password: "demo-password-123".into(),
            inspectors: 500,
            manager: "manager01".into(),
            page_limit: 1000,
            drop_rate: 0.05,
            interrupt_rate: 0.3,
            photos: 2,
            photo_size: (640, 480),
            mutations: 20,
            push_batch: 50,
            ramp_secs: 0.0,
            rate_secs: 3.0,
            check_concurrency: 16,
            server_pid: None,
            gzip: true,
            timeout_secs: 120,
            progress_secs: 10.0,
        }
    }
}

/// What a run found.
pub struct Outcome {
    pub text: String,
    pub json: Value,
    pub converged: bool,
    pub errors: u64,
}

#[derive(Default)]
struct Progress {
    phase: Mutex<String>,
    logged_in: AtomicUsize,
    synced: AtomicUsize,
    done: AtomicUsize,
    failed: AtomicUsize,
}

impl Progress {
    fn set_phase(&self, p: &str) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = p.to_string();
        eprintln!("xuncha-sim: {p}");
    }
}

/// Server memory, from /proc/<pid>/status (kB).
fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// This process's CPU time so far (user + system), in seconds: the client shares the machine
/// with the server, and a saturated client thread would show up as server latency.
fn self_cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces), from field 3 on.
    let rest = s.get(s.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // Linux reports these in USER_HZ, which is 100 on every architecture it supports.
    Some(ticks as f64 / 100.0)
}

fn username(prefix: &str, n: usize, total: usize, min_width: usize) -> String {
    let w = total.to_string().len().max(min_width);
    format!("{prefix}{n:0w$}")
}

/// A unit to assign, with a piece of its equipment (id, category) when it has one.
type Target = (String, Option<(String, String)>);

#[derive(Deserialize)]
struct EquipmentList {
    items: Vec<EquipmentItem>,
}

#[derive(Deserialize)]
struct EquipmentItem {
    id: String,
    unit_id: String,
    category_code: String,
}

#[derive(Deserialize)]
struct UnitList {
    items: Vec<UnitItem>,
}

#[derive(Deserialize)]
struct UnitItem {
    id: String,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// A manager gives each device's user an assignment in their district: a unit with an
/// elevator (checked item by item), one per device. Several sessions of the manager share
/// the work.
async fn plan_assignments(
    api: &Arc<Api>,
    o: &Options,
    s: &Arc<Settings>,
    devices: &mut [Device],
) -> Result<(), String> {
    let sessions = 4.min(devices.len().max(1));
    let mut managers = Vec::new();
    for k in 0..sessions {
        let mut m = Device::new(90_000 + k, o.manager.clone(), "setup", o.seed);
        m.login(api, s)
            .await
            .map_err(|e| format!("manager {} could not log in: {e}", o.manager))?;
        managers.push(m);
    }
    // Targets per district: units with an elevator, else any unit.
    let mut districts: Vec<String> = devices.iter().map(|d| d.region.clone()).collect();
    districts.sort();
    districts.dedup();
    let mut targets: HashMap<String, Vec<Target>> = HashMap::new();
    for d in &districts {
        let path = format!("/api/v1/equipment?region={d}&category=3000&limit=500");
        let r = managers[0]
            .rest(api, s, Ep::SetupList, &path, None)
            .await
            .map_err(|e| e.0)?;
        let mut t: Vec<Target> = Vec::new();
        if r.status == 200 {
            let list: EquipmentList = r.json()?;
            let mut seen = std::collections::HashSet::new();
            for e in list.items {
                if seen.insert(e.unit_id.clone()) {
                    t.push((e.unit_id, Some((e.id, e.category_code))));
                }
            }
        } else {
            api.stats.error(format!(
                "setup: equipment list answered {} {}",
                r.status,
                r.error_code()
            ));
        }
        if t.is_empty() {
            let r = managers[0]
                .rest(
                    api,
                    s,
                    Ep::SetupList,
                    &format!("/api/v1/units?region={d}&limit=500"),
                    None,
                )
                .await
                .map_err(|e| e.0)?;
            if r.status != 200 {
                return Err(format!(
                    "setup: units of {d} answered {} {}",
                    r.status,
                    r.error_code()
                ));
            }
            let list: UnitList = r.json()?;
            t = list.items.into_iter().map(|u| (u.id, None)).collect();
        }
        targets.insert(d.clone(), t);
    }
    let window_start =
        (Utc::now() - chrono::Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let window_end =
        (Utc::now() + chrono::Duration::days(3)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut per_district: HashMap<String, usize> = HashMap::new();
    let mut jobs: Vec<Vec<(usize, Value, WorkOrder)>> = vec![Vec::new(); sessions];
    for (i, d) in devices.iter().enumerate() {
        let k = per_district.entry(d.region.clone()).or_default();
        let Some(list) = targets.get(&d.region).filter(|l| !l.is_empty()) else {
            api.stats
                .error(format!("setup: no unit to assign in {}", d.region));
            continue;
        };
        let (unit, eq) = list[*k % list.len()].clone();
        *k += 1;
        let body = json!({
            "kind": "routine",
            "unit_id": unit,
            "equipment_ids": eq.iter().map(|e| e.0.clone()).collect::<Vec<_>>(),
            "team": [d.user_id],
            "window_start": window_start,
            "window_end": window_end,
            "notes": format!("xuncha-sim device {}", d.idx),
        });
        let wo = WorkOrder {
            assignment_id: String::new(),
            unit_id: unit,
            equipment: eq,
        };
        jobs[i % sessions].push((i, body, wo));
    }
    let results =
        futures_util::future::join_all(managers.into_iter().zip(jobs).map(|(mut m, jobs)| {
            let (api, s) = (api.clone(), s.clone());
            async move {
                let mut out = Vec::new();
                for (i, body, mut wo) in jobs {
                    let r = m
                        .rest(
                            &api,
                            &s,
                            Ep::SetupAssign,
                            "/api/v1/assignments",
                            Some(&body),
                        )
                        .await?;
                    if r.status != 201 {
                        api.stats.error(format!(
                            "setup: POST assignment answered {} {}",
                            r.status,
                            r.error_code()
                        ));
                        return Err(DevErr(format!(
                            "setup: POST /api/v1/assignments answered {}: {}",
                            r.status,
                            String::from_utf8_lossy(&r.body)
                        )));
                    }
                    let c: Created = r.json().map_err(DevErr)?;
                    wo.assignment_id = c.id;
                    out.push((i, wo));
                }
                Ok::<_, DevErr>(out)
            }
        }))
        .await;
    for r in results {
        for (i, wo) in r.map_err(|e| e.0)? {
            devices[i].work = Some(wo);
        }
    }
    Ok(())
}

async fn play(
    mut d: Device,
    api: Arc<Api>,
    s: Arc<Settings>,
    o: Arc<Options>,
    bases: Arc<Vec<Vec<u8>>>,
    progress: Arc<Progress>,
) -> Device {
    let r: Result<(), DevErr> = async {
        d.pull(&api, &s, false).await?;
        progress.synced.fetch_add(1, Ordering::Relaxed);
        d.choose_edit_targets(1);
        match o.profile {
            Profile::Morning => {
                d.work_offline(&s, 0, &api);
                d.pull(&api, &s, false).await?;
                d.push(&api, &s).await?;
                d.pull(&api, &s, false).await?;
                d.pull(&api, &s, false).await?;
            }
            Profile::Full => {
                d.take_photos(&bases, o.photos + 1);
                d.work_offline(&s, o.photos, &api);
                d.pull(&api, &s, false).await?;
                for i in 0..o.photos {
                    d.upload(&api, &s, i).await?;
                }
                d.push(&api, &s).await?;
                d.pull(&api, &s, false).await?;
                d.refresh(&api, &s).await?;
                d.work_offline_again(Some(o.photos));
                d.push(&api, &s).await?;
                d.upload(&api, &s, o.photos).await?;
                d.pull(&api, &s, false).await?;
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = r {
        api.stats
            .error("device gave up its session (see failures)".into());
        progress.failed.fetch_add(1, Ordering::Relaxed);
        d.failed = Some(e.0);
    }
    progress.done.fetch_add(1, Ordering::Relaxed);
    d
}

/// Requests per second of one route with `workers` requests in flight for `secs`.
async fn rate(
    api: &Arc<Api>,
    ep: Ep,
    secs: f64,
    workers: usize,
    sessions: &Arc<Vec<(String, String)>>,
) -> (u64, u64, f64) {
    let ok = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (api, ok, bad, next, sessions) = (
                api.clone(),
                ok.clone(),
                bad.clone(),
                next.clone(),
                sessions.clone(),
            );
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let rb = if ep == Ep::RateHealthz || sessions.is_empty() {
                        api.client.get(api.url("/healthz"))
                    } else {
                        let (tok, cur) =
                            &sessions[next.fetch_add(1, Ordering::Relaxed) % sessions.len()];
                        api.client
                            .get(format!("{}/api/v1/sync/pull?cursor={cur}", api.base))
                            .bearer_auth(tok)
                            .header("x-sync-protocol", "1")
                    };
                    match api.send(ep, rb, Fault::None).await {
                        Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                        Ok(r) => {
                            api.stats.error(format!(
                                "{}: HTTP {} {}",
                                ep.name(),
                                r.status,
                                r.error_code()
                            ));
                            bad.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(_) => {
                            api.stats.error(format!("{}: transport", ep.name()));
                            bad.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    (
        ok.load(Ordering::Relaxed),
        bad.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64(),
    )
}

fn fmt_summary(out: &mut String, s: &Summary, secs: Option<f64>) {
    let rate = secs.map_or(String::new(), |t| {
        format!("{:>9.1}", s.count as f64 / t.max(1e-9))
    });
    let _ = writeln!(
        out,
        "  {:<30} {:>8} {:>9} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
        s.ep.name(),
        s.count,
        rate,
        s.p50,
        s.p95,
        s.p99,
        s.max
    );
}

fn summary_json(s: &Summary) -> Value {
    json!({"count": s.count, "p50_ms": s.p50, "p95_ms": s.p95, "p99_ms": s.p99, "max_ms": s.max})
}

pub async fn run(o: Options) -> Result<Outcome, String> {
    let started = Instant::now();
    let o = Arc::new(o);
    let stats = Arc::new(Stats::default());
    let api = Arc::new(Api::new(
        &o.url,
        o.concurrency,
        o.gzip,
        Duration::from_secs(o.timeout_secs),
        stats.clone(),
    )?);
    let s = Arc::new(Settings {
        password: o.password.clone(),
        page_limit: o.page_limit,
        drop_rate: o.drop_rate,
        interrupt_rate: o.interrupt_rate,
        push_batch: o.push_batch,
        mutations: o.mutations,
    });
    let progress = Arc::new(Progress::default());

    // The server answers?
    let r = api
        .client
        .get(api.url("/healthz"))
        .send()
        .await
        .map_err(|e| format!("{} does not answer: {e}", o.url))?;
    if !r.status().is_success() {
        return Err(format!("{}/healthz answered {}", o.url, r.status()));
    }

    // Server memory, sampled while the run lasts.
    let stop = Arc::new(AtomicBool::new(false));
    let rss_max = Arc::new(AtomicU64::new(0));
    // The highest VmRSS sampled since the current phase began.
    let phase_rss = Arc::new(AtomicU64::new(0));
    let rss_start = o.server_pid.and_then(|p| proc_status_kb(p, "VmRSS:"));
    let sampler = o.server_pid.map(|pid| {
        let (stop, rss_max, phase_rss) = (stop.clone(), rss_max.clone(), phase_rss.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(kb) = proc_status_kb(pid, "VmRSS:") {
                    rss_max.fetch_max(kb, Ordering::Relaxed);
                    phase_rss.fetch_max(kb, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    });
    let reporter = (o.progress_secs > 0.0).then(|| {
        let (stop, progress, stats, rss_max, o) = (stop.clone(), progress.clone(), stats.clone(), rss_max.clone(), o.clone());
        tokio::spawn(async move {
            let mut last = (Instant::now(), 0u64);
            loop {
                let t = Instant::now();
                while t.elapsed().as_secs_f64() < o.progress_secs {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                let req = stats.requests.load(Ordering::Relaxed);
                let rate = (req - last.1) as f64 / last.0.elapsed().as_secs_f64();
                last = (Instant::now(), req);
                let phase = progress.phase.lock().map(|p| p.clone()).unwrap_or_default();
                eprintln!(
                    "xuncha-sim [{:>6.1}s] {phase}: logged in {}, synced {}, done {} (failed {}) of {}; {req} requests ({rate:.0}/s), {} rows, {} errors{}",
                    started.elapsed().as_secs_f64(),
                    progress.logged_in.load(Ordering::Relaxed),
                    progress.synced.load(Ordering::Relaxed),
                    progress.done.load(Ordering::Relaxed),
                    progress.failed.load(Ordering::Relaxed),
                    o.devices,
                    stats.rows.load(Ordering::Relaxed),
                    stats.error_count.load(Ordering::Relaxed),
                    match rss_max.load(Ordering::Relaxed) {
                        0 => String::new(),
                        kb => format!(", server RSS max {:.1} MB", kb as f64 / 1024.0),
                    }
                );
            }
        })
    });

    let mut phases: Vec<(&str, f64, Option<u64>)> = Vec::new();
    let pid = o.server_pid;
    let phase_end = |name: &'static str, t: Instant| {
        let rss = pid.map(|p| {
            let now = proc_status_kb(p, "VmRSS:").unwrap_or(0);
            phase_rss.swap(now, Ordering::Relaxed).max(now)
        });
        (name, t.elapsed().as_secs_f64(), rss)
    };
    // Photos.
    let t = Instant::now();
    let bases = Arc::new(if o.profile == Profile::Full && o.photos > 0 {
        jpeg::base_images(4, o.photo_size.0.max(8), o.photo_size.1.max(8), o.seed)?
    } else {
        Vec::new()
    });
    if !bases.is_empty() {
        phases.push(phase_end("make photos", t));
    }

    // Log the fleet in.
    progress.set_phase(&format!("logging in {} devices", o.devices));
    let t = Instant::now();
    let run_tag = format!("{:x}", Utc::now().timestamp_millis() & 0xffff_ffff);
    let logins = futures_util::stream::iter((0..o.devices).map(|i| {
        let (api, s, progress) = (api.clone(), s.clone(), progress.clone());
        let user = username("inspector", i % o.inspectors.max(1) + 1, o.inspectors, 3);
        let mut d = Device::new(i, user, &run_tag, o.seed);
        async move {
            let r = d.login(&api, &s).await;
            progress.logged_in.fetch_add(1, Ordering::Relaxed);
            (d, r)
        }
    }))
    .buffer_unordered(o.concurrency.max(1))
    .collect::<Vec<_>>()
    .await;
    let mut devices = Vec::new();
    let mut login_failures = Vec::new();
    for (d, r) in logins {
        match r {
            Ok(()) => devices.push(d),
            Err(e) => login_failures.push(format!("device {} ({}): {e}", d.idx, d.username)),
        }
    }
    devices.sort_by_key(|d| d.idx);
    phases.push(phase_end("login", t));

    // The assignments.
    progress.set_phase("a manager plans one assignment per device");
    let t = Instant::now();
    plan_assignments(&api, &o, &s, &mut devices).await?;
    phases.push(phase_end("setup (assignments)", t));

    // The fleet.
    progress.set_phase(&format!(
        "{} profile on {} devices",
        o.profile.name(),
        devices.len()
    ));
    let fleet_cpu0 = self_cpu_secs();
    let t = Instant::now();
    let req_before = stats.requests.load(Ordering::Relaxed);
    let n = devices.len().max(1);
    let handles: Vec<_> = devices
        .into_iter()
        .enumerate()
        .map(|(k, d)| {
            let (api, s, o, bases, progress) = (
                api.clone(),
                s.clone(),
                o.clone(),
                bases.clone(),
                progress.clone(),
            );
            let delay = Duration::from_secs_f64(o.ramp_secs * k as f64 / n as f64);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                play(d, api, s, o, bases, progress).await
            })
        })
        .collect();
    let mut devices = Vec::new();
    for h in handles {
        devices.push(h.await.map_err(|e| format!("a device task failed: {e}"))?);
    }
    let fleet_requests = stats.requests.load(Ordering::Relaxed) - req_before;
    phases.push(phase_end("fleet", t));
    let fleet_secs = t.elapsed().as_secs_f64();
    let copy_rows: usize = devices.iter().map(|d| d.copy.row_count()).sum();

    // Convergence.
    let fleet_cpu = fleet_cpu0.and_then(|c0| Some(self_cpu_secs()? - c0));
    progress.set_phase("final pull and checksum on every device");
    let t = Instant::now();
    let mut checked: Vec<(Device, Result<Verdict, DevErr>)> =
        futures_util::stream::iter(devices.into_iter().map(|mut d| {
            let (api, s) = (api.clone(), s.clone());
            async move {
                let v = d.verify(&api, &s).await;
                (d, v)
            }
        }))
        .buffer_unordered(o.check_concurrency.max(1))
        .collect()
        .await;
    checked.sort_by_key(|(d, _)| d.idx);
    let (devices, verdicts): (Vec<Device>, Vec<Result<Verdict, DevErr>>) =
        checked.into_iter().unzip();
    phases.push(phase_end("convergence check", t));

    let work_requests = stats.requests.load(Ordering::Relaxed);
    let work_secs = started.elapsed().as_secs_f64();

    // Caught-up pull against /healthz, same client.
    let mut rates = None;
    if o.rate_secs > 0.0 {
        progress.set_phase("throughput: caught-up pull against /healthz");
        let sessions: Arc<Vec<(String, String)>> =
            Arc::new(devices.iter().filter_map(Device::session).collect());
        let workers = o.concurrency.clamp(1, 64);
        let (mut pull_ok, mut health_ok, mut pull_t, mut health_t) = (0, 0, 0.0, 0.0);
        for _ in 0..2 {
            let (ok, _, secs) = rate(&api, Ep::RatePull, o.rate_secs, workers, &sessions).await;
            pull_ok += ok;
            pull_t += secs;
            let (ok, _, secs) = rate(&api, Ep::RateHealthz, o.rate_secs, workers, &sessions).await;
            health_ok += ok;
            health_t += secs;
        }
        rates = Some((
            pull_ok as f64 / pull_t,
            health_ok as f64 / health_t,
            workers,
        ));
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(h) = sampler {
        let _ = h.await;
    }
    if let Some(h) = reporter {
        let _ = h.await;
    }
    let total_secs = started.elapsed().as_secs_f64();

    // The report.
    let hwm = o.server_pid.and_then(|p| proc_status_kb(p, "VmHWM:"));
    let rss_end = o.server_pid.and_then(|p| proc_status_kb(p, "VmRSS:"));
    let rss_max_kb = rss_max.load(Ordering::Relaxed);
    let mut out = String::new();
    let _ = writeln!(out, "== xuncha-sim report ==");
    let _ = writeln!(
        out,
        "server {}  profile {}  devices {} (inspector001..{}, {} per user at most)  in flight <= {}  seed {}  page limit {}  drop rate {}  gzip {}",
        o.url,
        o.profile.name(),
        o.devices,
        username("inspector", o.inspectors.min(o.devices), o.inspectors, 3),
        o.devices.div_ceil(o.inspectors.max(1)),
        o.concurrency,
        o.seed,
        o.page_limit,
        o.drop_rate,
        o.gzip
    );
    let phase_line: Vec<String> = phases
        .iter()
        .map(|(p, t, _)| format!("{p} {t:.1} s"))
        .collect();
    let _ = writeln!(
        out,
        "phases: {}  (total {total_secs:.1} s)",
        phase_line.join(", ")
    );
    let total_requests = stats.requests.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "requests: {work_requests} in {work_secs:.1} s = {:.1} req/s (login to convergence check); fleet phase {fleet_requests} in {fleet_secs:.1} s = {:.1} req/s",
        work_requests as f64 / work_secs.max(1e-9),
        fleet_requests as f64 / fleet_secs.max(1e-9)
    );
    if let Some(cpu) = fleet_cpu {
        let _ = writeln!(
            out,
            "client CPU over the fleet phase: {cpu:.1} s of {fleet_secs:.1} s ({:.0}% of one core; a client thread near 100% would inflate the latencies below)",
            100.0 * cpu / fleet_secs.max(1e-9)
        );
    }
    let rows = stats.rows.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "rows pulled: {rows} ({:.0} rows/s over the fleet phase); rows held by all copies at the end of the fleet phase: {copy_rows}; body bytes read (decompressed) {:.1} MB",
        rows as f64 / fleet_secs.max(1e-9),
        stats.body_bytes.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = writeln!(
        out,
        "latency (ms):\n  {:<30} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "endpoint", "count", "req/s", "p50", "p95", "p99", "max"
    );
    let summaries = stats.summaries();
    for sm in &summaries {
        let secs = match sm.ep {
            Ep::PullInitial
            | Ep::PullIncremental
            | Ep::Push
            | Ep::UploadCreate
            | Ep::UploadPatch
            | Ep::UploadHead
            | Ep::Refresh => Some(fleet_secs),
            Ep::Login => phases.iter().find(|p| p.0 == "login").map(|p| p.1),
            _ => None,
        };
        fmt_summary(&mut out, sm, secs);
    }
    let all_pulls = stats.summary_of(&[Ep::PullInitial, Ep::PullIncremental], Ep::PullIncremental);
    if let Some(p) = &all_pulls {
        let _ = writeln!(
            out,
            "  every fleet pull (initial + incremental): {} requests, p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
            p.count, p.p50, p.p95, p.p99
        );
    }

    // Mutations.
    let outcomes = stats.outcomes();
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ((name, status), n) in &outcomes {
        *by_status
            .entry(status.split(':').next().unwrap_or(status).to_string())
            .or_default() += n;
        by_name
            .entry(name.clone())
            .or_default()
            .push(format!("{status} {n}"));
    }
    let acked: u64 = by_status.values().sum();
    let pending: usize = devices.iter().map(Device::pending).sum();
    let _ = writeln!(
        out,
        "mutations acknowledged: {acked} ({}); never acknowledged (device gave up): {pending}",
        by_status
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (name, v) in &by_name {
        let _ = writeln!(out, "  {name}: {}", v.join(", "));
    }
    let events = stats.events();
    if !events.is_empty() {
        let _ = writeln!(out, "events (simulated faults and recoveries):");
        for (k, v) in &events {
            let _ = writeln!(out, "  {k}: {v}");
        }
    }
    let errors = stats.errors();
    let error_total: u64 = errors.values().sum();
    if errors.is_empty() {
        let _ = writeln!(out, "errors: none");
    } else {
        let _ = writeln!(out, "errors: {error_total}");
        let examples = stats.examples();
        for (k, v) in &errors {
            match examples.get(k) {
                Some(e) => {
                    let _ = writeln!(out, "  {k}: {v} (e.g. {e})");
                }
                None => {
                    let _ = writeln!(out, "  {k}: {v}");
                }
            }
        }
    }
    let failures: Vec<String> = login_failures
        .iter()
        .cloned()
        .chain(devices.iter().filter_map(|d| {
            d.failed
                .as_ref()
                .map(|f| format!("device {} ({}): {f}", d.idx, d.username))
        }))
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "device failures: {} (first 10)", failures.len());
        for f in failures.iter().take(10) {
            let _ = writeln!(out, "  {f}");
        }
    }

    // Convergence.
    let mut matched = 0usize;
    let mut mismatches: Vec<String> = Vec::new();
    let mut lost: Vec<String> = Vec::new();
    let mut check_errors: Vec<String> = Vec::new();
    let mut acked_checked = 0u64;
    for (d, v) in devices.iter().zip(&verdicts) {
        match v {
            Ok(v) => {
                if v.checksum_ok {
                    matched += 1;
                }
                acked_checked += v.acked_checked;
                mismatches.extend(v.mismatches.iter().cloned());
                lost.extend(v.lost.iter().cloned());
            }
            Err(e) => check_errors.push(format!("device {}: {e}", d.idx)),
        }
    }
    let converged = matched == devices.len()
        && lost.is_empty()
        && check_errors.is_empty()
        && login_failures.is_empty();
    let _ = writeln!(
        out,
        "convergence: {matched}/{} devices' copies match the server's checksum of their scope (10 tables); {acked_checked} acknowledged effects checked, {} missing; {} checks failed -> {}",
        devices.len(),
        lost.len(),
        check_errors.len(),
        if converged { "OK" } else { "FAILED" }
    );
    for m in mismatches.iter().chain(&lost).chain(&check_errors).take(20) {
        let _ = writeln!(out, "  {m}");
    }
    if let Some((p, h, w)) = rates {
        let _ = writeln!(
            out,
            "throughput, same client, {w} in flight, 2 x {:.1} s each: caught-up pull {p:.0} req/s, /healthz {h:.0} req/s, ratio {:.2}",
            o.rate_secs,
            p / h.max(1e-9)
        );
    }
    let mb = |kb: u64| kb as f64 / 1024.0;
    match (hwm, o.server_pid) {
        (Some(h), _) => {
            let per_phase: Vec<String> = phases
                .iter()
                .filter_map(|(p, _, r)| r.map(|kb| format!("{p} {:.1}", mb(kb))))
                .collect();
            let _ = writeln!(
                out,
                "server memory: peak RSS since the server started (VmHWM) {:.1} MB; VmRSS at the start {:.1} MB, at the end {:.1} MB; highest VmRSS sampled per phase (MB): {}",
                mb(h),
                mb(rss_start.unwrap_or(0)),
                mb(rss_end.unwrap_or(0)),
                per_phase.join(", ")
            );
        }
        (None, Some(pid)) => {
            let _ = writeln!(out, "server memory: /proc/{pid}/status not readable");
        }
        (None, None) => {
            let _ = writeln!(out, "server memory: not measured (no --server-pid)");
        }
    }
    if o.profile == Profile::Morning {
        let p99 = all_pulls.as_ref().map_or(f64::NAN, |p| p.p99);
        let rss = hwm.map(mb);
        let fleet_rss = phases
            .iter()
            .find(|p| p.0 == "fleet")
            .and_then(|p| p.2)
            .map(mb);
        let _ = writeln!(
            out,
            "issue 8 targets: zero errors {}; p99 pull < 100 ms {} ({p99:.1} ms); server RSS < 200 MB {}",
            if error_total == 0 { "MET" } else { "MISSED" },
            if p99 < 100.0 { "MET" } else { "MISSED" },
            match (rss, fleet_rss) {
                (Some(r), Some(f)) => format!(
                    "{} (peak {r:.1} MB since the server started; highest sampled during the morning sync itself {f:.1} MB)",
                    if r < 200.0 { "MET" } else { "MISSED" }
                ),
                (Some(r), None) =>
                    format!("{} ({r:.1} MB)", if r < 200.0 { "MET" } else { "MISSED" }),
                _ => "not measured".into(),
            }
        );
    }

    let json = json!({
        "url": o.url,
        "profile": o.profile.name(),
        "devices": o.devices,
        "concurrency": o.concurrency,
        "seed": o.seed,
        "phases_s": phases.iter().map(|(p, t, _)| (p.to_string(), json!(t))).collect::<serde_json::Map<_, _>>(),
        "server_rss_phase_max_mb": phases.iter().filter_map(|(p, _, r)| r.map(|kb| (p.to_string(), json!(mb(kb))))).collect::<serde_json::Map<_, _>>(),
        "server_rss_start_mb": rss_start.map(mb),
        "total_s": total_secs,
        "requests": total_requests,
        "work_requests_per_s": work_requests as f64 / work_secs.max(1e-9),
        "fleet_requests_per_s": fleet_requests as f64 / fleet_secs.max(1e-9),
        "rows_pulled": rows,
        "latency": summaries.iter().map(|s| (s.ep.key().to_string(), summary_json(s))).collect::<serde_json::Map<_, _>>(),
        "fleet_pulls": all_pulls.as_ref().map(summary_json),
        "mutations": outcomes.iter().map(|((n, st), c)| json!({"name": n, "status": st, "count": c})).collect::<Vec<_>>(),
        "events": events,
        "errors": errors,
        "error_examples": stats.examples(),
        "device_failures": failures,
        "converged": converged,
        "devices_matching": matched,
        "acked_checked": acked_checked,
        "mismatches": mismatches,
        "lost": lost,
        "check_errors": check_errors,
        "rate": rates.map(|(p, h, w)| json!({"pull_per_s": p, "healthz_per_s": h, "ratio": p / h.max(1e-9), "in_flight": w})),
        "server_rss_peak_mb": hwm.map(mb),
        "server_rss_max_sampled_mb": o.server_pid.map(|_| mb(rss_max_kb)),
    });
    Ok(Outcome {
        text: out,
        json,
        converged,
        errors: error_total + failures.len() as u64,
    })
}
