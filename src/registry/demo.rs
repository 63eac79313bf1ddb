//! `xuncha demo`: a deterministic synthetic city for trials and benchmarks. Districts, units
//! of every place type with valid USCCs, equipment of every category with ages, brakes,
//! faults and inspection dates (some overdue, some unregistered), managers, inspectors and a
//! few unit users, and hazards in every state of their lifecycle; risk facts as the registry
//! derives them.
//!
//! The same seed and sizes give the same data, ids included: everything is drawn from the
//! demo's own seeded generator (xoshiro256**, in `demo/rng.rs`), never from system entropy or the clock. Dates are
//! offsets from the `now` passed in, so a city generated on another day has the same shape
//! around that day.
//!
//! Rows are written through [`sync_tx`], like every write to synced tables: many rows per
//! insert and many inserts per transaction.

mod catalog;
mod names;
mod plan;
mod rng;

use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::codes::CodeBook;
use super::facts::{self, RefreshStats};
use super::queries;
use super::risk::RiskRules;
use crate::auth::password::{self, Hasher};
use crate::auth::queries::{self as user_queries, NewUserRow};
use crate::db::schema::{hazards, users};
use crate::db::{DbConn, SyncTx, sync_tx};

pub use names::CITY_NAME;

/// The demo city's division code (its districts are 330101, 330102, …).
pub const CITY_CODE: &str = "330100";
/// The password of every demo user unless `XUNCHA_DEMO_PASSWORD` says otherwise.
pub const DEFAULT_PASSWORD: &str = "demo-password-123";
pub const PASSWORD_ENV: &str = "XUNCHA_DEMO_PASSWORD";

/// Rows per multi-row INSERT. At 20 columns that is 20,000 bind parameters: under SQLite's
/// limit (32,766) and PostgreSQL's (65,535).
const BATCH: usize = 1_000;
/// Rows per transaction.
const TX_UNITS: usize = 10_000;
const TX_EQUIPMENT: usize = 20_000;
const TX_HAZARDS: usize = 20_000;
/// Units whose risk facts are refreshed per transaction.
const TX_REFRESH: usize = 2_000;

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub seed: u64,
    pub units: u32,
    pub equipment: u32,
    /// 1 to 99 (district codes 330101..=330199).
    pub districts: u32,
    pub inspectors: u32,
    pub managers: u32,
    pub hazards: u32,
    /// Of every demo user.
    pub password: String,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            seed: 1,
            units: 50_000,
            equipment: 300_000,
            districts: 12,
            inspectors: 500,
            managers: 40,
            hazards: 5_000,
            password: DEFAULT_PASSWORD.into(),
        }
    }
}

impl DemoOptions {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=99).contains(&self.districts) {
            return Err("--districts must be 1 to 99 (district codes 330101 to 330199)".into());
        }
        if !(1..=5_000_000).contains(&self.units) {
            return Err("--units must be 1 to 5,000,000".into());
        }
        if self.equipment > 30_000_000 {
            return Err("--equipment must be at most 30,000,000".into());
        }
        if self.inspectors > 100_000 || self.managers > 10_000 {
            return Err(
                "--inspectors must be at most 100,000 and --managers at most 10,000".into(),
            );
        }
        if self.hazards > 10_000_000 {
            return Err("--hazards must be at most 10,000,000".into());
        }
        if self.hazards > 0 && self.inspectors == 0 && self.managers == 0 {
            return Err(
                "hazards need someone to report them: give --inspectors or --managers".into(),
            );
        }
        password::check_policy(&self.password)
            .map_err(|e| format!("the demo password ({PASSWORD_ENV}) {e}"))
    }
}

/// What was generated.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub seed: u64,
    /// (code, name) of every district.
    pub districts: Vec<(String, String)>,
    pub units: u64,
    pub equipment: u64,
    /// By top-level category code, largest first.
    pub equipment_by_category: Vec<(String, u64)>,
    pub managers: u64,
    pub inspectors: u64,
    pub unit_users: u64,
    pub hazards: u64,
    /// Hazards not yet verified or closed (and not fixed on site).
    pub open_hazards: u64,
    /// What the final risk refresh changed (units: those with open hazards; equipment: none,
    /// as its facts were stamped when generated).
    pub refreshed: RefreshStats,
    /// The first user of each role, to log in with.
    pub first_manager: Option<String>,
    pub first_inspector: Option<String>,
    pub first_unit_user: Option<String>,
    pub elapsed: Duration,
}

/// Where a long run reports how far it is. Phases come one after another; `advance` gets
/// the number done so far in the current phase.
pub trait Progress {
    fn phase(&mut self, name: &str, total: u64);
    fn advance(&mut self, done: u64);
    fn finish(&mut self);
}

/// No progress reports.
pub struct Silent;

