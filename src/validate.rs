//! Small validators shared by services: each failure is a 422 naming the field.

use crate::error::{ApiError, ApiResult};

/// Trimmed text of 1..=max characters without control characters.
pub fn text(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    optional_text(field, v, max)
}

/// Like [`text`] but empty is allowed.
pub fn optional_text(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let v = value.trim();
    if v.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(v.to_string())
}

/// Usernames: 3 to 64 of `a-z 0-9 . _ -`, compared in lower case.
pub fn username(value: &str) -> ApiResult<String> {
    let v = value.trim().to_ascii_lowercase();
    let ok_chars = v
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if !(3..=64).contains(&v.len()) || !ok_chars {
        return Err(ApiError::invalid(
            "username",
            "must be 3 to 64 characters of a-z, 0-9, '.', '_' or '-'",
        ));
    }
    Ok(v)
}

/// A UUID in canonical lower-case form.
pub fn uuid(field: &str, value: &str) -> ApiResult<String> {
    uuid::Uuid::parse_str(value.trim())
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| ApiError::invalid(field, "must be a UUID"))
}

/// A new server-made id: UUIDv7 (time-ordered, kind to indexes).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

/// Free text of several lines (descriptions, notes): like [`optional_text`], but line breaks
/// and tabs are kept; other control characters are refused. `required` refuses empty.
pub fn multiline(field: &str, value: &str, max: usize, required: bool) -> ApiResult<String> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if v.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters other than line breaks and tabs",
        ));
    }
    Ok(v.to_string())
}

/// The checklist item a record refers to: an inspection id (UUID) and an item code, each
/// optional.
pub fn inspection_item(
    inspection_id: Option<&str>,
    item_code: Option<&str>,
) -> ApiResult<(Option<String>, Option<String>)> {
    Ok((
        inspection_id
            .map(|i| uuid("inspection_id", i))
            .transpose()?,
        item_code.map(|c| text("item_code", c, 32)).transpose()?,
    ))
}
