//! A few dedicated threads for photo processing. Decoding a 12 MP photo allocates tens of
//! megabytes; on the shared blocking pool every thread that ever did it kept its own malloc
//! arena full of freed buffers (16 parallel uploads peaked at ~285 MB). Here the same few
//! threads do all of it, so the peak stays at a few photos' worth.

use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};

use crate::error::ApiError;

type Job = Box<dyn FnOnce() + Send>;

pub struct IngestPool {
    jobs: Mutex<Sender<Job>>,
}

impl IngestPool {
    /// `threads` workers; they end when the pool is dropped.
    pub fn new(threads: usize) -> IngestPool {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("xuncha-ingest-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a photo-processing thread");
            }
        }
        IngestPool {
            jobs: Mutex::new(tx),
        }
    }

    /// Runs `f` on a pool thread and waits for it without blocking the caller's thread.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(out);
        });
        self.jobs
            .lock()
            .map_err(|_| ApiError::internal("photo pool lock poisoned"))?
            .send(job)
            .map_err(|_| ApiError::internal("photo pool stopped"))?;
        match rx.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(ApiError::internal("photo processing panicked")),
            Err(_) => Err(ApiError::internal("photo pool stopped")),
        }
    }
}
