//! A device's local copy of its scope, as a phone keeps it: every synced row by (table, id)
//! with its version, and the data the device works with (its assignments, the checklist
//! templates, its own hazards, inspection records and photos). The big tables keep only
//! (id, version): a thousand phones' copies of a district's registry stay in memory.
//!
//! The checksum of the copy is the function of `GET /api/v1/sync/checksum`: per table, the
//! sum modulo 2^64 of the first 8 bytes (big-endian) of SHA-256(`"{id}:{version}"`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// The synced tables, as pull names them (and as the checksum answers them).
pub use xuncha::sync::scope::TABLES;
const T_ASSIGNMENTS: usize = 0;
const T_TEMPLATES: usize = 1;
const T_EVIDENCE: usize = 5;
const T_HAZARDS: usize = 6;
const T_INSPECTIONS: usize = 7;
const T_UNITS: usize = 8;

/// Units remembered as places to report hazards on.
const UNIT_SAMPLE: usize = 64;

/// One change of a pull page, borrowed from the response body.
#[derive(Deserialize)]
pub struct Change<'a> {
    #[serde(borrow)]
    pub table: Cow<'a, str>,
    #[serde(borrow)]
    pub op: Cow<'a, str>,
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    pub version: u64,
    #[serde(default, borrow)]
    pub data: Option<&'a RawValue>,
}

/// A pull answer: a page, or `{"reset": true, "reason"}`.
#[derive(Deserialize)]
pub struct PullBody<'a> {
    #[serde(default)]
    pub reset: bool,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default, borrow)]
    pub changes: Vec<Change<'a>>,
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub last_mutation_seq: u64,
}

#[derive(Debug, Clone, Copy)]
struct Row {
    version: u64,
    /// This row's term of the table checksum.
    term: u64,
}

#[derive(Debug, Clone)]
pub struct AssignmentInfo {
    pub status: Option<String>,
    pub sealed: bool,
    pub unit_id: Option<String>,
    pub team: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct HazardInfo {
    pub state: String,
    pub description: String,
    pub reported_by: String,
}

#[derive(Debug, Clone)]
pub struct InspectionInfo {
    pub status: String,
    /// (item_code, equipment_id) of every result.
    pub results: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone)]
pub struct TemplateItem {
    pub code: String,
    pub major: bool,
    pub per_equipment: bool,
}

#[derive(Debug, Clone)]
pub struct TemplateInfo {
    /// `None` for the unit-level template.
    pub category: Option<String>,
    pub active: bool,
    pub items: Vec<TemplateItem>,
}

#[derive(Deserialize)]
struct AssignmentData {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    sealed: bool,
    #[serde(default)]
    unit_id: Option<String>,
    #[serde(default)]
    team: Vec<String>,
}

#[derive(Deserialize)]
struct HazardData<'a> {
    #[serde(borrow)]
    reported_by: Cow<'a, str>,
    state: String,
    description: String,
}

#[derive(Deserialize)]
struct InspectionData {
    started_by: String,
    status: String,
    #[serde(default)]
    results: Vec<ResultData>,
}

#[derive(Deserialize)]
struct ResultData {
    item_code: String,
    #[serde(default)]
    equipment_id: Option<String>,
}

#[derive(Deserialize)]
struct EvidenceData<'a> {
    #[serde(borrow)]
    uploaded_by: Cow<'a, str>,
    status: String,
}

#[derive(Deserialize)]
struct TemplateData {
    #[serde(default)]
    category_code: Option<String>,
    #[serde(default)]
    active: bool,
    items: Vec<TemplateItemData>,
}

#[derive(Deserialize)]
struct TemplateItemData {
    code: String,
    #[serde(default)]
    major_clause: Option<String>,
    #[serde(default)]
    per_equipment: bool,
}

/// The per-table summary the server's checksum answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSum {
    pub count: u64,
    pub checksum: String,
}

pub struct Copy {
    /// The user the copy belongs to: "own" rows are this user's.
    me: String,
    tables: Vec<HashMap<u64, Row, foldhash::fast::FixedState>>,
    keys: foldhash::quality::FixedState,
    pub assignments: HashMap<String, AssignmentInfo>,
    pub templates: HashMap<String, TemplateInfo>,
    /// Hazards reported by this user.
    pub own_hazards: HashMap<String, HazardInfo>,
    /// Inspection records started by this user.
    pub own_inspections: HashMap<String, InspectionInfo>,
    /// Evidence attached by this user: id → status.
    pub own_evidence: HashMap<String, String>,
    pub units: Vec<String>,
    pub rows_applied: u64,
}

impl Copy {
    pub fn new(me: &str) -> Copy {
        Copy {
            me: me.to_string(),
            tables: (0..TABLES.len())
                .map(|_| HashMap::with_hasher(foldhash::fast::FixedState::with_seed(7)))
                .collect(),
            keys: foldhash::quality::FixedState::with_seed(0x5eed),
            assignments: HashMap::new(),
            templates: HashMap::new(),
            own_hazards: HashMap::new(),
            own_inspections: HashMap::new(),
            own_evidence: HashMap::new(),
            units: Vec::new(),
            rows_applied: 0,
        }
    }

    /// Drops everything (a `reset`).
    pub fn clear(&mut self) {
        *self = Copy::new(&self.me.clone());
    }

    fn key(&self, id: &str) -> u64 {
        let mut h = self.keys.build_hasher();
        h.write(id.as_bytes());
        h.finish()
    }

    pub fn row_count(&self) -> usize {
        self.tables.iter().map(HashMap::len).sum()
    }

    pub fn version_of(&self, table: &str, id: &str) -> Option<u64> {
        let t = TABLES.iter().position(|n| *n == table)?;
        self.tables[t].get(&self.key(id)).map(|r| r.version)
    }

