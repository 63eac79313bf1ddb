//! CSV import of units and equipment (contract in DESIGN.md): streaming, all-or-nothing,
//! per-row errors with line numbers, UTF-8 with or without BOM, idempotent on the natural
//! keys (USCC, registration code), limited to the caller's region.
//!
//! The body is spooled to a file under the data directory (never held in memory), then read
//! twice: a validation pass outside any transaction (so a bad file never takes the write
//! lock), and a write pass in one sync transaction, `BATCH` rows at a time. Memory grows only
//! with the set of distinct keys seen (for duplicate detection, 16 bytes a row) and the units
//! the file names, never with the file.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::io::Write;
use std::path::{Path, PathBuf};

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web;
use chrono::NaiveDateTime;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Map, json};

use super::codes::CodeBook;
use super::facts;
use super::input::{self, EquipmentInput, UnitInput};
use super::queries::{self, EquipmentRow, UnitRow};
use super::risk::RiskRules;
use super::service::{apply_equipment, apply_unit, new_equipment_row, new_unit_row};
use super::types::ImportOutcome;
use crate::app::AppState;
use crate::auth::extractor::AuthUser;
use crate::auth::region::{RegionCode, Role};
use crate::db::{DbConn, SyncTx, sync_tx};
use crate::error::{ApiError, ApiResult};
use crate::validate;

/// Rows looked up and written per batch.
const BATCH: usize = 500;

pub const UNIT_COLUMNS: [&str; 7] = [
    "uscc",
    "name",
    "address",
    "region_code",
    "place_type",
    "contact_name",
    "contact_phone",
];

pub const EQUIPMENT_COLUMNS: [&str; 13] = [
    "registration_code",
    "unit_uscc",
    "category_code",
    "reg_cert_no",
    "reg_status",
    "commissioned_on",
    "last_inspection_on",
    "next_inspection_due",
    "inspection_conclusion",
    "location",
    "brake_type",
    "fault_count_12m",
    "hazchem",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Units,
    Equipment,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub field: String,
    pub message: String,
}

/// The spooled body; removed when dropped.
pub struct Spool {
    path: PathBuf,
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Spool {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn is_csv(req: &HttpRequest) -> Result<(), ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut parts = ct.split(';');
    let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let charset_ok = parts.all(|p| {
        let Some((k, v)) = p.split_once('=') else {
            return true;
        };
        !k.trim().eq_ignore_ascii_case("charset")
            || v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
    });
    if !matches!(mime.as_str(), "text/csv" | "application/csv") {
        return Err(ApiError::UnsupportedMediaType {
            message: "send the file as `Content-Type: text/csv` (UTF-8)".into(),
        });
    }
    if !charset_ok {
        return Err(ApiError::UnsupportedMediaType {
            message: "only UTF-8 CSV is accepted (save the file as UTF-8; GBK is not)".into(),
        });
    }
    Ok(())
}

/// Writes the request body to a file under `<data_dir>/tmp`, refusing more than the limit.
pub async fn spool(
    state: &AppState,
    req: &HttpRequest,
    mut payload: web::Payload,
) -> ApiResult<Spool> {
    is_csv(req)?;
    let limit = state.config.max_import_bytes;
    let too_large = || ApiError::PayloadTooLarge {
        message: format!("the file is larger than {limit} bytes (setting max_import_bytes)"),
    };
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit
    {
        return Err(too_large());
    }
    let dir = Path::new(&state.config.data_dir).join("tmp");
    let path = dir.join(format!("import-{}.csv", validate::new_id()));
    let p = path.clone();
    let file = web::block(move || {
        std::fs::create_dir_all(&dir)?;
        std::fs::File::create(&p)
    })
    .await
    .map_err(ApiError::internal_from)?
    .map_err(|e| ApiError::internal(format!("cannot spool the import: {e}")))?;
    let spool = Spool { path };
    let mut writer = Some(std::io::BufWriter::with_capacity(1 << 20, file));
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut total: u64 = 0;
    loop {
        let chunk = payload.next().await;
        let done = chunk.is_none();
        if let Some(chunk) = chunk {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request("bad_body", format!("reading the body failed: {e}"))
            })?;
            total += chunk.len() as u64;
            if total > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        // Hand full buffers (and the rest at the end) to a blocking thread to write.
        if buf.len() >= (1 << 20) || (done && !buf.is_empty()) {
            let data = std::mem::take(&mut buf);
            let mut w = writer
                .take()
                .ok_or_else(|| ApiError::internal("spool writer lost"))?;
            let w = web::block(move || -> std::io::Result<_> {
                w.write_all(&data)?;
                Ok(w)
            })
            .await
            .map_err(ApiError::internal_from)?
            .map_err(|e| ApiError::internal(format!("cannot spool the import: {e}")))?;
            writer = Some(w);
        }
        if done {
            break;
        }
    }
    if let Some(mut w) = writer.take() {
        web::block(move || w.flush())
            .await
            .map_err(ApiError::internal_from)?
            .map_err(|e| ApiError::internal(format!("cannot spool the import: {e}")))?;
    }
    if total == 0 {
        return Err(ApiError::invalid(
            "body",
            "the file is empty: a header row is required",
        ));
    }
    Ok(spool)
}