impl Progress for Silent {
    fn phase(&mut self, _: &str, _: u64) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self) {}
}

/// A hazard as the demo writes it (the hazard lifecycle itself belongs to the work
/// capability; the demo only seeds rows in its states).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = hazards)]
struct HazardRow {
    id: String,
    unit_id: String,
    equipment_id: Option<String>,
    region_code: String,
    inspection_id: Option<String>,
    item_code: Option<String>,
    description: String,
    level: String,
    state: String,
    fixed_on_site: bool,
    deadline: Option<NaiveDateTime>,
    notice_no: Option<String>,
    reported_by: String,
    reported_at: NaiveDateTime,
    closed_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i64,
}

fn insert_hazards(tx: &mut SyncTx<'_>, rows: &[HazardRow]) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    crate::with_engine!(tx.conn(), |c| diesel::insert_into(hazards::table)
        .values(rows)
        .execute(c))?;
    Ok(())
}

fn db_err(what: &'static str) -> impl Fn(diesel::result::Error) -> String {
    move |e| format!("{what}: {e}")
}

/// Is the registry empty (no units)? `serve --demo` seeds only then.
pub fn registry_is_empty(conn: &mut DbConn) -> Result<bool, String> {
    Ok(queries::count_units(conn).map_err(db_err("reading the registry"))? == 0)
}

/// Generates the demo city into `conn`'s database, which must hold no units yet. Call it
/// after `app::init` (which creates `admin` on an empty database: once demo users exist,
/// it no longer would). Blocking. Hashes the demo password once with `hasher` and gives
/// every demo user that hash.
pub fn generate(
    conn: &mut DbConn,
    opts: &DemoOptions,
    hasher: &Hasher,
    rules: &RiskRules,
    now: NaiveDateTime,
    progress: &mut dyn Progress,
) -> Result<DemoSummary, String> {
    let started = Instant::now();
    opts.validate()?;
    let held = queries::count_units(conn).map_err(db_err("reading the registry"))?;
    if held > 0 {
        return Err(format!(
            "the database already holds {held} units; the demo city goes into a fresh database \
             only (give another --data-dir or --database-url)"
        ));
    }
    let book = CodeBook::load(conn).map_err(db_err("reading the code tables"))?;
    progress.phase("planning", 1);
    let mut plan = plan::Plan::build(opts, now, &book, rules)?;
    progress.advance(1);
    check_usernames(conn, &plan)?;
    let hash = hasher.hash_blocking(&opts.password)?;

    let written = (|| -> Result<RefreshStats, String> {
        write_units(conn, &mut plan, progress)?;
        write_equipment(conn, &plan, rules, now, progress)?;
        write_users(conn, &plan, &hash, now, progress)?;
        write_hazards(conn, &mut plan, progress)?;
        let refreshed = refresh(conn, &plan, now, rules, progress)?;
        progress.phase("vacuum", 1);
        crate::db::settle_after_bulk_load(conn).map_err(db_err("vacuuming"))?;
        progress.advance(1);
        Ok(refreshed)
    })();
    progress.finish();
    let refreshed = written.map_err(|e| {
        format!("{e} (the database now holds part of the demo city: start again on a fresh one)")
    })?;

    let open_hazards = plan
        .hazards
        .iter()
        .filter(|h| {
            matches!(
                h.state.as_str(),
                "reported" | "classified" | "rectifying" | "rectification_submitted"
            )
        })
        .count() as u64;
    let first = |role: &str| {
        plan.users
            .iter()
            .find(|u| u.role == role)
            .map(|u| u.username.clone())
    };
    Ok(DemoSummary {
        seed: opts.seed,
        districts: plan
            .districts
            .iter()
            .map(|d| (d.code.clone(), d.name.clone()))
            .collect(),
        units: plan.units.len() as u64,
        equipment: plan.equipment.len() as u64,
        equipment_by_category: plan.by_top_category(),
        managers: plan.managers as u64,
        inspectors: plan.inspectors as u64,
        unit_users: (plan.users.len() - plan.managers - plan.inspectors) as u64,
        hazards: plan.hazards.len() as u64,
        open_hazards,
        refreshed,
        first_manager: first("manager"),
        first_inspector: first("inspector"),
        first_unit_user: first("unit"),
        elapsed: started.elapsed(),
    })
}

/// Refuses to start when a username the demo needs is taken (rather than failing half-way).
fn check_usernames(conn: &mut DbConn, plan: &plan::Plan) -> Result<(), String> {
    let wanted: Vec<&str> = plan.users.iter().map(|u| u.username.as_str()).collect();
    let mut taken: Vec<String> = Vec::new();
    for chunk in wanted.chunks(500) {
        taken.extend(
            users::table
                .filter(users::username.eq_any(chunk))
                .select(users::username)
                .load::<String>(conn)
                .map_err(db_err("reading users"))?,
        );
    }
    if taken.is_empty() {
        return Ok(());
    }
    taken.sort();
    Err(format!(
        "the database already has users the demo would create ({}{}); use a fresh database",
        taken.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
        if taken.len() > 5 { ", …" } else { "" }
    ))
}

