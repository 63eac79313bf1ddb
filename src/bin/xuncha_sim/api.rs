//! The HTTP side: one shared client, a bound on requests in flight, latency recorded per
//! endpoint, and the simulated faults: a request aborted in flight (the connection drops; the
//! server may or may not have done the work) or an answer that never reaches the device.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

use super::stats::{Ep, Stats};

pub struct Api {
    pub client: Client,
    pub base: String,
    pub stats: Arc<Stats>,
    sem: Arc<Semaphore>,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `error.code` of a JSON error body ("-" when there is none).
    pub fn error_code(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
            .unwrap_or_else(|| "-".into())
    }

    pub fn json<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let head = String::from_utf8_lossy(&self.body[..self.body.len().min(200)]).into_owned();
            format!("unexpected body ({e}): {head}")
        })
    }
}

/// A simulated fault for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    None,
    /// The connection drops after this long (if the answer came sooner, it is lost).
    Abort(Duration),
    /// The server answers; the answer is lost on the way.
    LoseAnswer,
}

#[derive(Debug)]
pub enum Fail {
    /// The simulated fault happened: the device saw no answer.
    Dropped,
    /// A real transport failure (connect, timeout, broken body…): kind and message.
    Transport(&'static str, String),
}

impl Api {
    pub fn new(
        base: &str,
        concurrency: usize,
        gzip: bool,
        timeout: Duration,
        stats: Arc<Stats>,
    ) -> Result<Api, String> {
        let mut b = Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(concurrency.max(1))
            // Well under the server's keep-alive (`http_keep_alive_secs`, 75 s by default): a
            // connection the server is closing is not picked for a request (hyper would
            // answer "connection closed before message completed").
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            // Phones (OkHttp, URLSession) ask for gzip; brotli would cost the server more.
            .no_brotli();
        if !gzip {
            b = b.no_gzip();
        }
        let client = b.build().map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Api {
            client,
            base: base.trim_end_matches('/').to_string(),
            stats,
            sem: Arc::new(Semaphore::new(concurrency.max(1))),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request within the in-flight bound, reads the whole answer and records its
    /// latency under `ep`. HTTP error statuses are answers (the caller judges them); only
    /// transport failures and simulated faults are `Err`.
    pub async fn send(&self, ep: Ep, rb: RequestBuilder, fault: Fault) -> Result<Resp, Fail> {
        let _permit = self
            .sem
            .acquire()
            .await
            .map_err(|_| Fail::Transport("closed", "the request limiter was closed".into()))?;
        let start = Instant::now();
        let exchange = async {
            let r = rb.send().await?;
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body = r.bytes().await?;
            Ok::<_, reqwest::Error>(Resp {
                status,
                headers,
                body: Vec::from(body),
            })
        };
        let out = match fault {
            Fault::None => exchange.await,
            Fault::LoseAnswer => {
                return match exchange.await {
                    Ok(_) => {
                        self.stats.record(ep, start.elapsed());
                        Err(Fail::Dropped)
                    }
                    Err(e) => Err(Fail::Transport(transport_kind(&e), describe(e))),
                };
            }
            Fault::Abort(after) => {
                // Not timed: only the answers quicker than the abort would be.
                let _ = tokio::time::timeout(after, exchange).await;
                return Err(Fail::Dropped);
            }
        };
        match out {
            Ok(resp) => {
                // A quick 429 or 5xx is not service: it is counted as an error by the caller
                // and kept out of the latency figures.
                if resp.status != 429 && resp.status < 500 {
                    self.stats.record(ep, start.elapsed());
                }
                self.stats
                    .body_bytes
                    .fetch_add(resp.body.len() as u64, std::sync::atomic::Ordering::Relaxed);
                Ok(resp)
            }
            Err(e) => Err(Fail::Transport(transport_kind(&e), describe(e))),
        }
    }
}

/// The error and its causes, without the URL (a cursor makes it long).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

pub fn transport_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() {
        "body"
    } else if e.is_decode() {
        "decode"
    } else if e.is_request() {
        "request"
    } else {
        "other"
    }
}
