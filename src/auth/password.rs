//! argon2id password hashing. Hashing is CPU- and memory-heavy by design, so it runs on the
//! blocking pool, never on an async worker, and at most `argon2_max_concurrent` at once
//! (each one holds `argon2_memory_kib`). Unknown users are verified against a dummy hash so
//! that the answer takes the same time whether the account exists or not.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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
    params: Params,
    permits: Arc<Semaphore>,
    /// Argon2 working memory (`argon2_memory_kib` each), kept for the next hash. Without it
    /// every login allocated and freed 19 MiB; glibc's malloc then raised its mmap threshold
    /// and kept those blocks in per-thread arenas: a server that had let 650 devices log in
    /// held 4 GB it never gave back (measured with the device simulator). At most as many
    /// buffers as hashes ever ran at once (`argon2_max_concurrent` through the async API),
    /// and only while hashes keep coming: the last one of a burst frees them all.
    memory: Mutex<Vec<Vec<Block>>>,
    /// Hashes asked for through the async API and not finished (waiting or running).
    demand: AtomicUsize,
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
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let permits = match cfg.argon2_max_concurrent {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let mut h = Hasher {
            argon,
            params,
            permits: Arc::new(Semaphore::new(permits)),
            memory: Mutex::default(),
            demand: AtomicUsize::new(0),
            dummy: String::new(),
        };
        h.dummy = h.hash_blocking(&crate::auth::tokens::random_token())?;
        Ok(h)
    }

    /// Runs `f` with `blocks` blocks of working memory from the pool (grown when needed).
    fn with_memory<R>(&self, blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
        let mut mem = self
            .memory
            .lock()
            .map(|mut pool| pool.pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        if mem.len() < blocks {
            mem.resize(blocks, Block::default());
        }
        let out = f(&mut mem[..blocks]);
        // Kept for the next hash while async hashes are in flight (the last of them to end
        // frees the pool: `Demand`); a hash outside them (start-up, the CLI) keeps nothing.
        if self.demand.load(Ordering::Acquire) > 0
            && let Ok(mut pool) = self.memory.lock()
        {
            pool.push(mem);
        }
        out
    }

    /// PHC string of `pw`. Blocking.
    pub fn hash_blocking(&self, pw: &str) -> Result<String, String> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| format!("no randomness: {e}"))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
        let mut salt_bytes = [0u8; 16];
        let raw_salt = salt
            .decode_b64(&mut salt_bytes)
            .map_err(|e| format!("salt: {e}"))?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        self.with_memory(self.params.block_count(), |mem| {
            self.argon
                .hash_password_into_with_memory(pw.as_bytes(), raw_salt, &mut out, mem)
        })
        .map_err(|e| format!("argon2: {e}"))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(|e| format!("argon2: {e}"))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| format!("argon2: {e}"))?),
        };
        Ok(phc.to_string())
    }

    /// Does `pw` match `phc`? With `None` (no such user) checks against the dummy hash and
    /// answers false, taking the same time. Blocking.
    pub fn verify_blocking(&self, pw: &str, phc: Option<&str>) -> bool {
        let target = phc.unwrap_or(&self.dummy);
        let ok = match PasswordHash::new(target) {
            Ok(parsed) => self.matches(pw.as_bytes(), &parsed).unwrap_or_else(|e| {
                tracing::error!("stored password hash cannot be checked: {e}");
                false
            }),
            Err(_) => {
                tracing::error!("stored password hash is not a valid PHC string");
                false
            }
        };
        ok && phc.is_some()
    }

    /// `pw` hashed with the algorithm, version, parameters and salt of `phc`, compared with
    /// its hash in constant time (what `PasswordVerifier` does, on pooled memory).
    fn matches(&self, pw: &[u8], phc: &PasswordHash<'_>) -> Result<bool, String> {
        let algorithm = Algorithm::try_from(phc.algorithm).map_err(|e| e.to_string())?;
        let version = match phc.version {
            Some(v) => Version::try_from(v).map_err(|e| e.to_string())?,
            None => Version::default(),
        };
        let params = Params::try_from(phc).map_err(|e| e.to_string())?;
        let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
            return Err("no salt or no hash".into());
        };
        let mut salt_buf = [0u8; 64];
        let salt = salt.decode_b64(&mut salt_buf).map_err(|e| e.to_string())?;
        let argon = Argon2::new(algorithm, version, params.clone());
        let mut out = vec![0u8; expected.len()];
        self.with_memory(params.block_count(), |mem| {
            argon.hash_password_into_with_memory(pw, salt, &mut out, mem)
        })
        .map_err(|e| e.to_string())?;
        // `Output`'s equality is constant-time.
        Ok(Output::new(&out).map_err(|e| e.to_string())? == expected)
    }

    pub async fn hash(self: &Arc<Self>, pw: String) -> Result<String, ApiError> {
        let _demand = Demand::new(self);
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
        let _demand = Demand::new(self);
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

/// Counts one async hash from its request to its end, however it ends (a dropped future
/// too). The last one to end frees the pooled working memory: the burst is over.
struct Demand<'a>(&'a Hasher);

