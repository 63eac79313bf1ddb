//! Code tables (equipment categories, place types, statuses, levels, kinds, risk flags) with
//! Chinese and English labels: data in the `codes` table, synced to devices and served at
//! `GET /api/v1/codes`, and what registry input is validated against.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::queries::{self, CodeRow};
use crate::db::DbConn;

#[derive(Debug, Clone, Serialize)]
pub struct Code {
    pub code: String,
    pub parent: Option<String>,
    pub zh: String,
    pub en: String,
    pub attrs: serde_json::Value,
}

impl From<CodeRow> for Code {
    fn from(r: CodeRow) -> Self {
        Code {
            code: r.code,
            parent: r.parent_code,
            zh: r.label_zh,
            en: r.label_en,
            attrs: serde_json::from_str(&r.attrs).unwrap_or_else(|_| serde_json::json!({})),
        }
    }
}

/// `GET /api/v1/codes`.
#[derive(Debug, Serialize)]
pub struct CodeTables {
    pub version: i64,
    pub tables: BTreeMap<String, Vec<Code>>,
}

/// The code tables loaded for validation.
#[derive(Debug, Default)]
pub struct CodeBook {
    by_kind: HashMap<String, HashMap<String, Code>>,
}

impl CodeBook {
    pub fn load(conn: &mut DbConn) -> diesel::QueryResult<CodeBook> {
        let mut by_kind: HashMap<String, HashMap<String, Code>> = HashMap::new();
        for r in queries::all_codes(conn)? {
            let kind = r.kind.clone();
            let code = r.code.clone();
            by_kind.entry(kind).or_default().insert(code, Code::from(r));
        }
        Ok(CodeBook { by_kind })
    }

    pub fn get(&self, kind: &str, code: &str) -> Option<&Code> {
        self.by_kind.get(kind).and_then(|m| m.get(code))
    }

    pub fn has(&self, kind: &str, code: &str) -> bool {
        self.get(kind, code).is_some()
    }

    /// The codes of `kind`, sorted, for error messages.
    pub fn list(&self, kind: &str) -> String {
        let mut v: Vec<&str> = self
            .by_kind
            .get(kind)
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        v.sort_unstable();
        v.join(", ")
    }

    /// Is a place of this type a public gathering place (公众聚集场所)?
    pub fn public_gathering(&self, place_type: &str) -> bool {
        self.get("place_type", place_type)
            .and_then(|c| c.attrs.get("public_gathering"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }
}

pub fn tables(conn: &mut DbConn) -> diesel::QueryResult<CodeTables> {
    let version = queries::codes_version(conn)?;
    let mut tables: BTreeMap<String, Vec<Code>> = BTreeMap::new();
    for r in queries::all_codes(conn)? {
        tables
            .entry(r.kind.clone())
            .or_default()
            .push(Code::from(r));
    }
    Ok(CodeTables { version, tables })
}
