//! Request and response types of the registry endpoints (never rows).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::queries::{EquipmentRow, TemplateRow, UnitRow};
use crate::time::utc;

fn flags(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

#[derive(Debug, Serialize)]
pub struct Unit {
    pub id: String,
    pub uscc: String,
    pub name: String,
    pub address: String,
    pub region_code: String,
    pub place_type: String,
    pub public_gathering: bool,
    pub contact_name: String,
    pub contact_phone: String,
    pub blacklisted_from: Option<NaiveDate>,
    pub blacklisted_until: Option<NaiveDate>,
    pub last_accident_on: Option<NaiveDate>,
    pub last_complaint_on: Option<NaiveDate>,
    pub open_hazards: i32,
    pub overdue_hazards: i32,
    pub risk_flags: Vec<String>,
    pub risk_score: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl From<UnitRow> for Unit {
    fn from(r: UnitRow) -> Self {
        Unit {
            risk_flags: flags(&r.risk_flags),
            id: r.id,
            uscc: r.uscc,
            name: r.name,
            address: r.address,
            region_code: r.region_code,
            place_type: r.place_type,
            public_gathering: r.public_gathering,
            contact_name: r.contact_name,
            contact_phone: r.contact_phone,
            blacklisted_from: r.blacklisted_from,
            blacklisted_until: r.blacklisted_until,
            last_accident_on: r.last_accident_on,
            last_complaint_on: r.last_complaint_on,
            open_hazards: r.open_hazards,
            overdue_hazards: r.overdue_hazards,
            risk_score: r.risk_score,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            version: r.version,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Equipment {
    pub id: String,
    pub registration_code: String,
    pub unit_id: String,
    pub region_code: String,
    pub category_code: String,
    pub reg_cert_no: String,
    pub reg_status: String,
    pub commissioned_on: Option<NaiveDate>,
    pub last_inspection_on: Option<NaiveDate>,
    pub next_inspection_due: Option<NaiveDate>,
    pub inspection_conclusion: String,
    pub location: String,
    pub brake_type: String,
    pub fault_count_12m: i32,
    pub hazchem: bool,
    pub risk_flags: Vec<String>,
    pub risk_score: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl From<EquipmentRow> for Equipment {
    fn from(r: EquipmentRow) -> Self {
        Equipment {
            risk_flags: flags(&r.risk_flags),
            id: r.id,
            registration_code: r.registration_code,
            unit_id: r.unit_id,
            region_code: r.region_code,
            category_code: r.category_code,
            reg_cert_no: r.reg_cert_no,
            reg_status: r.reg_status,
            commissioned_on: r.commissioned_on,
            last_inspection_on: r.last_inspection_on,
            next_inspection_due: r.next_inspection_due,
            inspection_conclusion: r.inspection_conclusion,
            location: r.location,
            brake_type: r.brake_type,
            fault_count_12m: r.fault_count_12m,
            hazchem: r.hazchem,
            risk_score: r.risk_score,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            version: r.version,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUnit {
    pub uscc: String,
    pub name: String,
    pub address: String,
    pub region_code: String,
    pub place_type: String,
    #[serde(default)]
    pub contact_name: Option<String>,
    #[serde(default)]
    pub contact_phone: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitPatch {
    pub name: Option<String>,
    pub address: Option<String>,
    pub region_code: Option<String>,
    pub place_type: Option<String>,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    #[serde(default, deserialize_with = "crate::http::json::double_option")]
    pub blacklisted_from: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::http::json::double_option")]
    pub blacklisted_until: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::http::json::double_option")]
    pub last_accident_on: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::http::json::double_option")]
    pub last_complaint_on: Option<Option<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEquipment {
    pub registration_code: String,
    pub unit_id: String,
    pub category_code: String,
    pub reg_status: String,
    #[serde(default)]
    pub reg_cert_no: Option<String>,
    #[serde(default)]
    pub commissioned_on: Option<String>,
    #[serde(default)]
    pub last_inspection_on: Option<String>,
    #[serde(default)]
    pub next_inspection_due: Option<String>,
    #[serde(default)]
    pub inspection_conclusion: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub brake_type: Option<String>,
    #[serde(default)]
    pub fault_count_12m: Option<i32>,
    #[serde(default)]
    pub hazchem: Option<bool>,
}

/// Every field optional; dates may be `null` to clear them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EquipmentPatch {
    pub category_code: Option<String>,
    pub reg_status: Option<String>,
    pub reg_cert_no: Option<String>,
    #[serde(default, deserialize_with = "crate::http::json::double_option")]
    pub commissioned_on: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::http::json::double_option")]
    pub last_inspection_on: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::http::json::double_option")]
    pub next_inspection_due: Option<Option<String>>,
    pub inspection_conclusion: Option<String>,
    pub location: Option<String>,
    pub brake_type: Option<String>,
    pub fault_count_12m: Option<i32>,
    pub hazchem: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TemplateItem {
    pub code: String,
    pub text_zh: String,
    pub text_en: String,
    #[serde(default)]
    pub major_clause: Option<String>,
    #[serde(default)]
    pub per_equipment: bool,
}

#[derive(Debug, Serialize)]
pub struct Template {
    pub id: String,
    pub code: String,
    pub scope: String,
    pub category_code: Option<String>,
    pub title_zh: String,
    pub title_en: String,
    pub items: Vec<TemplateItem>,
    pub active: bool,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl From<TemplateRow> for Template {
    fn from(r: TemplateRow) -> Self {
        Template {
            items: serde_json::from_str(&r.items).unwrap_or_default(),
            id: r.id,
            code: r.code,
            scope: r.scope,
            category_code: r.category_code,
            title_zh: r.title_zh,
            title_en: r.title_en,
            active: r.active,
            updated_at: utc(r.updated_at),
            version: r.version,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplatePatch {
    pub title_zh: Option<String>,
    pub title_en: Option<String>,
    pub items: Option<Vec<TemplateItem>>,
    pub active: Option<bool>,
}

/// `GET /api/v1/checklist-templates`.
#[derive(Debug, Serialize)]
pub struct TemplateList {
    pub items: Vec<Template>,
}

/// What an import did.
#[derive(Debug, Serialize, Default)]
pub struct ImportOutcome {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}
