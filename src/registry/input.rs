//! Validation of registry input, shared by the REST endpoints and the CSV import: each
//! failure names its field, so REST answers 422 with `fields` and the import reports rows.

use chrono::NaiveDate;

use super::codes::CodeBook;
use super::ids::{CategoryCode, RegistrationCode, Uscc};
use crate::auth::region::RegionCode;

pub type FieldErrors = Vec<(&'static str, String)>;

/// A unit as it arrives (CSV columns or JSON fields), text only.
#[derive(Debug, Default, Clone)]
pub struct UnitInput {
    pub uscc: String,
    pub name: String,
    pub address: String,
    pub region_code: String,
    pub place_type: String,
    pub contact_name: String,
    pub contact_phone: String,
}

#[derive(Debug, Clone)]
pub struct ValidUnit {
    pub uscc: Uscc,
    pub name: String,
    pub address: String,
    pub region: RegionCode,
    pub place_type: String,
    pub public_gathering: bool,
    pub contact_name: String,
    pub contact_phone: String,
}

/// Equipment as it arrives, text only (CSV columns; JSON numbers and booleans are given as
/// their text).
#[derive(Debug, Default, Clone)]
pub struct EquipmentInput {
    pub registration_code: String,
    pub reg_cert_no: String,
    pub category_code: String,
    pub reg_status: String,
    pub commissioned_on: String,
    pub last_inspection_on: String,
    pub next_inspection_due: String,
    pub inspection_conclusion: String,
    pub location: String,
    pub brake_type: String,
    pub fault_count_12m: String,
    pub hazchem: String,
}

#[derive(Debug, Clone)]
pub struct ValidEquipment {
    pub registration_code: RegistrationCode,
    pub reg_cert_no: String,
    pub category: CategoryCode,
    pub reg_status: String,
    pub commissioned_on: Option<NaiveDate>,
    pub last_inspection_on: Option<NaiveDate>,
    pub next_inspection_due: Option<NaiveDate>,
    pub inspection_conclusion: String,
    pub location: String,
    pub brake_type: String,
    pub fault_count_12m: i32,
    pub hazchem: bool,
}

/// Text of at most `max` characters without control characters; `required` refuses empty.
fn text(
    errs: &mut FieldErrors,
    field: &'static str,
    v: &str,
    max: usize,
    required: bool,
) -> String {
    let v = v.trim();
    if required && v.is_empty() {
        errs.push((field, "must not be empty".into()));
    } else if v.chars().count() > max {
        errs.push((field, format!("must be at most {max} characters")));
    } else if v.chars().any(char::is_control) {
        errs.push((field, "must not contain control characters".into()));
    }
    v.to_string()
}

/// `YYYY-MM-DD` or empty.
pub fn date(errs: &mut FieldErrors, field: &'static str, v: &str) -> Option<NaiveDate> {
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        Ok(d) if (1900..=2200).contains(&chrono::Datelike::year(&d)) && v.len() == 10 => Some(d),
        _ => {
            errs.push((field, format!("`{}` is not a date YYYY-MM-DD", clip(v))));
            None
        }
    }
}

/// A value quoted in an error message, shortened.
pub fn clip(v: &str) -> String {
    if v.chars().count() > 40 {
        format!("{}…", v.chars().take(40).collect::<String>())
    } else {
        v.to_string()
    }
}

