//! Request and response types of assignments and hazards (never rows).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::queries::{AssignmentRow, DirectiveRow, HazardRow, InspectionRow};
use crate::time::utc;

fn ids(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

/// An assignment as devices and REST see it. Sealed (an unannounced check before its reveal):
/// only `id, kind, window_start, window_end, team, sealed, version` — nothing about the target.
#[derive(Debug, Serialize)]
pub struct Assignment {
    pub id: String,
    pub kind: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub team: Vec<String>,
    pub sealed: bool,
    pub version: i64,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub target: Option<AssignmentTarget>,
}

#[derive(Debug, Serialize)]
pub struct AssignmentTarget {
    pub unit_id: String,
    pub equipment_ids: Vec<String>,
    pub region_code: String,
    pub status: String,
    pub campaign_id: Option<String>,
    pub notes: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<AssignmentRow> for Assignment {
    fn from(r: AssignmentRow) -> Self {
        let target = (!r.sealed).then(|| AssignmentTarget {
            unit_id: r.unit_id.clone(),
            equipment_ids: ids(&r.equipment_ids),
            region_code: r.region_code.clone(),
            status: r.status.clone(),
            campaign_id: r.campaign_id.clone(),
            notes: r.notes.clone(),
            created_by: r.created_by.clone(),
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
        });
        Assignment {
            id: r.id,
            kind: r.kind,
            window_start: utc(r.window_start),
            window_end: utc(r.window_end),
            team: ids(&r.team),
            sealed: r.sealed,
            version: r.version,
            target,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAssignment {
    pub kind: String,
    pub unit_id: String,
    #[serde(default)]
    pub equipment_ids: Vec<String>,
    pub team: Vec<String>,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    #[serde(default)]
    pub campaign_id: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignmentPatch {
    pub team: Option<Vec<String>>,
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    pub notes: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Hazard {
    pub id: String,
    pub unit_id: String,
    pub equipment_id: Option<String>,
    pub region_code: String,
    pub inspection_id: Option<String>,
    pub item_code: Option<String>,
    pub description: String,
    pub level: String,
    pub state: String,
    pub fixed_on_site: bool,
    pub deadline: Option<DateTime<Utc>>,
    pub notice_no: Option<String>,
    pub reported_by: String,
    pub reported_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// The level the reporter proposed (a failed item mapped to a GB 45067 clause proposes
    /// major); `level` is the manager's classification once classified.
    pub proposed_level: Option<String>,
    /// The five commitments (五落实) of the rectification plan.
    pub commitments: Option<Commitments>,
    pub rectification_note: Option<String>,
    /// A major hazard's equipment is ordered out of use until the hazard closes.
    pub equipment_stopped: bool,
    pub classified_by: Option<String>,
    pub classified_at: Option<DateTime<Utc>>,
    pub verified_by: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    pub reopen_count: i32,
    pub campaign_id: Option<String>,
    /// When the overdue hazard was escalated to the region's managers.
    pub escalated_at: Option<DateTime<Utc>>,
    /// Who submitted the rectification under re-check (never its verifier).
    pub rectification_submitted_by: Option<String>,
}

/// 五落实: responsibility, measures, funds, deadline, contingency plan. All five for a major
/// hazard; measures and deadline for a general one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commitments {
    #[serde(default)]
    pub responsible_person: Option<String>,
    #[serde(default)]
    pub measures: Option<String>,
    #[serde(default)]
    pub funds: Option<String>,
    #[serde(default)]
    pub deadline: Option<DateTime<Utc>>,
    #[serde(default)]
    pub contingency_plan: Option<String>,
}

impl From<HazardRow> for Hazard {
    fn from(r: HazardRow) -> Self {
        Hazard {
            id: r.id,
            unit_id: r.unit_id,
            equipment_id: r.equipment_id,
            region_code: r.region_code,
            inspection_id: r.inspection_id,
            item_code: r.item_code,
            description: r.description,
            level: r.level,
            state: r.state,
            fixed_on_site: r.fixed_on_site,
            deadline: r.deadline.map(utc),
            notice_no: r.notice_no,
            reported_by: r.reported_by,
            reported_at: utc(r.reported_at),
            closed_at: r.closed_at.map(utc),
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            version: r.version,
            proposed_level: r.proposed_level,
            commitments: r
                .commitments
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok()),
            rectification_note: r.rectification_note,
            equipment_stopped: r.equipment_stopped,
            classified_by: r.classified_by,
            classified_at: r.classified_at.map(utc),
            verified_by: r.verified_by,
            verified_at: r.verified_at.map(utc),
            closed_by: r.closed_by,
            reopen_count: r.reopen_count,
            campaign_id: r.campaign_id,
            escalated_at: r.escalated_at.map(utc),
            rectification_submitted_by: r.rectification_submitted_by,
        }
    }
}

/// `hazard.report` (push) arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportHazard {
    pub id: String,
    #[serde(default)]
    pub campaign_id: Option<String>,
    #[serde(default)]
    pub inspection_id: Option<String>,
    pub unit_id: String,
    #[serde(default)]
    pub equipment_id: Option<String>,
    #[serde(default)]
    pub item_code: Option<String>,
    pub description: String,
    pub level: String,
    #[serde(default)]
    pub fixed_on_site: bool,
    #[serde(default)]
    pub deadline: Option<DateTime<Utc>>,
}

/// `hazard.update` (push) arguments: the fields to change and the version the device saw.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateHazard {
    pub id: String,
    pub base_version: i64,
    pub fields: HazardFields,
}

/// Editable fields. Content (`description`, `item_code`, `equipment_id`): the last edit
/// received wins; the reporter edits them only until the hazard is classified. Managers'
/// fields (`level`, `deadline`, `notice_no`): managers only, and on a clash the server's
/// value stays.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HazardFields {
    pub description: Option<String>,
    #[serde(default, deserialize_with = "crate::http::json::double_option")]
    pub item_code: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::http::json::double_option")]
    pub equipment_id: Option<Option<String>>,
    pub level: Option<String>,
    #[serde(default, deserialize_with = "crate::http::json::double_option")]
    pub deadline: Option<Option<DateTime<Utc>>>,
    /// The supervision notice number (managers; required while a classified hazard is
    /// major, cleared when it stops being major unless given).
    #[serde(default, deserialize_with = "crate::http::json::double_option")]
    pub notice_no: Option<Option<String>>,
}

/// One checklist result of an inspection record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemResult {
    pub item_code: String,
    pub equipment_id: Option<String>,
    pub outcome: String,
    pub note: Option<String>,
    /// The GB 45067 clause the item maps to: a `fail` here proposes a major hazard.
    pub major_clause: Option<String>,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

/// An inspection record (现场检查记录) as devices and REST see it.
#[derive(Debug, Serialize)]
pub struct Inspection {
    pub id: String,
    pub assignment_id: String,
    pub unit_id: String,
    pub region_code: String,
    pub team: Vec<String>,
    pub status: String,
    pub started_by: String,
    pub started_at: DateTime<Utc>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub results: Vec<ItemResult>,
    pub finished_at: Option<DateTime<Utc>>,
    pub signatory_name: Option<String>,
    pub refused_to_sign: bool,
    pub submitted_by: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub corrects_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl From<InspectionRow> for Inspection {
    fn from(r: InspectionRow) -> Self {
        Inspection {
            id: r.id,
            assignment_id: r.assignment_id,
            unit_id: r.unit_id,
            region_code: r.region_code,
            team: ids(&r.team),
            status: r.status,
            started_by: r.started_by,
            started_at: utc(r.started_at),
            lat: r.lat,
            lng: r.lng,
            results: serde_json::from_str(&r.results).unwrap_or_default(),
            finished_at: r.finished_at.map(utc),
            signatory_name: r.signatory_name,
            refused_to_sign: r.refused_to_sign,
            submitted_by: r.submitted_by,
            submitted_at: r.submitted_at.map(utc),
            corrects_id: r.corrects_id,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            version: r.version,
        }
    }
}

/// `inspection.start` arguments (REST: `POST /api/v1/inspections`, `id` optional there).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartInspection {
    pub id: String,
    pub assignment_id: String,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lng: Option<f64>,
    /// The submitted record this one corrects.
    #[serde(default)]
    pub corrects_id: Option<String>,
}

/// `inspection.record_item` arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordItem {
    pub inspection_id: String,
    pub item_code: String,
    #[serde(default)]
    pub equipment_id: Option<String>,
    pub outcome: String,
    #[serde(default)]
    pub note: Option<String>,
}

/// `inspection.submit` arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitInspection {
    pub id: String,
    pub finished_at: DateTime<Utc>,
    #[serde(default)]
    pub signatory_name: Option<String>,
    #[serde(default)]
    pub refused_to_sign: bool,
}

