//! Access tokens (HS256 JWT: `sub`, `role`, `region`, `sid`, short-lived) and refresh tokens
//! (random, stored only as SHA-256).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

const ISSUER: &str = "xuncha";
/// Tolerance for clock differences between app servers.
const LEEWAY_SECS: i64 = 5;
/// Tokens whose signature was checked, remembered (bounded: the memo starts over when full).
const MAX_VERIFIED: usize = 20_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    pub region: String,
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    validation: Validation,
    ttl_secs: u64,
    /// Token → its claims, for tokens whose signature, algorithm, key id and issuer passed.
    /// Those depend only on the token's bytes and this key, so a token seen before need not
    /// be decoded and its HMAC computed again (a caught-up pull spent ~15% of its time
    /// there). Expiry depends on the time and is checked on every use; revocation is the
    /// caller's, as before.
    verified: Mutex<HashMap<Box<str>, Arc<Claims>, foldhash::fast::RandomState>>,
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl_secs: u64) -> TokenKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        // Expiry is checked against the server's clock in `verify`, not the library's.
        validation.validate_exp = false;
        // The key id names the key without revealing it, so tokens signed with an older key
        // are refused cleanly after a key change.
        let kid = hex::encode(&Sha256::digest(secret)[..8]);
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            kid,
            validation,
            ttl_secs,
            verified: Mutex::default(),
        }
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    pub fn issue(
        &self,
        user_id: &str,
        role: &str,
        region: &str,
        sid: &str,
        now: i64,
    ) -> Result<String, ApiError> {
        let claims = Claims {
            sub: user_id.into(),
            role: role.into(),
            region: region.into(),
            sid: sid.into(),
            iat: now,
            exp: now + self.ttl_secs as i64,
            iss: ISSUER.into(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(ApiError::internal_from)
    }

    /// Signature, algorithm, key id, issuer, and expiry at `now` (Unix seconds). Revocation is
    /// checked by the caller.
    pub fn verify(&self, token: &str, now: i64) -> Result<Arc<Claims>, ApiError> {
        let known = self
            .verified
            .lock()
            .ok()
            .and_then(|m| m.get(token).cloned());
        let claims = match known {
            Some(c) => c,
            None => {
                let c = Arc::new(self.check_signed(token)?);
                if let Ok(mut m) = self.verified.lock() {
                    if m.len() >= MAX_VERIFIED {
                        m.clear();
                    }
                    m.insert(token.into(), c.clone());
                }
                c
            }
        };
        if claims.exp <= now - LEEWAY_SECS {
            return Err(ApiError::unauthorized(
                "token_expired",
                "the access token has expired; refresh it",
            ));
        }
        Ok(claims)
    }

    /// Everything about a token that does not change with time: its signature under this key,
    /// its algorithm, key id and issuer.
    fn check_signed(&self, token: &str) -> Result<Claims, ApiError> {
        let invalid = || ApiError::unauthorized("invalid_token", "the access token is not valid");
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        if header.alg != Algorithm::HS256 || header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(invalid());
        }
        Ok(
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
                .map_err(|_| invalid())?
                .claims,
        )
    }
}

/// 32 random bytes, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // getrandom fails only without an OS entropy source, where nothing secure can run.
    if let Err(e) = getrandom::fill(&mut bytes) {
        panic!("the operating system's random number generator failed: {e}");
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored for a refresh token: its SHA-256 (the token has 256 random bits, so a fast
/// hash is enough; a stolen table yields no usable tokens).
pub fn hash_refresh(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_token_still_expires_and_a_changed_one_is_checked_afresh() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", 600);
        let token = keys
            .issue("u1", "inspector", "110101", "s1", 1_000)
            .unwrap();
        assert_eq!(keys.verify(&token, 1_000).unwrap().sub, "u1");
        // Remembered now; the second answer is the same.
        assert_eq!(keys.verify(&token, 1_001).unwrap().sid, "s1");
        let expired = keys.verify(&token, 1_000 + 600 + LEEWAY_SECS).unwrap_err();
        assert!(format!("{expired:?}").contains("token_expired"));
        // One changed signature character: not the remembered token, and not valid.
        let mut forged = token.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        let err = keys.verify(&forged, 1_000).unwrap_err();
        assert!(format!("{err:?}").contains("invalid_token"));
        // Another key does not accept it, memo or not.
        let other = TokenKeys::new(b"another-key-another-key-another!", 600);
        assert!(other.verify(&token, 1_000).is_err());
    }
}