/// Who imports: the region bounds every row.
#[derive(Debug, Clone)]
pub struct Importer {
    pub region: RegionCode,
}

impl Importer {
    /// Is `region` (a stored region code) within the importer's region?
    fn covers(&self, region: &str) -> bool {
        self.region.covers_code(region)
    }

    pub fn from_user(me: &AuthUser) -> ApiResult<Importer> {
        match me.role {
            Role::Admin | Role::Manager => Ok(Importer {
                region: me.region.clone(),
            }),
            _ => Err(ApiError::forbidden(
                "only managers and admins import the registry",
            )),
        }
    }
}

/// Collected row errors, capped.
struct Errors {
    rows: Vec<RowError>,
    max: usize,
    truncated: bool,
}

impl Errors {
    fn new(max: usize) -> Errors {
        Errors {
            rows: Vec::new(),
            max,
            truncated: false,
        }
    }
    fn any(&self) -> bool {
        !self.rows.is_empty() || self.truncated
    }
    fn push(&mut self, line: u64, field: &str, message: impl Into<String>) {
        if self.rows.len() >= self.max {
            self.truncated = true;
            return;
        }
        self.rows.push(RowError {
            line,
            field: field.to_string(),
            message: message.into(),
        });
    }
    fn full(&self) -> bool {
        self.truncated
    }
    fn into_error(mut self, total_rows: u64) -> ApiError {
        // In file order (shape errors are found before a batch's field errors).
        self.rows.sort_by_key(|r| r.line);
        let n = self.rows.len();
        let mut extra = Map::new();
        extra.insert("rows".into(), json!(self.rows));
        extra.insert("truncated".into(), json!(self.truncated));
        ApiError::Unprocessable {
            code: "import_rejected",
            message: format!(
                "{n}{} error(s) in {total_rows} row(s); nothing was imported",
                if self.truncated { "+" } else { "" }
            ),
            extra,
        }
    }
}

/// One data row: its line, and its fields in contract column order.
struct Row {
    line: u64,
    fields: Vec<String>,
}