impl<'a> Demand<'a> {
    fn new(h: &'a Hasher) -> Demand<'a> {
        h.demand.fetch_add(1, Ordering::AcqRel);
        Demand(h)
    }
}

impl Drop for Demand<'_> {
    fn drop(&mut self) {
        if self.0.demand.fetch_sub(1, Ordering::AcqRel) == 1
            && let Ok(mut pool) = self.0.memory.lock()
        {
            pool.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHasher;

    fn small() -> Hasher {
        let cfg = Config {
            argon2_memory_kib: 4096,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            argon2_max_concurrent: 2,
            ..Config::default()
        };
        Hasher::new(&cfg).unwrap()
    }

    #[test]
    fn pooled_hashes_are_standard_phc_strings() {
        let h = small();
        let phc = h.hash_blocking("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=4096,t=1,p=1$"), "{phc}");
        assert!(h.verify_blocking("correct horse battery", Some(&phc)));
        assert!(!h.verify_blocking("correct horse batterz", Some(&phc)));
        // The stock verifier agrees with what the pooled path wrote.
        let parsed = PasswordHash::new(&phc).unwrap();
        use argon2::password_hash::PasswordVerifier;
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        // Unknown users never match, whatever the password.
        assert!(!h.verify_blocking("anything at all", None));
    }

    #[test]
    fn hashes_written_by_the_stock_hasher_with_other_settings_verify() {
        let h = small();
        for (m, t, p) in [(8192, 2, 1), (1024, 3, 2)] {
            let params = Params::new(m, t, p, None).unwrap();
            let stock = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
            let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
            let phc = stock
                .hash_password(b"an older password", &salt)
                .unwrap()
                .to_string();
            assert!(h.verify_blocking("an older password", Some(&phc)), "{phc}");
            assert!(!h.verify_blocking("an older passworD", Some(&phc)), "{phc}");
        }
        // Used one at a time, nothing is kept between hashes.
        assert!(h.memory.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_burst_frees_its_memory_at_the_end() {
        let h = Arc::new(small());
        let phc = h.hash_blocking("correct horse battery").unwrap();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (h, phc) = (h.clone(), phc.clone());
            tasks.push(tokio::spawn(async move {
                let pw = if i % 2 == 0 {
                    "correct horse battery"
                } else {
                    "wrong horse battery"
                };
                h.verify(pw.into(), Some(phc)).await.unwrap() == (i % 2 == 0)
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap());
        }
        assert_eq!(h.demand.load(Ordering::Acquire), 0);
        assert!(h.memory.lock().unwrap().is_empty());
    }

    #[test]
    fn a_damaged_stored_hash_never_matches() {
        let h = small();
        let phc = h.hash_blocking("correct horse battery").unwrap();
        let cut = &phc[..phc.len() - 4];
        assert!(!h.verify_blocking("correct horse battery", Some(cut)));
        assert!(!h.verify_blocking(
            "correct horse battery",
            Some("$argon2id$v=19$m=4096,t=1,p=1$")
        ));
        assert!(!h.verify_blocking("correct horse battery", Some("plaintext")));
    }
}
