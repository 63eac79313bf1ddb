//! argon2id password hashing. Hashing is CPU- and memory-heavy by design, so it runs on the
//! blocking pool, never on an async worker, and at most `argon2_max_concurrent` at once
//! (each one holds `argon2_memory_kib`). Unknown users are verified against a dummy hash so
//! that the answer takes the same time whether the account exists or not.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::error::ApiError;

pub const MIN_LEN: usize = 10;
pub const MAX_LEN: usize = 256;

/// Passwords: 10 to 256 characters.
pub fn check_policy(pw: &str) -> Result<(), String> {
    let n = pw.chars().count();
    if n < MIN_LEN {
        return Err(format!("must be at least {MIN_LEN} characters"));
    }
    if n > MAX_LEN {
        return Err(format!("must be at most {MAX_LEN} characters"));
    }
    Ok(())
}

pub struct Hasher {
    argon: Argon2<'static>,
    permits: Arc<Semaphore>,
    dummy: String,
}

impl Hasher {
    pub fn new(cfg: &Config) -> Result<Hasher, String> {
        let params = Params::new(
            cfg.argon2_memory_kib,
            cfg.argon2_iterations,
            cfg.argon2_parallelism,
            None,
        )
        .map_err(|e| format!("argon2 parameters: {e}"))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let permits = match cfg.argon2_max_concurrent {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let mut h = Hasher {
            argon,
            permits: Arc::new(Semaphore::new(permits)),
            dummy: String::new(),
        };
        h.dummy = h.hash_blocking(&crate::auth::tokens::random_token())?;
        Ok(h)
    }

    /// PHC string of `pw`. Blocking.
    pub fn hash_blocking(&self, pw: &str) -> Result<String, String> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| format!("no randomness: {e}"))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
        self.argon
            .hash_password(pw.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| format!("argon2: {e}"))
    }

    /// Does `pw` match `phc`? With `None` (no such user) checks against the dummy hash and
    /// answers false, taking the same time. Blocking.
    pub fn verify_blocking(&self, pw: &str, phc: Option<&str>) -> bool {
        let target = phc.unwrap_or(&self.dummy);
        let ok = match PasswordHash::new(target) {
            Ok(parsed) => self.argon.verify_password(pw.as_bytes(), &parsed).is_ok(),
            Err(_) => {
                tracing::error!("stored password hash is not a valid PHC string");
                false
            }
        };
        ok && phc.is_some()
    }

    pub async fn hash(self: &Arc<Self>, pw: String) -> Result<String, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(ApiError::internal_from)?;
        let me = self.clone();
        actix_web::web::block(move || me.hash_blocking(&pw))
            .await
            .map_err(ApiError::internal_from)?
            .map_err(ApiError::internal)
    }

    pub async fn verify(
        self: &Arc<Self>,
        pw: String,
        phc: Option<String>,
    ) -> Result<bool, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(ApiError::internal_from)?;
        let me = self.clone();
        actix_web::web::block(move || me.verify_blocking(&pw, phc.as_deref()))
            .await
            .map_err(ApiError::internal_from)
    }
}
