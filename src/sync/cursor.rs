//! Sync cursors: opaque to devices, signed (HMAC-SHA256) so a forged one is refused (400),
//! and naming the database, the caller's scope, where the device's copy is complete (`base`)
//! and how far the current walk has got (`pos`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const PREFIX: &str = "s1.";

/// A position in the change order `(version, table, id)`. `table == ""` means every change
/// of `version` and before is delivered.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pos {
    pub v: i64,
    pub t: String,
    pub id: String,
}

impl Pos {
    pub fn through(v: i64) -> Pos {
        Pos {
            v,
            t: String::new(),
            id: String::new(),
        }
    }

    /// Is the change at `(v, t, id)` after this position?
    pub fn before(&self, v: i64, t: &str, id: &str) -> bool {
        if self.t.is_empty() {
            return v > self.v;
        }
        (v, t, id) > (self.v, self.t.as_str(), self.id.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The database it was made on.
    pub db: String,
    /// The user and their scope (role, region, unit) when it was made.
    pub scope: String,
    /// The device's copy holds every change through this version (tombstones and evicts
    /// from before it are not needed; rows entering scope after it are sent in full).
    pub base: i64,
    pub pos: Pos,
}

#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a cursor this server made (or tampered with).
    Forged,
}

fn mac(key: &[u8], payload: &str) -> Vec<u8> {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    let mut m = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    m.update(payload.as_bytes());
    m.finalize().into_bytes()[..16].to_vec()
}

/// The cursor text of a JSON payload, signed with `key`. (Public so that the fuzz target
/// can reach the decoder's JSON stage with payloads no server would make.)
pub fn seal(json: &[u8], key: &[u8]) -> String {
    let payload = URL_SAFE_NO_PAD.encode(json);
    let sig = URL_SAFE_NO_PAD.encode(mac(key, &payload));
    format!("{PREFIX}{payload}.{sig}")
}

impl Cursor {
    pub fn encode(&self, key: &[u8]) -> String {
        seal(
            serde_json::to_string(self).unwrap_or_default().as_bytes(),
            key,
        )
    }

    pub fn decode(s: &str, key: &[u8]) -> Result<Cursor, DecodeError> {
        if s.len() > 2048 {
            return Err(DecodeError::Forged);
        }
        let rest = s.strip_prefix(PREFIX).ok_or(DecodeError::Forged)?;
        let (payload, sig) = rest.split_once('.').ok_or(DecodeError::Forged)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| DecodeError::Forged)?;
        let mut m = Hmac::<Sha256>::new_from_slice(key).map_err(|_| DecodeError::Forged)?;
        m.update(payload.as_bytes());
        m.verify_truncated_left(&sig)
            .map_err(|_| DecodeError::Forged)?;
        if sig.len() != 16 {
            return Err(DecodeError::Forged);
        }
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| DecodeError::Forged)?;
        serde_json::from_slice(&json).map_err(|_| DecodeError::Forged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_forgery() {
        let c = Cursor {
            db: "db1".into(),
            scope: "u1:inspector:330106:".into(),
            base: 7,
            pos: Pos {
                v: 9,
                t: "units".into(),
                id: "x".into(),
            },
        };
        let s = c.encode(b"key");
        assert_eq!(Cursor::decode(&s, b"key"), Ok(c.clone()));
        assert_eq!(Cursor::decode(&s, b"other"), Err(DecodeError::Forged));
        let mut tampered = s.clone();
        tampered.insert(5, 'A');
        assert_eq!(Cursor::decode(&tampered, b"key"), Err(DecodeError::Forged));
        assert_eq!(Cursor::decode("garbage", b"key"), Err(DecodeError::Forged));
        assert_eq!(Cursor::decode("s1.e30.", b"key"), Err(DecodeError::Forged));
        // Positions: "through v" and mid-version.
        assert!(Pos::through(5).before(6, "a", "a"));
        assert!(!Pos::through(5).before(5, "z", "z"));
        let p = Pos {
            v: 5,
            t: "units".into(),
            id: "b".into(),
        };
        assert!(p.before(5, "units", "c"));
        assert!(p.before(5, "users", "a"));
        assert!(!p.before(5, "units", "b"));
        assert!(!p.before(5, "hazards", "z"));
    }
}
