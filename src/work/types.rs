//! Request and response types of assignments and hazards (never rows).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::queries::{AssignmentRow, HazardRow};
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
        }
    }
}

/// `hazard.report` (push) arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportHazard {
    pub id: String,
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
/// received wins. Managers' fields (`level`, `deadline`): managers only, and on a clash the
/// server's value stays.
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
}
