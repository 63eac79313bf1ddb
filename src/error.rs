//! The one error type of the API and its JSON envelope (contract):
//! `{"error": {"code": "snake_case", "message": "…", …}}` with the matching status.
//! Details for operators go to the log with `tracing`; clients get only safe text.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde_json::{Map, Value, json};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{message}")]
    NotFound { message: String },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        extra: Map<String, Value>,
    },
    #[error("{message}")]
    PayloadTooLarge { message: String },
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    #[error("{message}")]
    Validation {
        message: String,
        fields: BTreeMap<String, String>,
    },
    /// 422 with a code of its own and extra members (e.g. an import's per-row errors).
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        message: String,
        extra: Map<String, Value>,
    },
    #[error("{message}")]
    ProtocolTooOld { message: String },
    /// A status of a protocol of its own (tus: 410 Gone, 412, 423 Locked, 460 Checksum
    /// Mismatch), with the usual envelope.
    #[error("{message}")]
    Status {
        status: u16,
        code: &'static str,
        message: String,
    },
    #[error("too many attempts")]
    RateLimited { retry_after_secs: u64 },
    /// Storage unreachable or overloaded; the detail is logged, never sent.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; the detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unauthorized {
            code,
            message: message.into(),
        }
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::Forbidden {
            code: "forbidden",
            message: message.into(),
        }
    }
    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound {
            message: format!("{what} not found"),
        }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            code,
            message: message.into(),
            extra: Map::new(),
        }
    }
    /// 422 with one field named.
    pub fn invalid(field: &str, why: impl Into<String>) -> Self {
        let why = why.into();
        ApiError::Validation {
            message: format!("{field}: {why}"),
            fields: BTreeMap::from([(field.to_string(), why)]),
        }
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        ApiError::Unavailable(detail.into())
    }
    pub fn status(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Status {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        ApiError::Internal(detail.into())
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Unauthorized { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Unprocessable { code, .. }
            | ApiError::Status { code, .. } => code,
            ApiError::NotFound { .. } => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType { .. } => "unsupported_media_type",
            ApiError::Validation { .. } => "validation_failed",
            ApiError::ProtocolTooOld { .. } => "protocol_unsupported",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "storage_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// The text a client may see.
    fn public_message(&self) -> String {
        match self {
            ApiError::Unavailable(_) => {
                "storage (the database or the photo store) is unavailable; retry shortly"
                    .to_string()
            }
            ApiError::Internal(_) => "internal error".to_string(),
            ApiError::RateLimited { retry_after_secs } => {
                format!("too many failed attempts; retry after {retry_after_secs} s")
            }
            other => other.to_string(),
        }
    }

    /// The envelope body.
    pub fn body(&self) -> Value {
        let mut err = Map::new();
        err.insert("code".into(), json!(self.code()));
        err.insert("message".into(), json!(self.public_message()));
        match self {
            ApiError::Validation { fields, .. } => {
                err.insert("fields".into(), json!(fields));
            }
            ApiError::Conflict { extra, .. } | ApiError::Unprocessable { extra, .. } => {
                for (k, v) in extra {
                    err.insert(k.clone(), v.clone());
                }
            }
            _ => {}
        }
        json!({ "error": err })
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation { .. } | ApiError::Unprocessable { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::ProtocolTooOld { .. } => StatusCode::UPGRADE_REQUIRED,
            ApiError::Status { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Unavailable(detail) => tracing::warn!(error = %detail, "storage unavailable"),
            ApiError::Internal(detail) => tracing::error!(error = %detail, "internal error"),
            _ => {}
        }
        let mut resp = HttpResponse::build(self.status_code());
        match self {
            ApiError::RateLimited { retry_after_secs } => {
                resp.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            ApiError::Unavailable(_) => {
                resp.insert_header((header::RETRY_AFTER, "1"));
            }
            ApiError::Unauthorized { .. } => {
                resp.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            ApiError::Status {
                code: "tus_version",
                ..
            } => {
                // tus: a 412 names the versions this server speaks.
                resp.insert_header(("tus-version", crate::evidence::tus::VERSION));
            }
            ApiError::Status { status: 429, .. } => {
                resp.insert_header((header::RETRY_AFTER, "60"));
            }
            _ => {}
        }
        resp.insert_header((header::CACHE_CONTROL, "no-store"));
        resp.json(self.body())
    }
}

impl From<DieselError> for ApiError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => ApiError::NotFound {
                message: "not found".into(),
            },
            DieselError::DatabaseError(kind, info) => {
                let msg = info.message().to_string();
                match kind {
                    DatabaseErrorKind::UniqueViolation => {
                        tracing::debug!(error = %msg, "unique violation");
                        ApiError::conflict(
                            "already_exists",
                            "a record with that key already exists",
                        )
                    }
                    DatabaseErrorKind::ClosedConnection
                    | DatabaseErrorKind::SerializationFailure => ApiError::Unavailable(msg),
                    _ if is_busy(&msg) => ApiError::Unavailable(msg),
                    _ => ApiError::Internal(format!("{kind:?}: {msg}")),
                }
            }
            DieselError::BrokenTransactionManager => {
                ApiError::Unavailable("broken transaction manager".into())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// SQLite "database is locked"/"busy" after the busy timeout, or a lost PostgreSQL server.
fn is_busy(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("database is locked")
        || m.contains("database is busy")
        || m.contains("server closed the connection")
        || m.contains("terminating connection")
        || m.contains("connection to server")
        || m.contains("no connection to the server")
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An unexpected failure of something that should not fail (a blocking task, a codec).
    pub fn internal_from(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }
}