pub fn check_unit(
    u: &UnitInput,
    book: &CodeBook,
    caller_region: &RegionCode,
) -> Result<ValidUnit, FieldErrors> {
    let mut errs = FieldErrors::new();
    let uscc = Uscc::parse(&u.uscc)
        .map_err(|e| errs.push(("uscc", e)))
        .ok();
    let name = text(&mut errs, "name", &u.name, 200, true);
    let address = text(&mut errs, "address", &u.address, 300, true);
    let region = match RegionCode::parse(u.region_code.trim()) {
        Ok(r) if r.as_str().ends_with("00") => {
            errs.push((
                "region_code",
                "must be a district (county) code, not a city or province code".into(),
            ));
            None
        }
        Ok(r) if !caller_region.covers(&r) => {
            errs.push(("region_code", format!("{r} is outside your region")));
            None
        }
        Ok(r) => Some(r),
        Err(e) => {
            errs.push(("region_code", e));
            None
        }
    };
    let place_type = u.place_type.trim().to_string();
    if !book.has("place_type", &place_type) {
        errs.push((
            "place_type",
            format!(
                "`{}` is not a place type ({})",
                clip(&place_type),
                book.list("place_type")
            ),
        ));
    }
    let contact_name = text(&mut errs, "contact_name", &u.contact_name, 100, false);
    let contact_phone = text(&mut errs, "contact_phone", &u.contact_phone, 40, false);
    if !contact_phone.is_empty()
        && !contact_phone
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')'))
    {
        errs.push((
            "contact_phone",
            "may hold digits, spaces and + - ( ) only".into(),
        ));
    }
    match (uscc, region, errs.is_empty()) {
        (Some(uscc), Some(region), true) => Ok(ValidUnit {
            uscc,
            name,
            address,
            region,
            public_gathering: book.public_gathering(&place_type),
            place_type,
            contact_name,
            contact_phone,
        }),
        _ => Err(errs),
    }
}

pub fn check_equipment(e: &EquipmentInput, book: &CodeBook) -> Result<ValidEquipment, FieldErrors> {
    let mut errs = FieldErrors::new();
    let registration_code = RegistrationCode::parse(&e.registration_code)
        .map_err(|m| errs.push(("registration_code", m)))
        .ok();
    let reg_cert_no = text(&mut errs, "reg_cert_no", &e.reg_cert_no, 64, false);
    let category = match CategoryCode::parse(&e.category_code) {
        Ok(c) if book.has("equipment_category", c.as_str()) => Some(c),
        Ok(c) => {
            errs.push((
                "category_code",
                format!("{} is not in the equipment catalogue", c.as_str()),
            ));
            None
        }
        Err(m) => {
            errs.push(("category_code", m));
            None
        }
    };
    let reg_status = e.reg_status.trim().to_string();
    if !book.has("reg_status", &reg_status) {
        errs.push((
            "reg_status",
            format!(
                "`{}` is not a registration status ({})",
                clip(&reg_status),
                book.list("reg_status")
            ),
        ));
    }
    let commissioned_on = date(&mut errs, "commissioned_on", &e.commissioned_on);
    let last_inspection_on = date(&mut errs, "last_inspection_on", &e.last_inspection_on);
    let next_inspection_due = date(&mut errs, "next_inspection_due", &e.next_inspection_due);
    if let (Some(last), Some(next)) = (last_inspection_on, next_inspection_due)
        && next < last
    {
        errs.push(("next_inspection_due", "is before last_inspection_on".into()));
    }
    let inspection_conclusion = e.inspection_conclusion.trim().to_string();
    if !inspection_conclusion.is_empty()
        && !book.has("inspection_conclusion", &inspection_conclusion)
    {
        errs.push((
            "inspection_conclusion",
            format!(
                "`{}` is not an inspection conclusion ({}, or empty)",
                clip(&inspection_conclusion),
                book.list("inspection_conclusion")
            ),
        ));
    }
    let location = text(&mut errs, "location", &e.location, 200, false);
    let brake_type = text(&mut errs, "brake_type", &e.brake_type, 40, false);
    let fc = e.fault_count_12m.trim();
    let fault_count_12m = if fc.is_empty() {
        0
    } else {
        match fc.parse::<i32>() {
            Ok(n) if (0..=10_000).contains(&n) => n,
            _ => {
                errs.push((
                    "fault_count_12m",
                    format!("`{}` is not a whole number 0..=10000", clip(fc)),
                ));
                0
            }
        }
    };
    let hazchem = match e.hazchem.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "0" | "no" => false,
        "true" | "1" | "yes" => true,
        other => {
            errs.push(("hazchem", format!("`{}` is not true or false", clip(other))));
            false
        }
    };
    match (registration_code, category, errs.is_empty()) {
        (Some(registration_code), Some(category), true) => Ok(ValidEquipment {
            registration_code,
            reg_cert_no,
            category,
            reg_status,
            commissioned_on,
            last_inspection_on,
            next_inspection_due,
            inspection_conclusion,
            location,
            brake_type,
            fault_count_12m,
            hazchem,
        }),
        _ => Err(errs),
    }
}
