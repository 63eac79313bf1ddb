//! The authenticated caller: a valid access token whose device session is live and whose user
//! is active. The session is read by primary key (one indexed read, joined with the user the
//! handler needs anyway) unless [`SessionCache`](super::cache::SessionCache) holds it; a
//! revocation makes every cached entry stale at once on the server that made it.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use super::queries::{self, UserRow};
use super::region::{RegionCode, Role};
use crate::app::AppState;
use crate::error::ApiError;

#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub region: RegionCode,
    pub unit_id: Option<String>,
    pub session_id: String,
    pub device_pk: String,
    /// The user's row as loaded with the session (so `/me` needs no second query).
    pub row: std::sync::Arc<UserRow>,
}

impl AuthUser {
    pub fn is(&self, role: Role) -> bool {
        self.role == role
    }
}

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing_token", "an access token is required"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("invalid_token", "the access token is not valid"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_string())
        }
        _ => Err(ApiError::unauthorized(
            "invalid_token",
            "use the Authorization header `Bearer <access token>`",
        )),
    }
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<AuthUser, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("app state missing"))?;
            let now = state.clock.now();
            let claims = state.tokens.verify(&token?, now.and_utc().timestamp())?;
            let epoch = state.db.watch().auth_epoch();
            if let Some(user) = state.sessions.get(&claims.sid, now, epoch) {
                if user.id != claims.sub {
                    return Err(ApiError::unauthorized(
                        "invalid_token",
                        "the access token is not valid",
                    ));
                }
                tracing::Span::current().record("user", user.id.as_str());
                return Ok(AuthUser::clone(&user));
            }
            let sid = claims.sid.clone();
            let found = state
                .db
                .run(move |conn| Ok(queries::live_session(conn, &sid, now)?))
                .await?;
            let (session, user) = found.ok_or_else(|| {
                ApiError::unauthorized("session_revoked", "this session has ended; log in again")
            })?;
            if user.id != claims.sub {
                return Err(ApiError::unauthorized(
                    "invalid_token",
                    "the access token is not valid",
                ));
            }
            let role = Role::parse(&user.role)
                .ok_or_else(|| ApiError::internal(format!("user {} has unknown role", user.id)))?;
            let region = RegionCode::parse(&user.region_code)
                .map_err(|_| ApiError::internal(format!("user {} has a bad region", user.id)))?;
            tracing::Span::current().record("user", user.id.as_str());
            let me = AuthUser {
                id: user.id.clone(),
                username: user.username.clone(),
                role,
                region,
                unit_id: user.unit_id.clone(),
                session_id: session.id,
                device_pk: session.device_pk,
                row: std::sync::Arc::new(user),
            };
            state
                .sessions
                .put(std::sync::Arc::new(me.clone()), session.expires_at, epoch);
            Ok(me)
        })
    }
}