fn write_units(
    conn: &mut DbConn,
    plan: &mut plan::Plan,
    progress: &mut dyn Progress,
) -> Result<(), String> {
    progress.phase("units", plan.units.len() as u64);
    let mut done = 0u64;
    for chunk in plan.units.chunks_mut(TX_UNITS) {
        sync_tx(conn, |tx| -> QueryResult<()> {
            let v = tx.version();
            for batch in chunk.chunks_mut(BATCH) {
                for u in batch.iter_mut() {
                    u.version = v;
                }
                queries::insert_units(tx, batch)?;
                done += batch.len() as u64;
                progress.advance(done);
            }
            Ok(())
        })
        .map_err(db_err("writing units"))?;
    }
    Ok(())
}

fn write_equipment(
    conn: &mut DbConn,
    plan: &plan::Plan,
    rules: &RiskRules,
    now: NaiveDateTime,
    progress: &mut dyn Progress,
) -> Result<(), String> {
    let today = now.date();
    progress.phase("equipment", plan.equipment.len() as u64);
    let mut done = 0u64;
    for chunk in plan.equipment.chunks(TX_EQUIPMENT) {
        sync_tx(conn, |tx| -> QueryResult<()> {
            let v = tx.version();
            for batch in chunk.chunks(BATCH) {
                let rows: Vec<_> = batch
                    .iter()
                    .map(|spec| {
                        let mut row = plan.equipment_row(spec, v);
                        facts::stamp_equipment(&mut row, plan.public_gathering(spec), today, rules);
                        row
                    })
                    .collect();
                queries::insert_equipment(tx, &rows)?;
                done += rows.len() as u64;
                progress.advance(done);
            }
            Ok(())
        })
        .map_err(db_err("writing equipment"))?;
    }
    Ok(())
}

fn write_users(
    conn: &mut DbConn,
    plan: &plan::Plan,
    hash: &str,
    now: NaiveDateTime,
    progress: &mut dyn Progress,
) -> Result<(), String> {
    progress.phase("users", plan.users.len() as u64);
    sync_tx(conn, |tx| -> QueryResult<()> {
        let v = tx.version();
        for (i, u) in plan.users.iter().enumerate() {
            user_queries::insert_user(
                tx,
                NewUserRow {
                    id: &u.id,
                    username: &u.username,
                    display_name: &u.display_name,
                    role: u.role,
                    region_code: &u.region_code,
                    unit_id: u.unit_id.as_deref(),
                    credential_no: u.credential_no.as_deref(),
                    active: true,
                    created_at: now,
                    updated_at: now,
                    version: v,
                },
                hash,
            )?;
            if i % 50 == 49 {
                progress.advance(i as u64 + 1);
            }
        }
        progress.advance(plan.users.len() as u64);
        Ok(())
    })
    .map_err(db_err("writing users"))
}

fn write_hazards(
    conn: &mut DbConn,
    plan: &mut plan::Plan,
    progress: &mut dyn Progress,
) -> Result<(), String> {
    progress.phase("hazards", plan.hazards.len() as u64);
    let mut done = 0u64;
    for chunk in plan.hazards.chunks_mut(TX_HAZARDS) {
        sync_tx(conn, |tx| -> QueryResult<()> {
            let v = tx.version();
            for batch in chunk.chunks_mut(BATCH) {
                for h in batch.iter_mut() {
                    h.version = v;
                }
                insert_hazards(tx, batch)?;
                done += batch.len() as u64;
                progress.advance(done);
            }
            Ok(())
        })
        .map_err(db_err("writing hazards"))?;
    }
    Ok(())
}

/// Recomputes the risk facts of every unit now that its hazards exist, through the
/// registry's own refresh (which writes only the rows whose facts changed).
fn refresh(
    conn: &mut DbConn,
    plan: &plan::Plan,
    now: NaiveDateTime,
    rules: &RiskRules,
    progress: &mut dyn Progress,
) -> Result<RefreshStats, String> {
    let ids: Vec<String> = plan.units.iter().map(|u| u.id.clone()).collect();
    progress.phase("risk facts", ids.len() as u64);
    let mut total = RefreshStats::default();
    let mut done = 0u64;
    for chunk in ids.chunks(TX_REFRESH) {
        let s = sync_tx(conn, |tx| facts::refresh_units(tx, chunk, now, rules))
            .map_err(db_err("refreshing risk facts"))?;
        total.units_changed += s.units_changed;
        total.equipment_changed += s.equipment_changed;
        done += chunk.len() as u64;
        progress.advance(done);
    }
    Ok(total)
}