/// Reads the CSV at `path` with the `columns` of the contract (any order, all present, no
/// others), calling `on_batch` with up to `BATCH` well-formed rows at a time. Shape problems
/// (bad header, wrong field count, not UTF-8, broken quoting) go to `errors`.
fn scan(
    path: &Path,
    columns: &[&str],
    errors: &mut Errors,
    mut on_batch: impl FnMut(&mut Vec<Row>, &mut Errors) -> ApiResult<()>,
) -> ApiResult<u64> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_path(path)
        .map_err(|e| ApiError::internal(format!("cannot read the spooled import: {e}")))?;
    let header = match rdr.byte_headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            errors.push(1, "", format!("the header row cannot be read: {e}"));
            return Ok(0);
        }
    };
    let mut index: Vec<Option<usize>> = vec![None; columns.len()];
    let mut header_ok = true;
    for (i, raw) in header.iter().enumerate() {
        let name = String::from_utf8_lossy(raw);
        let name = name
            .trim_start_matches('\u{feff}')
            .trim()
            .to_ascii_lowercase();
        match columns.iter().position(|c| *c == name) {
            Some(c) if index[c].is_some() => {
                errors.push(1, &name, "column appears twice in the header");
                header_ok = false;
            }
            Some(c) => index[c] = Some(i),
            None => {
                errors.push(
                    1,
                    &name,
                    format!("unknown column (expected: {})", columns.join(",")),
                );
                header_ok = false;
            }
        }
    }
    for (c, idx) in index.iter().enumerate() {
        if idx.is_none() {
            errors.push(1, columns[c], "column missing from the header row");
            header_ok = false;
        }
    }
    if !header_ok {
        return Ok(0);
    }
    let width = header.len();
    let mut batch = Vec::with_capacity(BATCH);
    let mut rows = 0u64;
    let mut record = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(line, "", format!("the CSV cannot be read past here: {e}"));
                break;
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue; // blank lines, and the empty rows spreadsheets leave at the end
        }
        rows += 1;
        if record.len() != width {
            errors.push(
                line,
                "",
                format!("expected {width} fields, found {}", record.len()),
            );
            continue;
        }
        let mut fields = Vec::with_capacity(columns.len());
        let mut utf8 = true;
        for (c, idx) in index.iter().enumerate() {
            let raw = idx.and_then(|i| record.get(i)).unwrap_or(b"");
            match std::str::from_utf8(raw) {
                Ok(s) => fields.push(s.to_string()),
                Err(_) => {
                    errors.push(
                        line,
                        columns[c],
                        "is not UTF-8 text (save the file as UTF-8; GBK is not accepted)",
                    );
                    utf8 = false;
                    break;
                }
            }
        }
        if utf8 {
            batch.push(Row { line, fields });
        }
        if batch.len() >= BATCH {
            on_batch(&mut batch, errors)?;
            batch.clear();
        }
        if errors.full() {
            break;
        }
    }
    if !batch.is_empty() {
        on_batch(&mut batch, errors)?;
    }
    Ok(rows)
}

/// Remembers each key's first line, as a 64-bit hash (16 bytes a row however long the key).
struct Seen {
    lines: HashMap<u64, u64>,
    hasher: std::collections::hash_map::RandomState,
}

