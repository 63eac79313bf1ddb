//! Validated codes of the registry: USCC (统一社会信用代码, GB 32100 with its check digit),
//! the 20-digit equipment registration code, and catalogue category codes.

use std::fmt;

use serde::Serialize;

/// The 31 characters of the USCC alphabet (no I, O, S, V, Z), in value order.
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights of positions 1..=17 (3^(i-1) mod 31).
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

fn uscc_value(c: u8) -> Option<u32> {
    USCC_ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// The check character for the first 17 characters of a USCC.
pub fn uscc_check_char(first17: &[u8]) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (i, &c) in first17.iter().enumerate() {
        sum += uscc_value(c)? * USCC_WEIGHTS[i];
    }
    let check = (31 - sum % 31) % 31;
    Some(USCC_ALPHABET[check as usize] as char)
}

/// A unified social credit code: 18 characters, upper case, check digit verified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Uscc(String);

impl Uscc {
    pub fn parse(s: &str) -> Result<Uscc, String> {
        let v = s.trim().to_ascii_uppercase();
        let b = v.as_bytes();
        if b.len() != 18 {
            return Err(format!("must be 18 characters, got {}", v.chars().count()));
        }
        if let Some(bad) = b.iter().find(|&&c| uscc_value(c).is_none()) {
            return Err(format!(
                "contains `{}`, which a USCC never does (I, O, S, V and Z are not used)",
                *bad as char
            ));
        }
        let expected = uscc_check_char(&b[..17]).ok_or("malformed")?;
        if b[17] as char != expected {
            return Err(format!(
                "check digit is `{}`, expected `{expected}`: the code is mistyped",
                b[17] as char
            ));
        }
        Ok(Uscc(v))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An equipment registration code (设备注册代码): exactly 20 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RegistrationCode(String);

impl RegistrationCode {
    pub fn parse(s: &str) -> Result<RegistrationCode, String> {
        let v = s.trim();
        if v.len() == 20 && v.bytes().all(|b| b.is_ascii_digit()) {
            Ok(RegistrationCode(v.to_string()))
        } else {
            Err("must be exactly 20 digits".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A category code of the equipment catalogue (e.g. `3000`, `3110`, `4D00`); syntax only,
/// membership is checked against the code table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CategoryCode(String);

impl CategoryCode {
    pub fn parse(s: &str) -> Result<CategoryCode, String> {
        let v = s.trim().to_ascii_uppercase();
        if v.len() == 4
            && v.bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        {
            Ok(CategoryCode(v))
        } else {
            Err("must be a 4-character catalogue code such as 3000 or 4D00".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The top-level category (`3110` → `3000`).
    pub fn top(&self) -> String {
        format!("{}000", &self.0[..1])
    }

    pub fn is_elevator(&self) -> bool {
        self.0.starts_with('3')
    }

    pub fn is_pipeline(&self) -> bool {
        self.0.starts_with('8')
    }
}

/// Makes a valid USCC from 17 leading characters (for tests and the demo generator).
pub fn uscc_with_check(first17: &str) -> Option<String> {
    let c = uscc_check_char(first17.as_bytes())?;
    Some(format!("{first17}{c}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uscc_check_digits() {
        // A published example of a real code.
        assert!(Uscc::parse("91350100M000100Y43").is_ok());
        // A code made by the generator's function validates.
        let made = uscc_with_check("91110000100000000").unwrap();
        assert!(Uscc::parse(&made).is_ok());
        assert!(
            Uscc::parse("91350100m000100y43").is_ok(),
            "lower case is accepted"
        );
        let e = Uscc::parse("91350100M000100Y44").unwrap_err();
        assert!(e.contains("check digit"), "{e}");
        assert!(Uscc::parse("91350100M000100Y4").unwrap_err().contains("18"));
        assert!(
            Uscc::parse("91350100M0001O0Y43")
                .unwrap_err()
                .contains("`O`")
        );
    }

    #[test]
    fn registration_and_category_codes() {
        assert!(RegistrationCode::parse("31103301062015000001").is_ok());
        assert!(RegistrationCode::parse("3110330106201500000").is_err());
        assert!(RegistrationCode::parse("3110330106201500000X").is_err());
        let c = CategoryCode::parse("4d00").unwrap();
        assert_eq!(c.as_str(), "4D00");
        assert_eq!(c.top(), "4000");
        assert!(CategoryCode::parse("30000").is_err());
        assert!(CategoryCode::parse("30G0").is_err());
    }
}
