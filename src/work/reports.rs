//! Reports for managers, always within their region: hazards by district × level × state,
//! closure rate, median days to close, overdue counts, assignments done against planned per
//! campaign; and the two lists (两个清单) as CSV: the problem-and-hazard list (问题隐患清单)
//! and the rules-and-measures list (制度措施清单). Minor hazards fixed on the spot stay off
//! both lists.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::types::Commitments;
use crate::app::AppState;
use crate::auth::extractor::AuthUser;
use crate::auth::region::{RegionCode, Role};
use crate::db::schema::{assignments, equipment, hazards, units};
use crate::error::{ApiError, ApiResult};
use crate::time::utc;

/// Rows a list may hold (a city's worth of hazards fits; more is refused, not cut: the CSV
/// is built in memory, at most some tens of MB).
const MAX_LIST_ROWS: i64 = 50_000;

#[derive(Debug, Serialize)]
pub struct Cell {
    pub region_code: String,
    pub level: String,
    pub state: String,
    pub count: i64,
}

#[derive(Debug, Serialize)]
pub struct CampaignProgress {
    /// `null`: assignments outside any campaign.
    pub campaign_id: Option<String>,
    /// Assignments not cancelled.
    pub planned: i64,
    /// Of those, submitted or closed.
    pub done: i64,
    pub cancelled: i64,
}

#[derive(Debug, Serialize)]
pub struct HazardReport {
    pub region_code: String,
    pub generated_at: DateTime<Utc>,
    pub total: i64,
    pub closed: i64,
    /// closed / total (0 when there are none).
    pub closure_rate: f64,
    /// Median of (closed_at − reported_at) in days over closed hazards.
    pub median_days_to_close: Option<f64>,
    /// `classified` or `rectifying` past the deadline now.
    pub overdue: i64,
    /// Major hazards not closed (listed for supervision).
    pub open_major: i64,
    pub by_district: Vec<Cell>,
    pub assignments: Vec<CampaignProgress>,
}

/// The region a report covers: the caller's, or a part of it named by `region`.
fn report_region(me: &AuthUser, region: Option<&str>) -> ApiResult<RegionCode> {
    if !matches!(me.role, Role::Manager | Role::Admin) {
        return Err(ApiError::forbidden("reports are for managers"));
    }
    match region.filter(|r| !r.is_empty()) {
        None => Ok(me.region.clone()),
        Some(r) => {
            let code = RegionCode::parse(r).map_err(|e| ApiError::invalid("region", e))?;
            if me.region.covers(&code) {
                Ok(code)
            } else {
                Err(ApiError::not_found("region"))
            }
        }
    }
}

type HazardFacts = (
    String,
    String,
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
);

pub async fn hazards(
    state: &AppState,
    me: AuthUser,
    region: Option<String>,
) -> ApiResult<HazardReport> {
    let region = report_region(&me, region.as_deref())?;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let like = region.like_pattern();
            let rows: Vec<HazardFacts> = hazards::table
                .filter(hazards::region_code.like(&like))
                .select((
                    hazards::region_code,
                    hazards::level,
                    hazards::state,
                    hazards::reported_at,
                    hazards::closed_at,
                    hazards::deadline,
                ))
                .load(conn)?;
            let mut cells: BTreeMap<(String, String, String), i64> = BTreeMap::new();
            let (mut closed, mut overdue, mut open_major) = (0i64, 0i64, 0i64);
            let mut days: Vec<f64> = Vec::new();
            for (district, level, st, reported, closed_at, deadline) in &rows {
                *cells
                    .entry((district.clone(), level.clone(), st.clone()))
                    .or_default() += 1;
                if st == "closed" {
                    closed += 1;
                    if let Some(c) = closed_at {
                        days.push((*c - *reported).num_seconds() as f64 / 86_400.0);
                    }
                } else if level == "major" {
                    open_major += 1;
                }
                if super::escalation::OVERDUE_STATES.contains(&st.as_str())
                    && deadline.is_some_and(|d| d < now)
                {
                    overdue += 1;
                }
            }
            days.sort_by(f64::total_cmp);
            let median = match days.len() {
                0 => None,
                n if n % 2 == 1 => Some(days[n / 2]),
                n => Some((days[n / 2 - 1] + days[n / 2]) / 2.0),
            };
            let total = rows.len() as i64;
            let progress: Vec<(Option<String>, String, i64)> = assignments::table
                .filter(assignments::region_code.like(&like))
                .group_by((assignments::campaign_id, assignments::status))
                .select((
                    assignments::campaign_id,
                    assignments::status,
                    diesel::dsl::count_star(),
                ))
                .load(conn)?;
            let mut by_campaign: BTreeMap<Option<String>, CampaignProgress> = BTreeMap::new();
            for (campaign, status, n) in progress {
                let p = by_campaign
                    .entry(campaign.clone())
                    .or_insert(CampaignProgress {
                        campaign_id: campaign,
                        planned: 0,
                        done: 0,
                        cancelled: 0,
                    });
                if status == "cancelled" {
                    p.cancelled += n;
                } else {
                    p.planned += n;
                    if matches!(status.as_str(), "submitted" | "closed") {
                        p.done += n;
                    }
                }
            }
            Ok(HazardReport {
                region_code: region.to_string(),
                generated_at: utc(now),
                total,
                closed,
                closure_rate: if total == 0 {
                    0.0
                } else {
                    closed as f64 / total as f64
                },
                median_days_to_close: median.map(|d| (d * 100.0).round() / 100.0),
                overdue,
                open_major,
                by_district: cells
                    .into_iter()
                    .map(|((region_code, level, state), count)| Cell {
                        region_code,
                        level,
                        state,
                        count,
                    })
                    .collect(),
                assignments: by_campaign.into_values().collect(),
            })
        })
        .await
}

