//! Unannounced-check plans: creation with a seed commitment, the draw into sealed
//! assignments, reveal (by time or by a team member's dispatch), audited reads of revealed
//! targets, and verification once the window has closed.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Months, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::draw::{self, Candidate, Inspector, Params, Snapshot, Target};
use super::queries::{self, PlanRow, RecusalRow};
use crate::app::AppState;
use crate::auth::extractor::AuthUser;
use crate::auth::region::{RegionCode, Role};
use crate::db::schema::{assignments, audit_log, surprise_plan_targets, surprise_plans};
use crate::db::{DbConn, ScopeKey, SyncTx, sync_tx};
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::{Page, Paged};
use crate::registry::risk::Flag;
use crate::time::utc;
use crate::validate;
use crate::work::assignments::team_of;
use crate::work::queries::{self as work, AssignmentRow};
use crate::work::types::Assignment;

const MAX_TARGETS: i32 = 1000;
const MAX_TEAM: i32 = 10;
const MAX_CRITERIA: usize = 50;

#[derive(Debug, Default, Deserialize, Serialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Criteria {
    /// Equipment category codes (a top-level code `X000` takes its whole category): the unit
    /// must hold equipment in use of one of them.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Risk flags: the unit must carry one of them.
    #[serde(default)]
    pub flags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPlan {
    pub title: String,
    pub region_code: String,
    #[serde(default)]
    pub campaign_id: Option<String>,
    pub window_start: chrono::DateTime<chrono::Utc>,
    pub window_end: chrono::DateTime<chrono::Utc>,
    pub target_count: i32,
    pub team_size: i32,
    #[serde(default)]
    pub min_key_share: Option<i32>,
    #[serde(default)]
    pub criteria: Criteria,
    /// `window_start` (default): revealed when the window opens; `dispatch`: only when a team
    /// member dispatches it within the window.
    #[serde(default)]
    pub reveal: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PlanTarget {
    pub id: String,
    pub sealed: bool,
    pub team: Vec<String>,
    pub reveal_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Only once revealed (null while sealed).
    pub unit_id: Option<String>,
    pub equipment_ids: Option<Vec<String>>,
    pub status: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Plan {
    pub id: String,
    pub title: String,
    pub region_code: String,
    pub campaign_id: Option<String>,
    pub status: String,
    pub window_start: chrono::DateTime<chrono::Utc>,
    pub window_end: chrono::DateTime<chrono::Utc>,
    pub target_count: i32,
    pub team_size: i32,
    pub min_key_share: Option<i32>,
    pub reveal: String,
    pub criteria: Criteria,
    pub seed_commitment: String,
    pub algorithm: String,
    pub pool_hash: Option<String>,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub drawn_at: Option<chrono::DateTime<chrono::Utc>>,
    pub assignments: Vec<PlanTarget>,
}

#[derive(Debug, Serialize)]
pub struct Verification {
    pub plan_id: String,
    pub algorithm: String,
    /// The secret seed, hex (shown only once the window has closed).
    pub seed: String,
    pub seed_commitment: String,
    /// SHA-256 of the seed equals the commitment published at creation.
    pub commitment_ok: bool,
    pub pool_hash: String,
    /// SHA-256 of `snapshot` equals `pool_hash`.
    pub pool_hash_ok: bool,
    /// The draw recomputed from seed and snapshot gives the stored result.
    pub result_ok: bool,
    /// The drawn assignments still name the recomputed units, checklists and teams.
    pub assignments_ok: bool,
    /// All of the above.
    pub matches: bool,
    pub targets: usize,
    /// The pool as the draw read it (canonical text; see the algorithm in the API spec).
    pub snapshot: String,
    pub result: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRecusal {
    /// The inspector (managers name one; an inspector's own when omitted).
    #[serde(default)]
    pub user_id: Option<String>,
    pub unit_id: String,
    pub reason: String,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Recusal {
    pub id: String,
    pub user_id: String,
    pub unit_id: String,
    pub reason: String,
    pub note: String,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<RecusalRow> for Recusal {
    fn from(r: RecusalRow) -> Self {
        Recusal {
            id: r.id,
            user_id: r.user_id,
            unit_id: r.unit_id,
            reason: r.reason,
            note: r.note,
            created_by: r.created_by,
            created_at: utc(r.created_at),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TargetRead {
    pub assignment_id: String,
    pub user_id: Option<String>,
    pub device_pk: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
    /// How it was read: `assignment` (REST), `plan` (the plan's page) or `pull`.
    pub via: String,
}

fn manager(me: &AuthUser) -> ApiResult<()> {
    if matches!(me.role, Role::Admin | Role::Manager) {
        Ok(())
    } else {
        Err(ApiError::forbidden("only managers plan unannounced checks"))
    }
}

fn load_plan(conn: &mut DbConn, me: &AuthUser, id: &str) -> ApiResult<PlanRow> {
    let nf = || ApiError::not_found("surprise plan");
    if !matches!(me.role, Role::Admin | Role::Manager) {
        return Err(nf());
    }
    let id = validate::uuid("id", id).map_err(|_| nf())?;
    let p = queries::find_plan(conn, &id)?.ok_or_else(nf)?;
    if me.region.covers_code(&p.region_code) {
        Ok(p)
    } else {
        Err(nf())
    }
}

/// Has the visit of this assignment ended (its record submitted, or its window past)?
fn visit_over(a: &AssignmentRow, now: NaiveDateTime) -> bool {
    matches!(a.status.as_str(), "submitted" | "closed" | "cancelled") || now >= a.window_end
}

/// Is this a read of a revealed unannounced target before the visit ended (to be audited)?
pub fn read_is_audited(a: &AssignmentRow, now: NaiveDateTime) -> bool {
    a.kind == "surprise" && !a.sealed && !visit_over(a, now)
}

/// Audits the reads among `rows` that [`read_is_audited`] names, in a sync transaction of
/// their own (nothing is written when there are none): what every read path calls.
pub fn audit_target_reads(
    conn: &mut DbConn,
    me: &AuthUser,
    rows: &[AssignmentRow],
    via: &str,
    now: NaiveDateTime,
) -> ApiResult<()> {
    let read: Vec<&AssignmentRow> = rows.iter().filter(|a| read_is_audited(a, now)).collect();
    if !read.is_empty() {
        sync_tx(conn, |tx| audit_reads(tx, me, &read, via, now))?;
    }
    Ok(())
}

/// Appends one audit entry per revealed target read (see [`read_is_audited`]).
fn audit_reads(
    tx: &mut SyncTx<'_>,
    me: &AuthUser,
    rows: &[&AssignmentRow],
    via: &str,
    now: NaiveDateTime,
) -> diesel::QueryResult<()> {
    for a in rows {
        crate::audit::record(
            tx,
            me,
            crate::audit::service::Change {
                action: "surprise.target_read",
                table: "assignments",
                id: &a.id,
                region: Some(&a.region_code),
                before: None,
                // Not the target itself: the audit log is read by more people than the team.
                after: Some(serde_json::json!({ "via": via })),
            },
            now,
        )?;
    }
    Ok(())
}

fn criteria_of(p: &PlanRow) -> Criteria {
    serde_json::from_str(&p.criteria).unwrap_or_default()
}

fn plan_view(conn: &mut DbConn, p: PlanRow) -> ApiResult<(Plan, Vec<AssignmentRow>)> {
    let rows = queries::plan_assignments(conn, &p.id)?;
    let mut targets = Vec::with_capacity(rows.len());
    for a in &rows {
        targets.push(PlanTarget {
            id: a.id.clone(),
            sealed: a.sealed,
            team: team_of(a),
            reveal_at: a.reveal_at.map(utc),
            unit_id: (!a.sealed).then(|| a.unit_id.clone()),
            equipment_ids: (!a.sealed)
                .then(|| serde_json::from_str(&a.equipment_ids).unwrap_or_default()),
            status: (!a.sealed).then(|| a.status.clone()),
        });
    }
    let criteria = criteria_of(&p);
    Ok((
        Plan {
            id: p.id,
            title: p.title,
            region_code: p.region_code,
            campaign_id: p.campaign_id,
            status: p.status,
            window_start: utc(p.window_start),
            window_end: utc(p.window_end),
            target_count: p.target_count,
            team_size: p.team_size,
            min_key_share: p.min_key_share,
            reveal: p.reveal_mode,
            criteria,
            seed_commitment: p.seed_commitment,
            algorithm: p.algorithm,
            pool_hash: p.pool_hash,
            created_by: p.created_by,
            created_at: utc(p.created_at),
            drawn_at: p.drawn_at.map(utc),
            assignments: targets,
        },
        rows,
    ))
}

fn check_criteria(c: &Criteria) -> ApiResult<Criteria> {
    if c.categories.len() > MAX_CRITERIA || c.flags.len() > MAX_CRITERIA {
        return Err(ApiError::invalid(
            "criteria",
            format!("at most {MAX_CRITERIA} categories and {MAX_CRITERIA} flags"),
        ));
    }
    let mut out = Criteria::default();
    for cat in &c.categories {
        let code = crate::registry::ids::CategoryCode::parse(cat)
            .map_err(|e| ApiError::invalid("criteria.categories", e))?;
        out.categories.push(code.as_str().to_string());
    }
    for f in &c.flags {
        if Flag::parse(f).is_none() {
            return Err(ApiError::invalid(
                "criteria.flags",
                format!(
                    "unknown flag `{}` (known: {})",
                    crate::registry::input::clip(f),
                    Flag::ALL.map(Flag::as_str).join(", ")
                ),
            ));
        }
        out.flags.push(f.clone());
    }
    out.categories.sort();
    out.categories.dedup();
    out.flags.sort();
    out.flags.dedup();
    Ok(out)
}

pub async fn create(state: &AppState, me: AuthUser, req: NewPlan) -> ApiResult<Plan> {
    manager(&me)?;
    let title = validate::text("title", &req.title, 200)?;
    let region =
        RegionCode::parse(&req.region_code).map_err(|e| ApiError::invalid("region_code", e))?;
    if !me.region.covers(&region) {
        return Err(ApiError::invalid(
            "region_code",
            "is not within your region",
        ));
    }
    let (ws, we) = (req.window_start.naive_utc(), req.window_end.naive_utc());
    if we <= ws {
        return Err(ApiError::invalid(
            "window_end",
            "must be after window_start",
        ));
    }
    if we - ws > chrono::Duration::days(92) {
        return Err(ApiError::invalid(
            "window_end",
            "the window may span 92 days at most",
        ));
    }
    if !(1..=MAX_TARGETS).contains(&req.target_count) {
        return Err(ApiError::invalid(
            "target_count",
            format!("must be 1 to {MAX_TARGETS}"),
        ));
    }
    if !(2..=MAX_TEAM).contains(&req.team_size) {
        return Err(ApiError::invalid(
            "team_size",
            format!("must be 2 to {MAX_TEAM}: an enforcement check takes two inspectors at least"),
        ));
    }
    if let Some(s) = req.min_key_share
        && !(0..=100).contains(&s)
    {
        return Err(ApiError::invalid(
            "min_key_share",
            "must be a percentage, 0 to 100",
        ));
    }
    let reveal = req.reveal.unwrap_or_else(|| "window_start".into());
    if !matches!(reveal.as_str(), "window_start" | "dispatch") {
        return Err(ApiError::invalid(
            "reveal",
            "must be window_start or dispatch",
        ));
    }
    let criteria = check_criteria(&req.criteria)?;
    let now = state.clock.now();
    if we <= now {
        return Err(ApiError::invalid("window_end", "is in the past"));
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(ApiError::internal_from)?;
    state
        .db
        .run(move |conn| {
            let campaign_id = req
                .campaign_id
                .as_deref()
                .map(|c| crate::work::campaigns::check_campaign(conn, c, region.as_str()))
                .transpose()?;
            let row = PlanRow {
                id: validate::new_id(),
                title,
                region_code: region.to_string(),
                campaign_id,
                window_start: ws,
                window_end: we,
                target_count: req.target_count,
                team_size: req.team_size,
                min_key_share: req.min_key_share,
                reveal_mode: reveal,
                criteria: serde_json::to_string(&criteria).map_err(ApiError::internal_from)?,
                status: "open".into(),
                seed: hex::encode(seed),
                seed_commitment: draw::sha256_hex(&seed),
                algorithm: draw::ALGORITHM.into(),
                pool_hash: None,
                snapshot: None,
                result: None,
                created_by: me.id.clone(),
                created_at: now,
                drawn_by: None,
                drawn_at: None,
            };
            sync_tx(conn, |tx| -> ApiResult<()> {
                diesel::insert_into(surprise_plans::table)
                    .values(&row)
                    .execute(tx.conn())?;
                crate::audit::record(
                    tx,
                    &me,
                    crate::audit::service::Change {
                        action: "surprise.plan",
                        table: "surprise_plans",
                        id: &row.id,
                        region: Some(&row.region_code),
                        before: None,
                        after: Some(serde_json::json!({
                            "title": row.title,
                            "seed_commitment": row.seed_commitment,
                            "target_count": row.target_count,
                            "team_size": row.team_size,
                            "criteria": criteria,
                        })),
                    },
                    now,
                )?;
                Ok(())
            })?;
            Ok(plan_view(conn, row)?.0)
        })
        .await
}

/// The pool a plan's draw reads: candidates (criteria applied) and inspectors with loads and
/// recusals, both in ascending id order.
fn read_pool(
    conn: &mut DbConn,
    p: &PlanRow,
    recent_months: u32,
) -> ApiResult<(Vec<Candidate>, Vec<Inspector>)> {
    let region = RegionCode::parse(&p.region_code).map_err(ApiError::internal)?;
    let like = region.like_pattern();
    let criteria = criteria_of(p);
    let holding = if criteria.categories.is_empty() {
        None
    } else {
        Some(queries::units_holding(conn, &like, &criteria.categories)?)
    };
    let wanted: Vec<Flag> = criteria
        .flags
        .iter()
        .filter_map(|f| Flag::parse(f))
        .collect();
    let mut candidates: Vec<Candidate> = queries::region_units(conn, &like, !wanted.is_empty())?
        .into_iter()
        .filter(|u| holding.as_ref().is_none_or(|h| h.contains(&u.id)))
        .filter(|u| {
            wanted.is_empty() || {
                let flags = crate::registry::risk::Flags::from_json(&u.risk_flags);
                wanted.iter().any(|f| flags.contains(*f))
            }
        })
        .map(|u| Candidate {
            weight: u64::try_from(u.risk_score).unwrap_or(0) + 1,
            key: u.public_gathering,
            unit_id: u.id,
        })
        .collect();
    candidates.sort_by(|a, b| a.unit_id.cmp(&b.unit_id));
    let pool_units: BTreeSet<&str> = candidates.iter().map(|c| c.unit_id.as_str()).collect();
    let loads = queries::loads(conn, p.window_start, p.window_end)?;
    let since = p
        .window_start
        .checked_sub_months(Months::new(recent_months))
        .unwrap_or(p.window_start);
    let recused = queries::recused_pairs(conn, since)?;
    let mut inspectors: Vec<Inspector> = queries::region_inspectors(conn, &like)?
        .into_iter()
        .map(|i| Inspector {
            load: loads.get(&i.id).copied().unwrap_or(0),
            recused: recused
                .get(&i.id)
                .map(|s| {
                    s.iter()
                        .filter(|u| pool_units.contains(u.as_str()))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
            user_id: i.id,
        })
        .collect();
    inspectors.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    Ok((candidates, inspectors))
}

/// Draws the plan: sealed assignments for each target, in one sync transaction.
pub async fn draw_plan(state: &AppState, me: AuthUser, id: String) -> ApiResult<Plan> {
    manager(&me)?;
    let now = state.clock.now();
    let recent = state.config.surprise_recent_check_months;
    state
        .db
        .run(move |conn| {
            let plan = sync_tx(conn, |tx| -> ApiResult<PlanRow> {
                let mut p = load_plan(tx.conn(), &me, &id)?;
                if p.status != "open" {
                    return Err(ApiError::conflict(
                        "already_drawn",
                        "the plan has been drawn",
                    ));
                }
                if now >= p.window_end {
                    return Err(ApiError::conflict(
                        "window_closed",
                        "the plan's window has closed",
                    ));
                }
                let seed = hex::decode(&p.seed).map_err(ApiError::internal_from)?;
                let (candidates, inspectors) = read_pool(tx.conn(), &p, recent)?;
                let params = Params {
                    target_count: p.target_count as u32,
                    team_size: p.team_size as u32,
                    min_key_share: p.min_key_share.map(|s| s as u32),
                };
                let picks = draw::draw_units(&seed, params, &candidates, &inspectors);
                let picked: Vec<String> = picks.picks.iter().map(|t| t.unit_id.clone()).collect();
                let mut equipment: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
                for (unit, cat, eq) in queries::equipment_in_use(tx.conn(), &picked)? {
                    equipment.entry(unit).or_default().push((cat, eq));
                }
                let snap = Snapshot {
                    params,
                    candidates,
                    inspectors,
                    equipment,
                };
                let (targets, skipped) = snap.draw(&seed);
                let text = snap.to_text();
                p.pool_hash = Some(draw::sha256_hex(text.as_bytes()));
                p.snapshot = Some(text);
                p.result = Some(draw::result_text(&targets, skipped));
                p.status = "drawn".into();
                p.drawn_by = Some(me.id.clone());
                p.drawn_at = Some(now);
                create_sealed(tx, &me, &p, &targets, now)?;
                diesel::update(surprise_plans::table.find(&p.id))
                    .set(&p)
                    .execute(tx.conn())?;
                crate::audit::record(
                    tx,
                    &me,
                    crate::audit::service::Change {
                        action: "surprise.draw",
                        table: "surprise_plans",
                        id: &p.id,
                        region: Some(&p.region_code),
                        before: None,
                        after: Some(serde_json::json!({
                            "pool_hash": p.pool_hash,
                            "targets": targets.len(),
                        })),
                    },
                    now,
                )?;
                Ok(p)
            })?;
            Ok(plan_view(conn, plan)?.0)
        })
        .await
}

/// The draw's sealed assignments, their teams, the team members' scope entries (shells) and
/// the plan's target list: a few multi-row inserts, not a handful of statements per target.
fn create_sealed(
    tx: &mut SyncTx<'_>,
    me: &AuthUser,
    p: &PlanRow,
    targets: &[Target],
    now: NaiveDateTime,
) -> ApiResult<()> {
    use crate::db::schema::assignment_members;
    let mut rows = Vec::with_capacity(targets.len());
    let mut members = Vec::new();
    for t in targets {
        let row = AssignmentRow {
            id: validate::new_id(),
            kind: "surprise".into(),
            unit_id: t.unit_id.clone(),
            equipment_ids: serde_json::to_string(&t.equipment_ids)
                .map_err(ApiError::internal_from)?,
            // While sealed, the plan's region: only managers covering the whole plan see even
            // the shell (the unit's district would learn that a check is coming). Reveal
            // moves it.
            region_code: p.region_code.clone(),
            team: serde_json::to_string(&t.team).map_err(ApiError::internal_from)?,
            window_start: p.window_start,
            window_end: p.window_end,
            campaign_id: p.campaign_id.clone(),
            notes: String::new(),
            status: "scheduled".into(),
            sealed: true,
            reveal_at: (p.reveal_mode == "window_start").then_some(p.window_start),
            created_by: me.id.clone(),
            created_at: now,
            updated_at: now,
            version: tx.version(),
        };
        members.extend(t.team.iter().map(|u| (row.id.clone(), u.clone())));
        rows.push(row);
    }
    for chunk in rows.chunks(500) {
        crate::with_engine!(tx.conn(), |c| diesel::insert_into(assignments::table)
            .values(chunk)
            .execute(c))?;
    }
    for chunk in members.chunks(500) {
        let values: Vec<_> = chunk
            .iter()
            .map(|(a, u)| {
                (
                    assignment_members::assignment_id.eq(a),
                    assignment_members::user_id.eq(u),
                )
            })
            .collect();
        crate::with_engine!(tx.conn(), |c| diesel::insert_into(
            assignment_members::table
        )
        .values(&values)
        .execute(c))?;
    }
    tx.enter_users("assignments", &members, now)?;
    let links: Vec<_> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                surprise_plan_targets::plan_id.eq(&p.id),
                surprise_plan_targets::ordinal.eq(i as i32),
                surprise_plan_targets::assignment_id.eq(&r.id),
            )
        })
        .collect();
    for chunk in links.chunks(500) {
        crate::with_engine!(tx.conn(), |c| diesel::insert_into(
            surprise_plan_targets::table
        )
        .values(chunk)
        .execute(c))?;
    }
    Ok(())
}

/// Unseals `id` if it is still sealed and answers the revealed row; `None` when it was not
/// sealed or another call revealed it first (exactly once, however many servers try: the
/// update is conditional on `sealed`). Team members and the unit's district get the
/// assignment and its unit in full on their next pull.
pub fn reveal_tx(
    tx: &mut SyncTx<'_>,
    id: &str,
    by: Option<&AuthUser>,
    now: NaiveDateTime,
) -> diesel::QueryResult<Option<AssignmentRow>> {
    let Some(mut a) = work::find_assignment(tx.conn(), id)?.filter(|a| a.sealed) else {
        return Ok(None);
    };
    let Some(unit) = crate::registry::queries::find_unit(tx.conn(), &a.unit_id)? else {
        return Ok(None);
    };
    let n = diesel::update(
        assignments::table
            .filter(assignments::id.eq(id))
            .filter(assignments::sealed.eq(true)),
    )
    .set((
        assignments::sealed.eq(false),
        assignments::region_code.eq(&unit.region_code),
        assignments::updated_at.eq(now),
        assignments::version.eq(tx.version()),
    ))
    .execute(tx.conn())?;
    if n == 0 {
        return Ok(None);
    }
    a.sealed = false;
    a.region_code = unit.region_code;
    a.updated_at = now;
    a.version = tx.version();
    let team = team_of(&a);
    for member in &team {
        tx.scope_event(true, "assignments", &a.id, ScopeKey::User(member), now)?;
    }
    // The unit's district now sees it (its managers had not even the shell).
    tx.scope_event(
        true,
        "assignments",
        &a.id,
        ScopeKey::Region(&a.region_code),
        now,
    )?;
    let change = crate::audit::service::Change {
        action: "surprise.reveal",
        table: "assignments",
        id: &a.id,
        region: Some(&a.region_code),
        before: None,
        // The target stays out of the log (managers read it; reading a target is audited).
        after: Some(serde_json::json!({ "sealed": false, "team": team })),
    };
    match by {
        Some(me) => crate::audit::record(tx, me, change, now)?,
        None => crate::audit::record_system(tx, change, now)?,
    }
    Ok(Some(a))
}

/// The reveal job: unseals every assignment whose `reveal_at` has come. Returns how many this
/// call revealed.
pub fn reveal_due(conn: &mut DbConn, now: NaiveDateTime) -> ApiResult<usize> {
    let due: Vec<String> = assignments::table
        .filter(assignments::sealed.eq(true))
        .filter(assignments::reveal_at.le(now))
        .order(assignments::reveal_at.asc())
        .select(assignments::id)
        .limit(1000)
        .load(conn)?;
    let mut n = 0;
    for id in due {
        if sync_tx(conn, |tx| reveal_tx(tx, &id, None, now))?.is_some() {
            n += 1;
        }
    }
    Ok(n)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchArgs {
    pub id: String,
}

/// `assignment.dispatch`: a team member opens a sealed unannounced check within its window.
pub fn dispatch_tx(
    tx: &mut SyncTx<'_>,
    me: &AuthUser,
    args: DispatchArgs,
    now: NaiveDateTime,
) -> ApiResult<AssignmentRow> {
    let nf = || ApiError::not_found("assignment");
    let id = validate::uuid("id", &args.id).map_err(|_| nf())?;
    let a = work::find_assignment(tx.conn(), &id)?.ok_or_else(nf)?;
    if !crate::work::assignments::visible(me, &a) {
        return Err(nf());
    }
    if !team_of(&a).contains(&me.id) {
        return Err(ApiError::forbidden(
            "only a member of the team dispatches it",
        ));
    }
    if a.kind != "surprise" {
        return Err(ApiError::conflict(
            "not_unannounced",
            "only an unannounced check is dispatched",
        ));
    }
    if now < a.window_start {
        return Err(ApiError::conflict(
            "window_not_open",
            "the window has not opened yet",
        ));
    }
    if now >= a.window_end {
        return Err(ApiError::conflict("window_closed", "the window has closed"));
    }
    if !a.sealed {
        return Ok(a);
    }
    match reveal_tx(tx, &a.id, Some(me), now)? {
        Some(revealed) => Ok(revealed),
        // Revealed meanwhile by the job or a team-mate: as it is now.
        None => work::find_assignment(tx.conn(), &a.id)?.ok_or_else(nf),
    }
}

pub async fn dispatch(state: &AppState, me: AuthUser, id: String) -> ApiResult<Assignment> {
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            sync_tx(conn, |tx| {
                let a = dispatch_tx(tx, &me, DispatchArgs { id }, now)?;
                // The caller reads the target in this answer: audited like any other read.
                if read_is_audited(&a, now) {
                    audit_reads(tx, &me, &[&a], "assignment", now)?;
                }
                Ok(Assignment::from(a))
            })
        })
        .await
}

pub async fn get(state: &AppState, me: AuthUser, id: String) -> ApiResult<Plan> {
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let p = load_plan(conn, &me, &id)?;
            let (plan, rows) = plan_view(conn, p)?;
            audit_target_reads(conn, &me, &rows, "plan", now)?;
            Ok(plan)
        })
        .await
}

pub async fn list(state: &AppState, me: AuthUser, page: Page) -> ApiResult<Paged<Plan>> {
    manager(&me)?;
    state
        .db
        .run(move |conn| {
            let rows =
                queries::list_plans(conn, &me.region.like_pattern(), page.after(), page.fetch())?;
            let mut items = Vec::with_capacity(rows.len());
            for p in rows {
                let (mut plan, _) = plan_view(conn, p)?;
                // The list names no targets (the plan's own page does, audited).
                for t in &mut plan.assignments {
                    t.unit_id = None;
                    t.equipment_ids = None;
                }
                items.push(plan);
            }
            Ok(page.finish(items, |p| p.id.clone()))
        })
        .await
}

/// Recomputes a plan's draw from its stored seed and snapshot.
pub fn verify_plan(conn: &mut DbConn, p: &PlanRow) -> ApiResult<Verification> {
    let (Some(snapshot), Some(pool_hash), Some(result)) =
        (p.snapshot.clone(), p.pool_hash.clone(), p.result.clone())
    else {
        return Err(ApiError::conflict(
            "not_drawn",
            "the plan has not been drawn",
        ));
    };
    let seed = hex::decode(&p.seed).map_err(ApiError::internal_from)?;
    let commitment_ok = draw::sha256_hex(&seed) == p.seed_commitment;
    let pool_hash_ok = draw::sha256_hex(snapshot.as_bytes()) == pool_hash;
    let (targets, result_ok) = match Snapshot::parse(&snapshot) {
        Ok(snap) => {
            let (targets, skipped) = snap.draw(&seed);
            let ok = draw::result_text(&targets, skipped) == result;
            (targets, ok)
        }
        Err(_) => (Vec::new(), false),
    };
    let drawn = queries::plan_assignments(conn, &p.id)?;
    let assignments_ok = drawn.len() == targets.len()
        && drawn.iter().zip(&targets).all(|(a, t)| {
            let eq: Vec<String> = serde_json::from_str(&a.equipment_ids).unwrap_or_default();
            a.unit_id == t.unit_id && eq == t.equipment_ids && team_of(a) == t.team
        });
    Ok(Verification {
        plan_id: p.id.clone(),
        algorithm: p.algorithm.clone(),
        seed: p.seed.clone(),
        seed_commitment: p.seed_commitment.clone(),
        commitment_ok,
        pool_hash,
        pool_hash_ok,
        result_ok,
        assignments_ok,
        matches: commitment_ok && pool_hash_ok && result_ok && assignments_ok,
        targets: targets.len(),
        snapshot,
        result,
    })
}

pub async fn verification(state: &AppState, me: AuthUser, id: String) -> ApiResult<Verification> {
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let p = load_plan(conn, &me, &id)?;
            if now < p.window_end {
                return Err(ApiError::conflict(
                    "window_open",
                    "the seed is disclosed once the window has closed",
                ));
            }
            verify_plan(conn, &p)
        })
        .await
}

/// The CLI's verification: by plan id, whatever the window.
pub fn verify_by_id(conn: &mut DbConn, id: &str) -> ApiResult<Verification> {
    let p = queries::find_plan(conn, id)?.ok_or_else(|| ApiError::not_found("surprise plan"))?;
    verify_plan(conn, &p)
}

/// (assignment, actor, device, at, after) of an audit entry.
type ReadRow = (
    String,
    Option<String>,
    Option<String>,
    NaiveDateTime,
    Option<String>,
);

/// Who read the plan's revealed targets, and when (from the audit log).
pub async fn reads(state: &AppState, me: AuthUser, id: String) -> ApiResult<Vec<TargetRead>> {
    state
        .db
        .run(move |conn| {
            let p = load_plan(conn, &me, &id)?;
            let ids = queries::plan_targets(conn, &p.id)?;
            let rows: Vec<ReadRow> = audit_log::table
                .filter(audit_log::action.eq("surprise.target_read"))
                .filter(audit_log::entity_table.eq("assignments"))
                .filter(audit_log::entity_id.eq_any(&ids))
                .order(audit_log::seq.asc())
                .select((
                    audit_log::entity_id,
                    audit_log::actor_id,
                    audit_log::device_pk,
                    audit_log::at,
                    audit_log::after,
                ))
                .limit(10_000)
                .load(conn)?;
            Ok(rows
                .into_iter()
                .map(|(assignment_id, user_id, device_pk, at, after)| {
                    let via = after
                        .as_deref()
                        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
                        .and_then(|v| v.get("via").and_then(|v| v.as_str()).map(String::from))
                        .unwrap_or_default();
                    TargetRead {
                        assignment_id,
                        user_id,
                        device_pk,
                        at: utc(at),
                        via,
                    }
                })
                .collect())
        })
        .await
}

pub async fn add_recusal(state: &AppState, me: AuthUser, req: NewRecusal) -> ApiResult<Recusal> {
    let now = state.clock.now();
    if !matches!(req.reason.as_str(), "declared" | "employment" | "kinship") {
        return Err(ApiError::invalid(
            "reason",
            "must be declared, employment or kinship",
        ));
    }
    let note = validate::multiline("note", req.note.as_deref().unwrap_or(""), 2000, false)?;
    let unit_id = validate::uuid("unit_id", &req.unit_id)?;
    let user_id = match (me.role, req.user_id.as_deref()) {
        (Role::Inspector, None) => me.id.clone(),
        (Role::Inspector, Some(u)) if validate::uuid("user_id", u)? == me.id => me.id.clone(),
        (Role::Inspector, Some(_)) => {
            return Err(ApiError::forbidden(
                "an inspector declares only their own conflicts",
            ));
        }
        (Role::Admin | Role::Manager, Some(u)) => validate::uuid("user_id", u)?,
        (Role::Admin | Role::Manager, None) => {
            return Err(ApiError::invalid("user_id", "name the inspector"));
        }
        (Role::Unit, _) => return Err(ApiError::forbidden("unit users declare no recusals")),
    };
    state
        .db
        .run(move |conn| {
            let u = crate::auth::queries::find_user(conn, &user_id)?;
            if !u.is_some_and(|u| u.role == "inspector" && me.region.covers_code(&u.region_code)) {
                return Err(ApiError::invalid(
                    "user_id",
                    "no such inspector in your region",
                ));
            }
            if crate::registry::queries::find_unit(conn, &unit_id)?.is_none() {
                return Err(ApiError::invalid("unit_id", "no such unit"));
            }
            let row = RecusalRow {
                id: validate::new_id(),
                user_id,
                unit_id,
                reason: req.reason,
                note,
                created_by: me.id.clone(),
                created_at: now,
            };
            sync_tx(conn, |tx| -> ApiResult<()> {
                diesel::insert_into(crate::db::schema::recusals::table)
                    .values(&row)
                    .execute(tx.conn())?;
                crate::audit::record(
                    tx,
                    &me,
                    crate::audit::service::Change {
                        action: "recusal.add",
                        table: "recusals",
                        id: &row.id,
                        region: None,
                        before: None,
                        after: serde_json::to_value(Recusal::from(row.clone())).ok(),
                    },
                    now,
                )?;
                Ok(())
            })?;
            Ok(Recusal::from(row))
        })
        .await
}

pub async fn list_recusals(
    state: &AppState,
    me: AuthUser,
    user_id: Option<String>,
) -> ApiResult<Vec<Recusal>> {
    let user = match me.role {
        Role::Inspector => Some(me.id.clone()),
        Role::Admin | Role::Manager => user_id
            .filter(|u| !u.is_empty())
            .map(|u| validate::uuid("user_id", &u))
            .transpose()?,
        Role::Unit => return Err(ApiError::forbidden("unit users see no recusals")),
    };
    state
        .db
        .run(move |conn| {
            Ok(
                queries::list_recusals(conn, user.as_deref(), &me.region.like_pattern())?
                    .into_iter()
                    .map(Recusal::from)
                    .collect(),
            )
        })
        .await
}