impl Seen {
    fn new() -> Seen {
        Seen {
            lines: HashMap::new(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }
    /// The line this key was first seen on, if it was.
    fn first(&mut self, key: &str, line: u64) -> Option<u64> {
        let k = self.hasher.hash_one(key);
        match self.lines.get(&k) {
            Some(&first) => Some(first),
            None => {
                self.lines.insert(k, line);
                None
            }
        }
    }
}

fn unit_input(f: &[String]) -> UnitInput {
    UnitInput {
        uscc: f[0].clone(),
        name: f[1].clone(),
        address: f[2].clone(),
        region_code: f[3].clone(),
        place_type: f[4].clone(),
        contact_name: f[5].clone(),
        contact_phone: f[6].clone(),
    }
}

fn equipment_input(f: &[String]) -> EquipmentInput {
    EquipmentInput {
        registration_code: f[0].clone(),
        reg_cert_no: f[3].clone(),
        category_code: f[2].clone(),
        reg_status: f[4].clone(),
        commissioned_on: f[5].clone(),
        last_inspection_on: f[6].clone(),
        next_inspection_due: f[7].clone(),
        inspection_conclusion: f[8].clone(),
        location: f[9].clone(),
        brake_type: f[10].clone(),
        fault_count_12m: f[11].clone(),
        hazchem: f[12].clone(),
    }
}

fn changed_during_import() -> ApiError {
    ApiError::conflict(
        "registry_changed",
        "the registry changed while the file was being checked; send it again",
    )
}

/// Runs an import of `kind` from the spooled file. Blocking.
pub fn run(
    conn: &mut DbConn,
    kind: Kind,
    who: &Importer,
    path: &Path,
    now: NaiveDateTime,
    rules: &RiskRules,
    max_errors: usize,
) -> ApiResult<ImportOutcome> {
    match kind {
        Kind::Units => import_units(conn, who, path, now, rules, max_errors),
        Kind::Equipment => import_equipment(conn, who, path, now, rules, max_errors),
    }
}

fn import_units(
    conn: &mut DbConn,
    who: &Importer,
    path: &Path,
    now: NaiveDateTime,
    rules: &RiskRules,
    max_errors: usize,
) -> ApiResult<ImportOutcome> {
    let book = CodeBook::load(conn)?;
    let mut errors = Errors::new(max_errors);
    // Pass 1: validate everything, write nothing.
    let mut seen = Seen::new();
    let total = scan(path, &UNIT_COLUMNS, &mut errors, |batch, errors| {
        let mut usccs = Vec::with_capacity(batch.len());
        for row in batch.iter() {
            match input::check_unit(&unit_input(&row.fields), &book, &who.region) {
                Ok(v) => {
                    if let Some(first) = seen.first(v.uscc.as_str(), row.line) {
                        errors.push(row.line, "uscc", format!("same USCC as line {first}"));
                    } else {
                        usccs.push((row.line, v.uscc.as_str().to_string()));
                    }
                }
                Err(fe) => {
                    for (f, m) in fe {
                        errors.push(row.line, f, m);
                    }
                }
            }
        }
        let keys: Vec<String> = usccs.iter().map(|(_, u)| u.clone()).collect();
        let existing = queries::units_by_uscc(conn, &keys)?;
        for (line, uscc) in &usccs {
            if let Some(u) = existing.iter().find(|u| &u.uscc == uscc)
                && !who.covers(&u.region_code)
            {
                errors.push(*line, "uscc", "is registered to a unit outside your region");
            }
        }
        Ok(())
    })?;
    if errors.any() {
        return Err(errors.into_error(total));
    }
    // Pass 2: write, in one transaction.
    let mut out = ImportOutcome::default();
    let mut scan_errors = Errors::new(max_errors);
    let checked = std::time::Instant::now();
    sync_tx(conn, |tx| -> ApiResult<()> {
        let mut touched: Vec<String> = Vec::new();
        scan(path, &UNIT_COLUMNS, &mut scan_errors, |batch, _| {
            write_unit_batch(tx, who, &book, batch, now, &mut out, &mut touched)
        })?;
        if scan_errors.any() {
            return Err(changed_during_import());
        }
        let written = std::time::Instant::now();
        facts::refresh_units(tx, &touched, now, rules)?;
        tracing::debug!(
            write_ms = (written - checked).as_millis() as u64,
            refresh_ms = written.elapsed().as_millis() as u64,
            "unit import phases"
        );
        Ok(())
    })?;
    Ok(out)
}

fn write_unit_batch(
    tx: &mut SyncTx<'_>,
    who: &Importer,
    book: &CodeBook,
    batch: &[Row],
    now: NaiveDateTime,
    out: &mut ImportOutcome,
    touched: &mut Vec<String>,
) -> ApiResult<()> {
    let valid: Vec<_> = batch
        .iter()
        .map(|r| input::check_unit(&unit_input(&r.fields), book, &who.region))
        .collect::<Result<_, _>>()
        .map_err(|_| changed_during_import())?;
    let keys: Vec<String> = valid.iter().map(|v| v.uscc.as_str().to_string()).collect();
    let existing: HashMap<String, UnitRow> = queries::units_by_uscc(tx.conn(), &keys)?
        .into_iter()
        .map(|u| (u.uscc.clone(), u))
        .collect();
    let mut new_rows = Vec::new();
    for v in &valid {
        match existing.get(v.uscc.as_str()) {
            Some(cur) => {
                if !who.covers(&cur.region_code) {
                    return Err(changed_during_import());
                }
                let mut next = cur.clone();
                apply_unit(&mut next, v);
                if next == *cur {
                    out.unchanged += 1;
                    continue;
                }
                next.updated_at = now;
                next.version = tx.version();
                queries::update_unit(tx, &next)?;
                if next.region_code != cur.region_code {
                    queries::set_equipment_region(tx, &next.id, &next.region_code, now)?;
                    super::service::record_region_move(tx, &next.id, &cur.region_code, now)?;
                }
                touched.push(next.id.clone());
                out.updated += 1;
            }
            None => {
                let row = new_unit_row(v, validate::new_id(), now, tx.version());
                touched.push(row.id.clone());
                new_rows.push(row);
                out.created += 1;
            }
        }
    }
    queries::insert_units(tx, &new_rows).map_err(|e| match ApiError::from(e) {
        ApiError::Conflict { .. } => changed_during_import(),
        other => other,
    })?;
    Ok(())
}

/// A unit an equipment row may name: (id, region, public gathering place).
type UnitRef = Option<(String, String, bool)>;

/// Looks up the units of a batch's `unit_uscc`s not yet cached. A unit outside the
/// importer's region is cached as absent: it is not theirs to attach equipment to.
fn cache_units(
    conn: &mut DbConn,
    who: &Importer,
    cache: &mut HashMap<String, UnitRef>,
    usccs: impl Iterator<Item = String>,
) -> ApiResult<()> {
    let missing: Vec<String> = usccs
        .filter(|u| !cache.contains_key(u))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let found = queries::units_by_uscc(conn, &missing)?;
    for u in &missing {
        let hit = found.iter().find(|r| &r.uscc == u).and_then(|r| {
            who.covers(&r.region_code)
                .then(|| (r.id.clone(), r.region_code.clone(), r.public_gathering))
        });
        cache.insert(u.clone(), hit);
    }
    Ok(())
}

fn normalized_uscc(raw: &str) -> String {
    raw.trim().to_ascii_uppercase()
}

fn import_equipment(
    conn: &mut DbConn,
    who: &Importer,
    path: &Path,
    now: NaiveDateTime,
    rules: &RiskRules,
    max_errors: usize,
) -> ApiResult<ImportOutcome> {
    let book = CodeBook::load(conn)?;
    let mut errors = Errors::new(max_errors);
    let mut units: HashMap<String, UnitRef> = HashMap::new();
    let mut seen = Seen::new();
    let total = scan(path, &EQUIPMENT_COLUMNS, &mut errors, |batch, errors| {
        cache_units(
            conn,
            who,
            &mut units,
            batch.iter().map(|r| normalized_uscc(&r.fields[1])),
        )?;
        let mut codes = Vec::with_capacity(batch.len());
        for row in batch.iter() {
            let uscc = normalized_uscc(&row.fields[1]);
            let unit_ok = match units.get(&uscc) {
                Some(Some(_)) => true,
                _ => {
                    let msg = if uscc.is_empty() {
                        "must not be empty".to_string()
                    } else {
                        format!("no unit with USCC {} in your region", input::clip(&uscc))
                    };
                    errors.push(row.line, "unit_uscc", msg);
                    false
                }
            };
            match input::check_equipment(&equipment_input(&row.fields), &book) {
                Ok(v) => {
                    let code = v.registration_code.as_str();
                    if let Some(first) = seen.first(code, row.line) {
                        errors.push(
                            row.line,
                            "registration_code",
                            format!("same registration code as line {first}"),
                        );
                    } else if unit_ok {
                        codes.push((row.line, code.to_string()));
                    }
                }
                Err(fe) => {
                    for (f, m) in fe {
                        errors.push(row.line, f, m);
                    }
                }
            }
        }
        let keys: Vec<String> = codes.iter().map(|(_, c)| c.clone()).collect();
        let existing = queries::equipment_by_code(conn, &keys)?;
        for (line, code) in &codes {
            if let Some(e) = existing.iter().find(|e| &e.registration_code == code)
                && !who.covers(&e.region_code)
            {
                errors.push(
                    *line,
                    "registration_code",
                    "is registered to equipment outside your region",
                );
            }
        }
        Ok(())
    })?;
    if errors.any() {
        return Err(errors.into_error(total));
    }
    let mut out = ImportOutcome::default();
    let mut scan_errors = Errors::new(max_errors);
    let checked = std::time::Instant::now();
    // Pass 2 looks the units up again inside the transaction: one may have moved since.
    units.clear();
    sync_tx(conn, |tx| -> ApiResult<()> {
        let mut touched: HashSet<String> = HashSet::new();
        scan(path, &EQUIPMENT_COLUMNS, &mut scan_errors, |batch, _| {
            write_equipment_batch(
                tx,
                who,
                &book,
                &mut units,
                batch,
                now,
                rules,
                &mut out,
                &mut touched,
            )
        })?;
        if scan_errors.any() {
            return Err(changed_during_import());
        }
        let mut touched: Vec<String> = touched.into_iter().collect();
        touched.sort_unstable();
        let written = std::time::Instant::now();
        facts::refresh_units(tx, &touched, now, rules)?;
        tracing::debug!(
            write_ms = (written - checked).as_millis() as u64,
            refresh_ms = written.elapsed().as_millis() as u64,
            "equipment import phases"
        );
        Ok(())
    })?;
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn write_equipment_batch(
    tx: &mut SyncTx<'_>,
    who: &Importer,
    book: &CodeBook,
    units: &mut HashMap<String, UnitRef>,
    batch: &[Row],
    now: NaiveDateTime,
    rules: &RiskRules,
    out: &mut ImportOutcome,
    touched: &mut HashSet<String>,
) -> ApiResult<()> {
    cache_units(
        tx.conn(),
        who,
        units,
        batch.iter().map(|r| normalized_uscc(&r.fields[1])),
    )?;
    let mut valid = Vec::with_capacity(batch.len());
    for r in batch {
        let v = input::check_equipment(&equipment_input(&r.fields), book)
            .map_err(|_| changed_during_import())?;
        let uscc = normalized_uscc(&r.fields[1]);
        let unit = units
            .get(&uscc)
            .cloned()
            .flatten()
            .ok_or_else(changed_during_import)?;
        valid.push((v, unit));
    }
    let keys: Vec<String> = valid
        .iter()
        .map(|(v, _)| v.registration_code.as_str().to_string())
        .collect();
    let existing: HashMap<String, EquipmentRow> = queries::equipment_by_code(tx.conn(), &keys)?
        .into_iter()
        .map(|e| (e.registration_code.clone(), e))
        .collect();
    let mut new_rows = Vec::new();
    let today = now.date();
    for (v, (unit_id, region, public_gathering)) in &valid {
        match existing.get(v.registration_code.as_str()) {
            Some(cur) => {
                if !who.covers(&cur.region_code) {
                    return Err(changed_during_import());
                }
                let mut next = cur.clone();
                apply_equipment(&mut next, v);
                next.unit_id = unit_id.clone();
                next.region_code = region.clone();
                facts::stamp_equipment(&mut next, *public_gathering, today, rules);
                if next == *cur {
                    out.unchanged += 1;
                    continue;
                }
                next.updated_at = now;
                next.version = tx.version();
                queries::update_equipment(tx, &next)?;
                if next.unit_id != cur.unit_id {
                    // Moved to another unit: that unit's users and the old region's devices
                    // may no longer hold it.
                    tx.scope_event(
                        false,
                        "equipment",
                        &cur.id,
                        crate::db::ScopeKey::Unit(&cur.unit_id),
                        now,
                    )?;
                    if next.region_code != cur.region_code {
                        tx.scope_event(
                            false,
                            "equipment",
                            &cur.id,
                            crate::db::ScopeKey::Region(&cur.region_code),
                            now,
                        )?;
                    }
                }
                touched.insert(cur.unit_id.clone());
                touched.insert(unit_id.clone());
                out.updated += 1;
            }
            None => {
                new_rows.push(new_equipment_row(
                    v,
                    (unit_id, region, *public_gathering),
                    validate::new_id(),
                    now,
                    tx.version(),
                    rules,
                ));
                touched.insert(unit_id.clone());
                out.created += 1;
            }
        }
    }
    queries::insert_equipment(tx, &new_rows).map_err(|e| match ApiError::from(e) {
        ApiError::Conflict { .. } => changed_during_import(),
        other => other,
    })?;
    Ok(())
}

/// Handler body shared by both import routes.
pub async fn handle(
    state: &AppState,
    me: AuthUser,
    kind: Kind,
    req: &HttpRequest,
    payload: web::Payload,
) -> ApiResult<ImportOutcome> {
    let who = Importer::from_user(&me)?;
    let spool = spool(state, req, payload).await?;
    let rules = RiskRules::from_config(&state.config).map_err(ApiError::internal)?;
    let now = state.clock.now();
    let max_errors = state.config.import_max_row_errors;
    let started = std::time::Instant::now();
    let out = state
        .db
        .run(move |conn| {
            let r = run(conn, kind, &who, spool.path(), now, &rules, max_errors);
            drop(spool);
            r
        })
        .await?;
    tracing::info!(
        ?kind,
        by = %me.id,
        created = out.created,
        updated = out.updated,
        unchanged = out.unchanged,
        ms = started.elapsed().as_millis() as u64,
        "registry import"
    );
    Ok(out)
}