/// Which of the two lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// 问题隐患清单: every hazard but the minor ones fixed on the spot.
    Hazards,
    /// 制度措施清单: the rectification commitments (five commitments) of those hazards.
    Measures,
}

#[derive(Queryable)]
struct ListRow {
    id: String,
    region_code: String,
    unit_name: String,
    uscc: String,
    registration_code: Option<String>,
    description: String,
    level: String,
    state: String,
    reported_at: NaiveDateTime,
    deadline: Option<NaiveDateTime>,
    notice_no: Option<String>,
    equipment_stopped: bool,
    commitments: Option<String>,
    closed_at: Option<NaiveDateTime>,
}

/// A cell as spreadsheets will not execute it: a leading `=`, `+`, `-`, `@`, tab or CR is
/// quoted with `'` (CSV injection).
fn cell(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    }
}

fn time(t: Option<NaiveDateTime>) -> String {
    t.map(|t| crate::time::utc(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The list as CSV (UTF-8 with a BOM, so spreadsheet programs read the Chinese right).
pub async fn list_csv(
    state: &AppState,
    me: AuthUser,
    which: List,
    region: Option<String>,
) -> ApiResult<Vec<u8>> {
    let region = report_region(&me, region.as_deref())?;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let like = region.like_pattern();
            let mut q = hazards::table
                .inner_join(units::table)
                .left_join(equipment::table.on(hazards::equipment_id.eq(equipment::id.nullable())))
                .filter(hazards::region_code.like(&like))
                .filter(hazards::fixed_on_site.eq(false))
                .into_boxed();
            if which == List::Measures {
                q = q.filter(hazards::commitments.is_not_null());
            }
            let rows: Vec<ListRow> = q
                .order((hazards::region_code, hazards::reported_at, hazards::id))
                .limit(MAX_LIST_ROWS + 1)
                .select((
                    hazards::id,
                    hazards::region_code,
                    units::name,
                    units::uscc,
                    equipment::registration_code.nullable(),
                    hazards::description,
                    hazards::level,
                    hazards::state,
                    hazards::reported_at,
                    hazards::deadline,
                    hazards::notice_no,
                    hazards::equipment_stopped,
                    hazards::commitments,
                    hazards::closed_at,
                ))
                .load(conn)?;
            if rows.len() as i64 > MAX_LIST_ROWS {
                return Err(ApiError::Status {
                    status: 413,
                    code: "list_too_large",
                    message: format!("more than {MAX_LIST_ROWS} rows: ask for a smaller region"),
                });
            }
            let mut out = b"\xEF\xBB\xBF".to_vec();
            {
                let mut w = csv::Writer::from_writer(&mut out);
                let write_err = |e: csv::Error| ApiError::internal_from(e);
                match which {
                    List::Hazards => {
                        w.write_record([
                            "hazard_id",
                            "region_code",
                            "unit_name",
                            "uscc",
                            "registration_code",
                            "description",
                            "level",
                            "state",
                            "reported_at",
                            "deadline",
                            "overdue",
                            "notice_no",
                            "equipment_stopped",
                            "closed_at",
                        ])
                        .map_err(write_err)?;
                        for r in &rows {
                            let overdue = super::escalation::OVERDUE_STATES
                                .contains(&r.state.as_str())
                                && r.deadline.is_some_and(|d| d < now);
                            w.write_record([
                                r.id.clone(),
                                r.region_code.clone(),
                                cell(&r.unit_name),
                                r.uscc.clone(),
                                r.registration_code.clone().unwrap_or_default(),
                                cell(&r.description),
                                r.level.clone(),
                                r.state.clone(),
                                time(Some(r.reported_at)),
                                time(r.deadline),
                                overdue.to_string(),
                                cell(r.notice_no.as_deref().unwrap_or("")),
                                r.equipment_stopped.to_string(),
                                time(r.closed_at),
                            ])
                            .map_err(write_err)?;
                        }
                    }
                    List::Measures => {
                        w.write_record([
                            "hazard_id",
                            "region_code",
                            "unit_name",
                            "uscc",
                            "level",
                            "state",
                            "responsible_person",
                            "measures",
                            "funds",
                            "commitment_deadline",
                            "contingency_plan",
                        ])
                        .map_err(write_err)?;
                        for r in &rows {
                            let c: Commitments = r
                                .commitments
                                .as_deref()
                                .and_then(|c| serde_json::from_str(c).ok())
                                .unwrap_or_default();
                            let t = |v: &Option<String>| cell(v.as_deref().unwrap_or(""));
                            w.write_record([
                                r.id.clone(),
                                r.region_code.clone(),
                                cell(&r.unit_name),
                                r.uscc.clone(),
                                r.level.clone(),
                                r.state.clone(),
                                t(&c.responsible_person),
                                t(&c.measures),
                                t(&c.funds),
                                time(c.deadline.map(|d| d.naive_utc())),
                                t(&c.contingency_plan),
                            ])
                            .map_err(write_err)?;
                        }
                    }
                }
                w.flush().map_err(ApiError::internal_from)?;
            }
            Ok(out)
        })
        .await
}
