//! Request and response types of the auth, user and device endpoints (never rows).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::queries::{DeviceRow, UserRow};
use crate::time::utc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    pub device_id: String,
    #[serde(default)]
    pub device_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub user: LoginUser,
}

#[derive(Debug, Serialize)]
pub struct LoginUser {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub region_code: String,
}

impl From<&UserRow> for LoginUser {
    fn from(u: &UserRow) -> Self {
        LoginUser {
            id: u.id.clone(),
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            role: u.role.clone(),
            region_code: u.region_code.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub display_name: String,
    pub role: String,
    pub region_code: String,
    #[serde(default)]
    pub unit_id: Option<String>,
    #[serde(default)]
    pub credential_no: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Required when changing one's own password.
    #[serde(default)]
    pub current_password: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default, deserialize_with = "crate::http::json::double_option")]
    pub credential_no: Option<Option<String>>,
}

#[derive(Debug, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub region_code: String,
    pub unit_id: Option<String>,
    pub credential_no: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl From<UserRow> for User {
    fn from(u: UserRow) -> Self {
        User {
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            role: u.role,
            region_code: u.region_code,
            unit_id: u.unit_id,
            credential_no: u.credential_no,
            active: u.active,
            created_at: utc(u.created_at),
            updated_at: utc(u.updated_at),
            version: u.version,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Device {
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub device_id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub active_sessions: i64,
}

impl Device {
    pub fn new(d: DeviceRow, user: &UserRow, active_sessions: i64) -> Device {
        Device {
            id: d.id,
            user_id: d.user_id,
            username: user.username.clone(),
            device_id: d.device_id,
            name: d.name,
            created_at: utc(d.created_at),
            last_seen_at: utc(d.last_seen_at),
            revoked_at: d.revoked_at.map(utc),
            active_sessions,
        }
    }
}
