//! Keyset pagination for list endpoints: `?limit=&after=` in, `{"items", "next"}` out.
//! `next` is an opaque cursor naming the last key returned; it stays valid while rows are
//! inserted or deleted (no offsets), so a walk sees every row that existed throughout once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 500;
const PREFIX: &str = "k1:";

#[derive(Debug, Clone)]
pub struct Page {
    limit: i64,
    after: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// The query of a list that takes nothing but the page (`?limit=&after=`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<i64>,
    pub after: Option<String>,
}

impl PageQuery {
    pub fn page(&self) -> ApiResult<Page> {
        Page::new(self.limit, self.after.as_deref())
    }
}

impl Page {
    pub fn new(limit: Option<i64>, after: Option<&str>) -> ApiResult<Page> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let after = after.filter(|a| !a.is_empty()).map(decode).transpose()?;
        Ok(Page { limit, after })
    }

    /// The key to continue after.
    pub fn after(&self) -> Option<&str> {
        self.after.as_deref()
    }

    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    pub fn finish<T>(&self, mut items: Vec<T>, key: impl Fn(&T) -> String) -> Paged<T> {
        let more = items.len() as i64 > self.limit;
        items.truncate(self.limit as usize);
        let next = if more {
            items.last().map(|t| encode(&key(t)))
        } else {
            None
        };
        Paged { items, next }
    }
}

fn encode(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{PREFIX}{key}"))
}

fn decode(cursor: &str) -> ApiResult<String> {
    let bad =
        || ApiError::bad_request("invalid_cursor", "`after` is not a cursor this server made");
    if cursor.len() > 512 {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix(PREFIX).map(String::from).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_cursors() {
        let p = Page::new(Some(2), None).unwrap();
        let out = p.finish(vec!["a", "b", "c"], |s| s.to_string());
        assert_eq!(out.items, vec!["a", "b"]);
        let next = out.next.unwrap();
        let p2 = Page::new(Some(2), Some(&next)).unwrap();
        assert_eq!(p2.after(), Some("b"));
        assert!(p2.finish(vec!["c"], |s| s.to_string()).next.is_none());
        assert!(Page::new(Some(0), None).is_err());
        assert!(Page::new(None, Some("!!")).is_err());
        assert!(Page::new(None, Some(&URL_SAFE_NO_PAD.encode("x"))).is_err());
    }
}
