//! Campaigns (专项行动): time-boxed, in a region, with phases (hazard investigation → joint
//! enforcement → summary and look-back), and their task map (挂图作战): tasks with a lead
//! department and cooperating ones, a target, milestones, a deadline and progress, with
//! `overdue` and `at_risk` computed. Assignments and hazards name their campaign; a campaign
//! answers its progress from them. Managers plan campaigns in their region; inspectors of an
//! overlapping region read them.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::audit;
use crate::auth::extractor::AuthUser;
use crate::auth::region::{RegionCode, Role};
use crate::db::schema::{assignments, campaign_tasks, campaigns, hazards};
use crate::db::{DbConn, SyncTx, sync_tx};
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::{Page, Paged};
use crate::time::utc;
use crate::validate;

const PHASES: [&str; 3] = ["investigation", "joint_enforcement", "summary"];
const MAX_TASKS: i64 = 500;
const MAX_MILESTONES: usize = 50;
const MAX_DEPARTMENTS: usize = 20;
/// A task this close to its deadline with less than `AT_RISK_PROGRESS` done is at risk.
const AT_RISK_DAYS: i64 = 7;
const AT_RISK_PROGRESS: i32 = 80;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = campaigns)]
pub struct CampaignRow {
    pub id: String,
    pub region_code: String,
    pub title: String,
    pub description: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub phases: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = campaign_tasks, treat_none_as_null = true)]
