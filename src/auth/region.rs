//! Roles and administrative regions (contract: 6-digit division codes; a code ending in `00`
//! covers the codes with its first four digits, one ending in `0000` its first two).
//! `000000` is the whole country: the admin's region.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Manager,
    Inspector,
    Unit,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Inspector => "inspector",
            Role::Unit => "unit",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "manager" => Some(Role::Manager),
            "inspector" => Some(Role::Inspector),
            "unit" => Some(Role::Unit),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated 6-digit region code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RegionCode(String);

impl RegionCode {
    pub const COUNTRY: &'static str = "000000";

    pub fn parse(s: &str) -> Result<RegionCode, String> {
        if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(RegionCode(s.to_string()))
        } else {
            Err("must be a 6-digit administrative division code".into())
        }
    }

    pub fn country() -> RegionCode {
        RegionCode(Self::COUNTRY.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The prefix every code this region covers starts with.
    pub fn prefix(&self) -> &str {
        let c = self.0.as_str();
        if c == Self::COUNTRY {
            ""
        } else if c.ends_with("0000") {
            &c[..2]
        } else if c.ends_with("00") {
            &c[..4]
        } else {
            c
        }
    }

    /// Does this region include `other` (itself included)?
    pub fn covers(&self, other: &RegionCode) -> bool {
        other.0.starts_with(self.prefix())
    }

    /// Does this region include the stored region code `code`? (A malformed code: no.)
    pub fn covers_code(&self, code: &str) -> bool {
        RegionCode::parse(code).is_ok_and(|r| self.covers(&r))
    }

    /// SQL `LIKE` pattern for the codes this region covers (codes are digits only, so no
    /// escaping is needed).
    pub fn like_pattern(&self) -> String {
        format!("{}%", self.prefix())
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RegionCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RegionCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> RegionCode {
        RegionCode::parse(s).unwrap()
    }

    #[test]
    fn coverage_by_prefix() {
        assert!(r("330000").covers(&r("330106")));
        assert!(r("330100").covers(&r("330106")));
        assert!(r("330100").covers(&r("330100")));
        assert!(!r("330100").covers(&r("330200")));
        assert!(!r("330106").covers(&r("330105")));
        assert!(!r("330106").covers(&r("330100")));
        assert!(RegionCode::country().covers(&r("110101")));
        assert!(RegionCode::parse("33010").is_err());
        assert!(RegionCode::parse("33010a").is_err());
        assert_eq!(r("330100").like_pattern(), "3301%");
    }
}