/// An enforcement action (synced as `directives`).
#[derive(Debug, Serialize)]
pub struct Directive {
    pub id: String,
    pub kind: String,
    pub doc_no: String,
    pub unit_id: String,
    pub equipment_id: Option<String>,
    pub hazard_id: Option<String>,
    pub inspection_id: Option<String>,
    pub region_code: String,
    pub state: String,
    pub content: String,
    pub article: Option<String>,
    pub amount_yuan: Option<i64>,
    pub deadline: Option<DateTime<Utc>>,
    pub until_on: Option<chrono::NaiveDate>,
    pub issued_by: String,
    pub issued_at: DateTime<Utc>,
    pub closed_by: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    pub close_note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl From<DirectiveRow> for Directive {
    fn from(r: DirectiveRow) -> Self {
        Directive {
            id: r.id,
            kind: r.kind,
            doc_no: r.doc_no,
            unit_id: r.unit_id,
            equipment_id: r.equipment_id,
            hazard_id: r.hazard_id,
            inspection_id: r.inspection_id,
            region_code: r.region_code,
            state: r.state,
            content: r.content,
            article: r.article,
            amount_yuan: r.amount_yuan,
            deadline: r.deadline.map(utc),
            until_on: r.until_on,
            issued_by: r.issued_by,
            issued_at: utc(r.issued_at),
            closed_by: r.closed_by,
            closed_at: r.closed_at.map(utc),
            close_note: r.close_note,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            version: r.version,
        }
    }
}

/// `directive.issue` arguments (REST: `POST /api/v1/directives`, `id` optional there).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueDirective {
    pub id: String,
    pub kind: String,
    pub doc_no: String,
    pub unit_id: String,
    #[serde(default)]
    pub equipment_id: Option<String>,
    #[serde(default)]
    pub hazard_id: Option<String>,
    #[serde(default)]
    pub inspection_id: Option<String>,
    pub content: String,
    /// Fines: the legal article applied.
    #[serde(default)]
    pub article: Option<String>,
    /// Fines: the amount in yuan.
    #[serde(default)]
    pub amount_yuan: Option<i64>,
    /// When the unit must have complied (directives, stop-use, seal-up).
    #[serde(default)]
    pub deadline: Option<DateTime<Utc>>,
    /// Blacklisting: the last day on the list.
    #[serde(default)]
    pub until_on: Option<chrono::NaiveDate>,
}

/// `POST /api/v1/directives/{id}/comply|revoke`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseDirective {
    #[serde(default)]
    pub note: Option<String>,
}