pub struct TaskRow {
    pub id: String,
    pub campaign_id: String,
    pub title: String,
    pub lead_department: String,
    pub cooperating_departments: String,
    pub target: String,
    pub milestones: String,
    pub deadline: NaiveDate,
    pub progress: i32,
    pub done_on: Option<NaiveDate>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub name: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Milestone {
    pub title: String,
    pub due_on: NaiveDate,
    #[serde(default)]
    pub done_on: Option<NaiveDate>,
}

#[derive(Debug, Serialize)]
pub struct Progress {
    pub assignments_planned: i64,
    pub assignments_done: i64,
    pub hazards_found: i64,
    pub hazards_closed: i64,
    pub tasks: i64,
    pub tasks_done: i64,
    pub tasks_overdue: i64,
    pub tasks_at_risk: i64,
}

#[derive(Debug, Serialize)]
pub struct Campaign {
    pub id: String,
    pub region_code: String,
    pub title: String,
    pub description: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub phases: Vec<Phase>,
    /// The phase today falls in, if any.
    pub current_phase: Option<String>,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Single reads only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

impl Campaign {
    fn of(r: CampaignRow, today: NaiveDate, progress: Option<Progress>) -> Campaign {
        let phases: Vec<Phase> = serde_json::from_str(&r.phases).unwrap_or_default();
        let current_phase = phases
            .iter()
            .find(|p| p.starts_on <= today && today <= p.ends_on)
            .map(|p| p.name.clone());
        Campaign {
            id: r.id,
            region_code: r.region_code,
            title: r.title,
            description: r.description,
            starts_on: r.starts_on,
            ends_on: r.ends_on,
            phases,
            current_phase,
            created_by: r.created_by,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            progress,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Task {
    pub id: String,
    pub campaign_id: String,
    pub title: String,
    pub lead_department: String,
    pub cooperating_departments: Vec<String>,
    pub target: String,
    pub milestones: Vec<Milestone>,
    pub deadline: NaiveDate,
    pub progress: i32,
    pub done_on: Option<NaiveDate>,
    /// Not done and past its deadline.
    pub overdue: bool,
    /// Not done, not overdue, and a milestone is past due, or the deadline is within 7 days
    /// with less than 80 % done.
    pub at_risk: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl Task {
    fn of(r: TaskRow, today: NaiveDate) -> Task {
        let milestones: Vec<Milestone> = serde_json::from_str(&r.milestones).unwrap_or_default();
        let open = r.done_on.is_none();
        let overdue = open && r.deadline < today;
        let at_risk = open
            && !overdue
            && (milestones
                .iter()
                .any(|m| m.done_on.is_none() && m.due_on < today)
                || ((r.deadline - today).num_days() <= AT_RISK_DAYS
                    && r.progress < AT_RISK_PROGRESS));
        Task {
            id: r.id,
            campaign_id: r.campaign_id,
            title: r.title,
            lead_department: r.lead_department,
            cooperating_departments: serde_json::from_str(&r.cooperating_departments)
                .unwrap_or_default(),
            target: r.target,
            milestones,
            deadline: r.deadline,
            progress: r.progress,
            done_on: r.done_on,
            overdue,
            at_risk,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    pub title: String,
    #[serde(default)]
    pub region_code: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    #[serde(default)]
    pub phases: Vec<Phase>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    pub phases: Option<Vec<Phase>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    pub title: String,
    pub lead_department: String,
    #[serde(default)]
    pub cooperating_departments: Vec<String>,
    pub target: String,
    #[serde(default)]
    pub milestones: Vec<Milestone>,
    pub deadline: NaiveDate,
    #[serde(default)]
    pub progress: i32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    pub title: Option<String>,
    pub lead_department: Option<String>,
    pub cooperating_departments: Option<Vec<String>>,
    pub target: Option<String>,
    pub milestones: Option<Vec<Milestone>>,
    pub deadline: Option<NaiveDate>,
    pub progress: Option<i32>,
}

// ---- rules ----

fn is_manager(me: &AuthUser) -> bool {
    matches!(me.role, Role::Manager | Role::Admin)
}

/// Readers: managers and inspectors whose region overlaps the campaign's.
fn readable(me: &AuthUser, c: &CampaignRow) -> bool {
    if me.role == Role::Unit {
        return false;
    }
    if me.region.covers_code(&c.region_code) {
        return true;
    }
    RegionCode::parse(&c.region_code).is_ok_and(|r| r.covers(&me.region))
}

fn load(conn: &mut DbConn, me: &AuthUser, id: &str) -> ApiResult<CampaignRow> {
    let nf = || ApiError::not_found("campaign");
    let id = validate::uuid("id", id).map_err(|_| nf())?;
    let c: Option<CampaignRow> = campaigns::table
        .find(&id)
        .select(CampaignRow::as_select())
        .first(conn)
        .optional()?;
    c.filter(|c| readable(me, c)).ok_or_else(nf)
}

/// Loads a campaign `me` may change (managers of a region covering it).
fn load_writable(conn: &mut DbConn, me: &AuthUser, id: &str) -> ApiResult<CampaignRow> {
    let c = load(conn, me, id)?;
    if !is_manager(me) || !me.region.covers_code(&c.region_code) {
        return Err(ApiError::forbidden(
            "campaigns are planned by the managers of their region",
        ));
    }
    Ok(c)
}

/// The campaign `id` names, for an assignment or hazard of a unit in `unit_region`: it must
/// exist and cover the unit's region.
pub fn check_campaign(conn: &mut DbConn, id: &str, unit_region: &str) -> ApiResult<String> {
    let bad = || ApiError::invalid("campaign_id", "no such campaign covering this unit");
    let id = validate::uuid("campaign_id", id)?;
    let region: Option<String> = campaigns::table
        .find(&id)
        .select(campaigns::region_code)
        .first(conn)
        .optional()?;
    let region = region.ok_or_else(bad)?;
    let covers = RegionCode::parse(&region).is_ok_and(|r| r.covers_code(unit_region));
    if covers { Ok(id) } else { Err(bad()) }
}

fn check_phases(phases: &[Phase], start: NaiveDate, end: NaiveDate) -> ApiResult<String> {
    if end < start {
        return Err(ApiError::invalid("ends_on", "is before starts_on"));
    }
    if (end - start).num_days() > 3 * 366 {
        return Err(ApiError::invalid(
            "ends_on",
            "a campaign lasts three years at most",
        ));
    }
    let mut last_end: Option<NaiveDate> = None;
    for (i, p) in phases.iter().enumerate() {
        if !PHASES.contains(&p.name.as_str()) {
            return Err(ApiError::invalid(
                "phases",
                format!("phase names are {}", PHASES.join(", ")),
            ));
        }
        if phases[..i].iter().any(|q| q.name == p.name) {
            return Err(ApiError::invalid("phases", "names a phase twice"));
        }
        let rank = |n: &str| PHASES.iter().position(|x| *x == n);
        if i > 0 && rank(&phases[i - 1].name) > rank(&p.name) {
            return Err(ApiError::invalid(
                "phases",
                format!("phases come in the order {}", PHASES.join(", ")),
            ));
        }
        if p.ends_on < p.starts_on || p.starts_on < start || p.ends_on > end {
            return Err(ApiError::invalid(
                "phases",
                format!("{} must lie within the campaign's dates", p.name),
            ));
        }
        if last_end.is_some_and(|l| p.starts_on <= l) {
            return Err(ApiError::invalid(
                "phases",
                "phases follow each other without overlapping",
            ));
        }
        last_end = Some(p.ends_on);
    }
    serde_json::to_string(phases).map_err(ApiError::internal_from)
}

fn departments(list: &[String]) -> ApiResult<String> {
    if list.len() > MAX_DEPARTMENTS {
        return Err(ApiError::invalid(
            "cooperating_departments",
            format!("at most {MAX_DEPARTMENTS}"),
        ));
    }
    let v = list
        .iter()
        .map(|d| validate::text("cooperating_departments", d, 100))
        .collect::<ApiResult<Vec<_>>>()?;
    serde_json::to_string(&v).map_err(ApiError::internal_from)
}

/// A task's dates: its deadline and milestones within the campaign, nothing done tomorrow.
fn check_task_dates(
    c: &CampaignRow,
    deadline: Option<NaiveDate>,
    list: &[Milestone],
    today: NaiveDate,
) -> ApiResult<()> {
    let within = |d: NaiveDate| c.starts_on <= d && d <= c.ends_on;
    if deadline.is_some_and(|d| !within(d)) {
        return Err(ApiError::invalid(
            "deadline",
            "must lie within the campaign's dates",
        ));
    }
    for m in list {
        if !within(m.due_on) {
            return Err(ApiError::invalid(
                "milestones",
                "due dates lie within the campaign's dates",
            ));
        }
        if m.done_on.is_some_and(|d| d > today) {
            return Err(ApiError::invalid("milestones", "done_on is in the future"));
        }
    }
    Ok(())
}

fn milestones(list: &[Milestone]) -> ApiResult<String> {
    if list.len() > MAX_MILESTONES {
        return Err(ApiError::invalid(
            "milestones",
            format!("at most {MAX_MILESTONES}"),
        ));
    }
    let v = list
        .iter()
        .map(|m| {
            Ok(Milestone {
                title: validate::text("milestones", &m.title, 200)?,
                due_on: m.due_on,
                done_on: m.done_on,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    serde_json::to_string(&v).map_err(ApiError::internal_from)
}

fn progress_value(p: i32) -> ApiResult<i32> {
    if (0..=100).contains(&p) {
        Ok(p)
    } else {
        Err(ApiError::invalid("progress", "is a percentage, 0 to 100"))
    }
}

/// The audit entry of a change, in the change's transaction (a sync transaction although
/// campaigns are not synced: it orders the audit chain's appends).
#[allow(clippy::too_many_arguments)]
fn record(
    tx: &mut SyncTx<'_>,
    me: &AuthUser,
    action: &str,
    table: &str,
    id: &str,
    region: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
    now: NaiveDateTime,
) -> ApiResult<()> {
    audit::record(
        tx,
        me,
        audit::service::Change {
            action,
            table,
            id,
            region: Some(region),
            before,
            after,
        },
        now,
    )?;
    Ok(())
}

// ---- services ----

pub async fn create(state: &AppState, me: AuthUser, req: NewCampaign) -> ApiResult<Campaign> {
    if !is_manager(&me) {
        return Err(ApiError::forbidden("campaigns are planned by managers"));
    }
    let region = match req.region_code.as_deref() {
        None => me.region.clone(),
        Some(r) => {
            let r = RegionCode::parse(r).map_err(|e| ApiError::invalid("region_code", e))?;
            if !me.region.covers(&r) {
                return Err(ApiError::invalid("region_code", "is outside your region"));
            }
            r
        }
    };
    let title = validate::text("title", &req.title, 200)?;
    let description = validate::multiline(
        "description",
        req.description.as_deref().unwrap_or(""),
        4000,
        false,
    )?;
    let phases = check_phases(&req.phases, req.starts_on, req.ends_on)?;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let row = CampaignRow {
                id: validate::new_id(),
                region_code: region.to_string(),
                title,
                description,
                starts_on: req.starts_on,
                ends_on: req.ends_on,
                phases,
                created_by: me.id.clone(),
                created_at: now,
                updated_at: now,
            };
            sync_tx(conn, |tx| -> ApiResult<()> {
                diesel::insert_into(campaigns::table)
                    .values(&row)
                    .execute(tx.conn())?;
                let after = serde_json::to_value(Campaign::of(row.clone(), now.date(), None)).ok();
                record(
                    tx,
                    &me,
                    "campaign.create",
                    "campaigns",
                    &row.id,
                    &row.region_code,
                    None,
                    after,
                    now,
                )
            })?;
            Ok(Campaign::of(row, now.date(), None))
        })
        .await
}

pub async fn update(
    state: &AppState,
    me: AuthUser,
    id: String,
    p: CampaignPatch,
) -> ApiResult<Campaign> {
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let current = load_writable(conn, &me, &id)?;
            let mut next = current.clone();
            if let Some(t) = &p.title {
                next.title = validate::text("title", t, 200)?;
            }
            if let Some(d) = &p.description {
                next.description = validate::multiline("description", d, 4000, false)?;
            }
            next.starts_on = p.starts_on.unwrap_or(current.starts_on);
            next.ends_on = p.ends_on.unwrap_or(current.ends_on);
            let phases: Vec<Phase> = match p.phases {
                Some(ph) => ph,
                None => serde_json::from_str(&current.phases).unwrap_or_default(),
            };
            next.phases = check_phases(&phases, next.starts_on, next.ends_on)?;
            let today = now.date();
            if next == current {
                return Ok(Campaign::of(current, today, None));
            }
            next.updated_at = now;
            sync_tx(conn, |tx| -> ApiResult<()> {
                diesel::update(campaigns::table.find(&next.id))
                    .set(&next)
                    .execute(tx.conn())?;
                let before = serde_json::to_value(Campaign::of(current.clone(), today, None)).ok();
                let after = serde_json::to_value(Campaign::of(next.clone(), today, None)).ok();
                record(
                    tx,
                    &me,
                    "campaign.update",
                    "campaigns",
                    &next.id,
                    &next.region_code,
                    before,
                    after,
                    now,
                )
            })?;
            Ok(Campaign::of(next, today, None))
        })
        .await
}

/// The campaign's progress as `me` may count it: assignments and hazards of the caller's
/// region only (a district reads its own share of a city campaign).
fn progress(
    conn: &mut DbConn,
    me: &AuthUser,
    c: &CampaignRow,
    today: NaiveDate,
) -> QueryResult<Progress> {
    let like = me.region.like_pattern();
    let statuses: Vec<String> = assignments::table
        .filter(assignments::campaign_id.eq(&c.id))
        .filter(assignments::region_code.like(&like))
        .filter(assignments::status.ne("cancelled"))
        .select(assignments::status)
        .load(conn)?;
    let states: Vec<String> = hazards::table
        .filter(hazards::campaign_id.eq(&c.id))
        .filter(hazards::region_code.like(&like))
        .select(hazards::state)
        .load(conn)?;
    let tasks: Vec<TaskRow> = campaign_tasks::table
        .filter(campaign_tasks::campaign_id.eq(&c.id))
        .select(TaskRow::as_select())
        .load(conn)?;
    let tasks: Vec<Task> = tasks.into_iter().map(|t| Task::of(t, today)).collect();
    Ok(Progress {
        assignments_planned: statuses.len() as i64,
        assignments_done: statuses
            .iter()
            .filter(|s| matches!(s.as_str(), "submitted" | "closed"))
            .count() as i64,
        hazards_found: states.len() as i64,
        hazards_closed: states.iter().filter(|s| *s == "closed").count() as i64,
        tasks: tasks.len() as i64,
        tasks_done: tasks.iter().filter(|t| t.done_on.is_some()).count() as i64,
        tasks_overdue: tasks.iter().filter(|t| t.overdue).count() as i64,
        tasks_at_risk: tasks.iter().filter(|t| t.at_risk).count() as i64,
    })
}

pub async fn get(state: &AppState, me: AuthUser, id: String) -> ApiResult<Campaign> {
    let today = state.clock.now().date();
    state
        .db
        .run(move |conn| {
            let c = load(conn, &me, &id)?;
            let p = progress(conn, &me, &c, today)?;
            Ok(Campaign::of(c, today, Some(p)))
        })
        .await
}

pub async fn list(state: &AppState, me: AuthUser, page: Page) -> ApiResult<Paged<Campaign>> {
    if me.role == Role::Unit {
        return Err(ApiError::forbidden("campaigns are for the bureau's staff"));
    }
    let today = state.clock.now().date();
    state
        .db
        .run(move |conn| {
            // Campaigns of the caller's region, and of the regions above it (a city campaign
            // reaches its districts' staff).
            let mut above: Vec<String> = vec![me.region.to_string()];
            let code = me.region.to_string();
            if code.len() == 6 {
                above.push(format!("{}00", &code[..4]));
                above.push(format!("{}0000", &code[..2]));
                above.push("000000".into());
            }
            let mut q = campaigns::table
                .filter(
                    campaigns::region_code
                        .like(me.region.like_pattern())
                        .or(campaigns::region_code.eq_any(above)),
                )
                .into_boxed();
            if let Some(a) = page.after() {
                q = q.filter(campaigns::id.gt(a.to_string()));
            }
            let rows: Vec<CampaignRow> = q
                .order(campaigns::id)
                .limit(page.fetch())
                .select(CampaignRow::as_select())
                .load(conn)?;
            let items = rows
                .into_iter()
                .filter(|c| readable(&me, c))
                .map(|c| Campaign::of(c, today, None))
                .collect();
            Ok(page.finish(items, |c: &Campaign| c.id.clone()))
        })
        .await
}

pub async fn add_task(
    state: &AppState,
    me: AuthUser,
    campaign_id: String,
    req: NewTask,
) -> ApiResult<Task> {
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let c = load_writable(conn, &me, &campaign_id)?;
            let progress = progress_value(req.progress)?;
            check_task_dates(&c, Some(req.deadline), &req.milestones, now.date())?;
            let row = TaskRow {
                id: validate::new_id(),
                campaign_id: c.id.clone(),
                title: validate::text("title", &req.title, 200)?,
                lead_department: validate::text("lead_department", &req.lead_department, 100)?,
                cooperating_departments: departments(&req.cooperating_departments)?,
                target: validate::multiline("target", &req.target, 2000, true)?,
                milestones: milestones(&req.milestones)?,
                deadline: req.deadline,
                progress,
                done_on: (progress == 100).then_some(now.date()),
                created_at: now,
                updated_at: now,
            };
            let today = now.date();
            sync_tx(conn, |tx| -> ApiResult<()> {
                // Counted in the writing transaction: writers take turns, so two adds at
                // once cannot both pass the limit.
                let n: i64 = campaign_tasks::table
                    .filter(campaign_tasks::campaign_id.eq(&c.id))
                    .count()
                    .get_result(tx.conn())?;
                if n >= MAX_TASKS {
                    return Err(ApiError::invalid(
                        "title",
                        format!("a campaign holds at most {MAX_TASKS} tasks"),
                    ));
                }
                diesel::insert_into(campaign_tasks::table)
                    .values(&row)
                    .execute(tx.conn())?;
                let after = serde_json::to_value(Task::of(row.clone(), today)).ok();
                record(
                    tx,
                    &me,
                    "campaign_task.create",
                    "campaign_tasks",
                    &row.id,
                    &c.region_code,
                    None,
                    after,
                    now,
                )
            })?;
            Ok(Task::of(row, today))
        })
        .await
}

pub async fn update_task(
    state: &AppState,
    me: AuthUser,
    campaign_id: String,
    task_id: String,
    p: TaskPatch,
) -> ApiResult<Task> {
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let c = load_writable(conn, &me, &campaign_id)?;
            let nf = || ApiError::not_found("task");
            let task_id = validate::uuid("task_id", &task_id).map_err(|_| nf())?;
            let current: TaskRow = campaign_tasks::table
                .find(&task_id)
                .filter(campaign_tasks::campaign_id.eq(&c.id))
                .select(TaskRow::as_select())
                .first(conn)
                .optional()?
                .ok_or_else(nf)?;
            let mut next = current.clone();
            if let Some(t) = &p.title {
                next.title = validate::text("title", t, 200)?;
            }
            if let Some(t) = &p.lead_department {
                next.lead_department = validate::text("lead_department", t, 100)?;
            }
            if let Some(d) = &p.cooperating_departments {
                next.cooperating_departments = departments(d)?;
            }
            if let Some(t) = &p.target {
                next.target = validate::multiline("target", t, 2000, true)?;
            }
            if let Some(m) = &p.milestones {
                next.milestones = milestones(m)?;
            }
            if let Some(d) = p.deadline {
                next.deadline = d;
            }
            if let Some(pr) = p.progress {
                next.progress = progress_value(pr)?;
                next.done_on = match (next.progress, current.done_on) {
                    (100, Some(d)) => Some(d),
                    (100, None) => Some(now.date()),
                    _ => None,
                };
            }
            let today = now.date();
            // Only what changes is checked (the campaign's dates may have moved since).
            check_task_dates(
                &c,
                p.deadline,
                p.milestones.as_deref().unwrap_or(&[]),
                today,
            )?;
            if next == current {
                return Ok(Task::of(current, today));
            }
            next.updated_at = now;
            sync_tx(conn, |tx| -> ApiResult<()> {
                diesel::update(campaign_tasks::table.find(&next.id))
                    .set(&next)
                    .execute(tx.conn())?;
                let before = serde_json::to_value(Task::of(current.clone(), today)).ok();
                let after = serde_json::to_value(Task::of(next.clone(), today)).ok();
                record(
                    tx,
                    &me,
                    "campaign_task.update",
                    "campaign_tasks",
                    &next.id,
                    &c.region_code,
                    before,
                    after,
                    now,
                )
            })?;
            Ok(Task::of(next, today))
        })
        .await
}

pub async fn tasks(state: &AppState, me: AuthUser, campaign_id: String) -> ApiResult<Paged<Task>> {
    let today = state.clock.now().date();
    state
        .db
        .run(move |conn| {
            let c = load(conn, &me, &campaign_id)?;
            let rows: Vec<TaskRow> = campaign_tasks::table
                .filter(campaign_tasks::campaign_id.eq(&c.id))
                .order((campaign_tasks::deadline, campaign_tasks::id))
                .limit(MAX_TASKS)
                .select(TaskRow::as_select())
                .load(conn)?;
            Ok(Paged {
                items: rows.into_iter().map(|t| Task::of(t, today)).collect(),
                next: None,
            })
        })
        .await
}