    /// Applies one change, in the order pulled.
    pub fn apply(&mut self, ch: &Change<'_>) -> Result<(), String> {
        let t = TABLES
            .iter()
            .position(|n| *n == ch.table)
            .ok_or_else(|| format!("pull sent an unknown table {:?}", ch.table))?;
        let key = self.key(&ch.id);
        self.rows_applied += 1;
        match &*ch.op {
            "put" => {
                let data = ch
                    .data
                    .ok_or_else(|| format!("put of {}/{} without data", ch.table, ch.id))?;
                self.tables[t].insert(
                    key,
                    Row {
                        version: ch.version,
                        term: row_term(&ch.id, ch.version),
                    },
                );
                self.track(t, &ch.id, data)
                    .map_err(|e| format!("{}/{}: unexpected data: {e}", ch.table, ch.id))
            }
            "delete" | "evict" => {
                self.tables[t].remove(&key);
                self.untrack(t, &ch.id);
                Ok(())
            }
            other => Err(format!("pull sent an unknown op {other:?}")),
        }
    }

    fn track(&mut self, t: usize, id: &str, data: &RawValue) -> serde_json::Result<()> {
        match t {
            T_ASSIGNMENTS => {
                let a: AssignmentData = serde_json::from_str(data.get())?;
                self.assignments.insert(
                    id.to_string(),
                    AssignmentInfo {
                        status: a.status,
                        sealed: a.sealed,
                        unit_id: a.unit_id,
                        team: a.team,
                    },
                );
            }
            T_TEMPLATES => {
                let d: TemplateData = serde_json::from_str(data.get())?;
                self.templates.insert(
                    id.to_string(),
                    TemplateInfo {
                        category: d.category_code,
                        active: d.active,
                        items: d
                            .items
                            .into_iter()
                            .map(|i| TemplateItem {
                                code: i.code,
                                major: i.major_clause.is_some(),
                                per_equipment: i.per_equipment,
                            })
                            .collect(),
                    },
                );
            }
            T_HAZARDS => {
                let h: HazardData<'_> = serde_json::from_str(data.get())?;
                if h.reported_by == self.me {
                    self.own_hazards.insert(
                        id.to_string(),
                        HazardInfo {
                            state: h.state,
                            description: h.description,
                            reported_by: h.reported_by.into_owned(),
                        },
                    );
                } else {
                    self.own_hazards.remove(id);
                }
            }
            T_INSPECTIONS => {
                let i: InspectionData = serde_json::from_str(data.get())?;
                if i.started_by == self.me {
                    self.own_inspections.insert(
                        id.to_string(),
                        InspectionInfo {
                            status: i.status,
                            results: i
                                .results
                                .into_iter()
                                .map(|r| (r.item_code, r.equipment_id))
                                .collect(),
                        },
                    );
                }
            }
            T_EVIDENCE => {
                let e: EvidenceData<'_> = serde_json::from_str(data.get())?;
                if e.uploaded_by == self.me {
                    self.own_evidence.insert(id.to_string(), e.status);
                }
            }
            T_UNITS if self.units.len() < UNIT_SAMPLE => self.units.push(id.to_string()),
            _ => {}
        }
        Ok(())
    }

    fn untrack(&mut self, t: usize, id: &str) {
        match t {
            T_ASSIGNMENTS => {
                self.assignments.remove(id);
            }
            T_TEMPLATES => {
                self.templates.remove(id);
            }
            T_HAZARDS => {
                self.own_hazards.remove(id);
            }
            T_INSPECTIONS => {
                self.own_inspections.remove(id);
            }
            T_EVIDENCE => {
                self.own_evidence.remove(id);
            }
            T_UNITS => self.units.retain(|u| u != id),
            _ => {}
        }
    }

    /// A unit of the copy to report a hazard on.
    pub fn unit_at(&self, i: usize) -> Option<&str> {
        (!self.units.is_empty()).then(|| self.units[i % self.units.len()].as_str())
    }

    /// The checksum of every table, computed over the copy.
    pub fn checksums(&self) -> Vec<(&'static str, TableSum)> {
        TABLES
            .iter()
            .zip(&self.tables)
            .map(|(name, rows)| {
                let sum = rows.values().fold(0u64, |a, r| a.wrapping_add(r.term));
                (
                    *name,
                    TableSum {
                        count: rows.len() as u64,
                        checksum: format!("{sum:016x}"),
                    },
                )
            })
            .collect()
    }
}

/// First 8 bytes, big-endian, of SHA-256(`"{id}:{version}"`).
pub fn row_term(id: &str, version: u64) -> u64 {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = version;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let d = Sha256::new()
        .chain_update(id.as_bytes())
        .chain_update(b":")
        .chain_update(&digits[i..])
        .finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_indices_follow_the_servers_table_order() {
        // TABLES is the server's list; the indices here must name the same tables.
        for (i, name) in [
            (T_ASSIGNMENTS, "assignments"),
            (T_TEMPLATES, "checklist_templates"),
            (T_EVIDENCE, "evidence"),
            (T_HAZARDS, "hazards"),
            (T_INSPECTIONS, "inspections"),
            (T_UNITS, "units"),
        ] {
            assert_eq!(TABLES[i], name);
        }
    }

    #[test]
    fn row_term_is_the_spec_function() {
        let d = Sha256::digest(b"abc:42");
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        assert_eq!(row_term("abc", 42), u64::from_be_bytes(b));
        let d0 = Sha256::digest(b"x:0");
        b.copy_from_slice(&d0[..8]);
        assert_eq!(row_term("x", 0), u64::from_be_bytes(b));
    }
}
