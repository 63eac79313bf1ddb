//! Access tokens (HS256 JWT: `sub`, `role`, `region`, `sid`, short-lived) and refresh tokens
//! (random, stored only as SHA-256).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

const ISSUER: &str = "xuncha";
/// Tolerance for clock differences between app servers.
const LEEWAY_SECS: i64 = 5;

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
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, ApiError> {
        let invalid = || ApiError::unauthorized("invalid_token", "the access token is not valid");
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        if header.alg != Algorithm::HS256 || header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(invalid());
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| invalid())?
            .claims;
        if claims.exp <= now - LEEWAY_SECS {
            return Err(ApiError::unauthorized(
                "token_expired",
                "the access token has expired; refresh it",
            ));
        }
        Ok(claims)
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
