//! Login, tokens, refresh rotation and reuse detection, logout, throttling, revocation.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{ADMIN_PASSWORD, Backend, PASSWORD, SIGNING_KEY, TestApp};

crate::both_backends!(
    login_then_me_round_trip,
    wrong_password_and_unknown_user_look_the_same,
    bad_tokens_are_refused,
    refresh_rotates_and_reuse_revokes_the_session,
    logout_ends_the_session,
    managers_revoke_devices_in_their_region_only,
    deactivated_users_are_cut_off,
    password_change_needs_the_current_one_and_ends_sessions,
    access_tokens_expire_and_refresh_brings_a_new_one,
    sessions_slide_with_use_and_end_when_idle,
    spent_refresh_tokens_are_pruned_after_a_week,
);

crate::both_backends_raw!(
    failed_logins_are_throttled_per_account,
    failed_logins_are_throttled_per_address,
    current_password_guesses_are_throttled,
    lockouts_end_and_stale_counters_are_forgotten,
);

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("jwt payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

fn sign(claims: &Value, key: &str, kid: Option<String>) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid;
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key.as_bytes())).expect("sign")
}

fn our_kid() -> String {
    hex::encode(&Sha256::digest(SIGNING_KEY.as_bytes())[..8])
}

async fn login_then_me_round_trip(app: TestApp) {
    let pair = app.login_ok("admin", ADMIN_PASSWORD, "phone-1").await;
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    assert_eq!(pair["user"]["username"], "admin");
    assert_eq!(pair["user"]["role"], "admin");
    let token = pair["access_token"].as_str().unwrap();
    let claims = claims_of(token);
    assert_eq!(claims["role"], "admin");
    assert_eq!(claims["sub"], pair["user"]["id"]);
    assert!(claims["sid"].is_string());
    let exp = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(exp, 900);

    let me = app.get("/api/v1/me", token).await;
    me.expect(200);
    assert_eq!(me.body["id"], pair["user"]["id"]);
    assert_eq!(me.body["region_code"], "000000");
    assert!(me.body["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(me.body.get("password").is_none() && me.body.get("password_hash").is_none());

    // Usernames are case-insensitive.
    app.login("ADMIN", ADMIN_PASSWORD, "phone-2")
        .await
        .expect(200);
}

async fn wrong_password_and_unknown_user_look_the_same(app: TestApp) {
    let a = app.login("admin", "not-the-password", "d").await;
    a.expect_error(401, "invalid_credentials");
    let b = app.login("nobody-here", "not-the-password", "d").await;
    b.expect_error(401, "invalid_credentials");
    assert_eq!(a.body, b.body);
    // A username with a NUL, which PostgreSQL refuses in a query (it was a 500 there).
    let c = app.login("admin\u{0}", "not-the-password", "d").await;
    c.expect_error(401, "invalid_credentials");
    assert_eq!(a.body, c.body);
    // Missing device id is a validation error, not a login failure.
    let r = app
        .req(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD, "device_id": " "})),
        )
        .await;
    r.expect_error(422, "validation_failed");
    assert!(r.body["error"]["fields"]["device_id"].is_string());
}

async fn failed_logins_are_throttled_per_account(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.login_max_failures_per_account = 3).await;
    let admin = app.admin_token().await;
    app.create_user(&admin, "victim", "inspector", "330106")
        .await;
    app.create_user(&admin, "bystander", "inspector", "330106")
        .await;
    for _ in 0..3 {
        app.login("victim", "wrong-password!", "d")
            .await
            .expect_error(401, "invalid_credentials");
    }
    // Locked now: even the right password is refused until the lockout ends.
    let r = app.login("victim", PASSWORD, "d").await;
    r.expect_error(429, "rate_limited");
    let wait: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=300).contains(&wait), "{wait}");
    // Another account from the same address is not affected.
    app.login("bystander", PASSWORD, "d").await.expect(200);
}

async fn failed_logins_are_throttled_per_address(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.login_max_failures_per_account = 100;
        c.login_max_failures_per_address = 4;
    })
    .await;
    for i in 0..4 {
        app.login(&format!("guess{i}"), "wrong-password!", "d")
            .await
            .expect(401);
    }
    let r = app.login("admin", ADMIN_PASSWORD, "d").await;
    r.expect_error(429, "rate_limited");
    assert!(r.header("retry-after").is_some());
}

async fn bad_tokens_are_refused(app: TestApp) {
    let pair = app.login_ok("admin", ADMIN_PASSWORD, "d").await;
    let good = pair["access_token"].as_str().unwrap();
    let claims = claims_of(good);
    app.get("/api/v1/me", good).await.expect(200);

    // No token, garbage, wrong scheme.
    let r = app.req(Method::GET, "/api/v1/me", None, None).await;
    r.expect_error(401, "missing_token");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    app.get("/api/v1/me", "not.a.jwt")
        .await
        .expect_error(401, "invalid_token");
    let basic = app
        .client
        .get(format!("{}/api/v1/me", app.base))
        .header("authorization", "Basic YWRtaW46eA==");
    app.send(Method::GET, "/api/v1/me", basic)
        .await
        .expect_error(401, "invalid_token");

    // Re-signing the same claims with our key works (so the forgeries below are refused for
    // the reason each one tests, not because the forging is broken).
    let resigned = sign(&claims, SIGNING_KEY, Some(our_kid()));
    app.get("/api/v1/me", &resigned).await.expect(200);

    // Expired.
    let mut old = claims.clone();
    old["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
    old["iat"] = json!(chrono::Utc::now().timestamp() - 7200);
    app.get("/api/v1/me", &sign(&old, SIGNING_KEY, Some(our_kid())))
        .await
        .expect_error(401, "token_expired");
    // Another key; a forged kid; no kid.
    let other = "another-signing-key-0123456789abcdef012345";
    app.get("/api/v1/me", &sign(&claims, other, Some(our_kid())))
        .await
        .expect_error(401, "invalid_token");
    app.get(
        "/api/v1/me",
        &sign(&claims, SIGNING_KEY, Some("deadbeefdeadbeef".into())),
    )
    .await
    .expect_error(401, "invalid_token");
    app.get("/api/v1/me", &sign(&claims, SIGNING_KEY, None))
        .await
        .expect_error(401, "invalid_token");
    // alg: none.
    let none_header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": our_kid()}).to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    app.get("/api/v1/me", &format!("{none_header}.{body}."))
        .await
        .expect_error(401, "invalid_token");
    // HS384 with the right key is still not our algorithm.
    let mut h = Header::new(Algorithm::HS384);
    h.kid = Some(our_kid());
    let hs384 = jsonwebtoken::encode(
        &h,
        &claims,
        &EncodingKey::from_secret(SIGNING_KEY.as_bytes()),
    )
    .unwrap();
    app.get("/api/v1/me", &hs384)
        .await
        .expect_error(401, "invalid_token");
    // A valid signature over another user's id with this session is refused.
    let mut swapped = claims.clone();
    swapped["sub"] = json!(uuid::Uuid::new_v4().to_string());
    app.get("/api/v1/me", &sign(&swapped, SIGNING_KEY, Some(our_kid())))
        .await
        .expect_error(401, "invalid_token");
    // A session id that does not exist.
    let mut ghost = claims.clone();
    ghost["sid"] = json!(uuid::Uuid::new_v4().to_string());
    app.get("/api/v1/me", &sign(&ghost, SIGNING_KEY, Some(our_kid())))
        .await
        .expect_error(401, "session_revoked");
}

async fn refresh_rotates_and_reuse_revokes_the_session(app: TestApp) {
    let first = app.login_ok("admin", ADMIN_PASSWORD, "phone").await;
    let r1 = first["refresh_token"].as_str().unwrap().to_string();
    let refresh = |t: &str| {
        app.req(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": t})),
        )
    };
    let second = refresh(&r1).await;
    second.expect(200);
    assert_eq!(second.header("cache-control"), Some("no-store"));
    let r2 = second.body["refresh_token"].as_str().unwrap().to_string();
    let a2 = second.body["access_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    assert_eq!(
        claims_of(&a2)["sid"],
        claims_of(first["access_token"].as_str().unwrap())["sid"]
    );
    app.get("/api/v1/me", &a2).await.expect(200);

    // r1 again: someone copied it. The whole session ends, including r2 and its access token.
    refresh(&r1).await.expect_error(401, "refresh_token_reused");
    refresh(&r2).await.expect_error(401, "session_revoked");
    app.get("/api/v1/me", &a2)
        .await
        .expect_error(401, "session_revoked");
    refresh("made-up-token")
        .await
        .expect_error(401, "invalid_refresh_token");

    // Other sessions of the same user are untouched.
    let other = app.login_ok("admin", ADMIN_PASSWORD, "tablet").await;
    refresh(other["refresh_token"].as_str().unwrap())
        .await
        .expect(200);
}

async fn logout_ends_the_session(app: TestApp) {
    let pair = app.login_ok("admin", ADMIN_PASSWORD, "phone").await;
    let token = pair["access_token"].as_str().unwrap();
    let keep = app.admin_token().await;
    let r = app
        .req(Method::POST, "/api/v1/auth/logout", Some(token), None)
        .await;
    r.expect(204);
    app.get("/api/v1/me", token)
        .await
        .expect_error(401, "session_revoked");
    app.req(
        Method::POST,
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": pair["refresh_token"]})),
    )
    .await
    .expect_error(401, "session_revoked");
    app.get("/api/v1/me", &keep).await.expect(200);
}

async fn managers_revoke_devices_in_their_region_only(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_user(&admin, "mgr-a", "manager", "330106").await;
    app.create_user(&admin, "mgr-b", "manager", "330105").await;
    let inspector = app
        .create_user(&admin, "insp-a", "inspector", "330106")
        .await;
    let mgr_a = app.token("mgr-a", PASSWORD).await;
    let mgr_b = app.token("mgr-b", PASSWORD).await;
    let phone = app.login_ok("insp-a", PASSWORD, "lost-phone").await;
    let phone_token = phone["access_token"].as_str().unwrap();
    let iid = inspector["id"].as_str().unwrap();

    let list = app
        .get(&format!("/api/v1/devices?user_id={iid}"), &mgr_a)
        .await;
    list.expect(200);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", list.text);
    assert_eq!(items[0]["device_id"], "lost-phone");
    assert_eq!(items[0]["active_sessions"], 1);
    let device = items[0]["id"].as_str().unwrap().to_string();

    // The other district's manager neither sees nor revokes it.
    let other = app
        .get(&format!("/api/v1/devices?user_id={iid}"), &mgr_b)
        .await;
    other.expect(200);
    assert_eq!(other.body["items"].as_array().unwrap().len(), 0);
    app.post(
        &format!("/api/v1/devices/{device}/revoke"),
        &mgr_b,
        json!({}),
    )
    .await
    .expect_error(404, "not_found");
    app.get("/api/v1/me", phone_token).await.expect(200);

    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/devices/{device}/revoke"),
            Some(&mgr_a),
            None,
        )
        .await;
    r.expect(200);
    assert!(r.body["revoked_at"].is_string());
    assert_eq!(r.body["active_sessions"], 0);
    app.get("/api/v1/me", phone_token)
        .await
        .expect_error(401, "session_revoked");
    app.req(
        Method::POST,
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": phone["refresh_token"]})),
    )
    .await
    .expect_error(401, "session_revoked");
    // The inspector can sign in again with the password.
    app.login("insp-a", PASSWORD, "lost-phone")
        .await
        .expect(200);
    // An inspector sees only its own devices, whatever it asks for.
    let insp = app.token("insp-a", PASSWORD).await;
    let mine = app.get("/api/v1/devices", &insp).await;
    mine.expect(200);
    assert!(
        mine.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["user_id"] == iid)
    );
    app.post(
        &format!("/api/v1/devices/{}/revoke", uuid::Uuid::new_v4()),
        &mgr_a,
        json!({}),
    )
    .await
    .expect_error(404, "not_found");
}

async fn deactivated_users_are_cut_off(app: TestApp) {
    let (user, token) = app.user_with_token("leaver", "inspector", "330106").await;
    let admin = app.admin_token().await;
    let id = user["id"].as_str().unwrap();
    let r = app
        .patch(
            &format!("/api/v1/users/{id}"),
            &admin,
            json!({"active": false}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["active"], false);
    app.get("/api/v1/me", &token)
        .await
        .expect_error(401, "session_revoked");
    app.login("leaver", PASSWORD, "d")
        .await
        .expect_error(401, "invalid_credentials");
    app.patch(
        &format!("/api/v1/users/{id}"),
        &admin,
        json!({"active": true}),
    )
    .await
    .expect(200);
    app.login("leaver", PASSWORD, "d").await.expect(200);
}

async fn password_change_needs_the_current_one_and_ends_sessions(app: TestApp) {
    let (user, token) = app.user_with_token("changer", "inspector", "330106").await;
    let path = format!("/api/v1/users/{}", user["id"].as_str().unwrap());
    let r = app
        .patch(&path, &token, json!({"password": "a-new-password-1"}))
        .await;
    r.expect_error(422, "validation_failed");
    assert!(r.body["error"]["fields"]["current_password"].is_string());
    app.patch(
        &path,
        &token,
        json!({"password": "a-new-password-1", "current_password": "wrong-one-123"}),
    )
    .await
    .expect_error(422, "validation_failed");
    app.patch(
        &path,
        &token,
        json!({"password": "short", "current_password": PASSWORD}),
    )
    .await
    .expect_error(422, "validation_failed");
    app.patch(
        &path,
        &token,
        json!({"password": "a-new-password-1", "current_password": PASSWORD}),
    )
    .await
    .expect(200);
    app.get("/api/v1/me", &token)
        .await
        .expect_error(401, "session_revoked");
    app.login("changer", PASSWORD, "d")
        .await
        .expect_error(401, "invalid_credentials");
    app.login("changer", "a-new-password-1", "d")
        .await
        .expect(200);
    // Only managers and admins change `active`.
    let t = app.token("changer", "a-new-password-1").await;
    app.patch(&path, &t, json!({"active": false}))
        .await
        .expect_error(403, "forbidden");
}

/// Guessing the current password through PATCH counts against the account like logins do.
async fn current_password_guesses_are_throttled(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.login_max_failures_per_account = 2).await;
    let (user, token) = app.user_with_token("guessed", "inspector", "330106").await;
    let path = format!("/api/v1/users/{}", user["id"].as_str().unwrap());
    for _ in 0..2 {
        app.patch(
            &path,
            &token,
            json!({"password": "a-new-password-1", "current_password": "wrong-guess-12"}),
        )
        .await
        .expect_error(422, "validation_failed");
    }
    app.patch(
        &path,
        &token,
        json!({"password": "a-new-password-1", "current_password": PASSWORD}),
    )
    .await
    .expect_error(429, "rate_limited");
    app.login("guessed", PASSWORD, "d")
        .await
        .expect_error(429, "rate_limited");
}

/// Time-dependent rules, with the server's clock moved forward instead of waiting.
async fn access_tokens_expire_and_refresh_brings_a_new_one(app: TestApp) {
    let pair = app.login_ok("admin", ADMIN_PASSWORD, "phone").await;
    let token = pair["access_token"].as_str().unwrap();
    app.clock.advance(chrono::Duration::minutes(14));
    app.get("/api/v1/me", token).await.expect(200);
    app.clock.advance(chrono::Duration::minutes(2));
    app.get("/api/v1/me", token)
        .await
        .expect_error(401, "token_expired");
    let fresh = app
        .req(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": pair["refresh_token"]})),
        )
        .await;
    fresh.expect(200);
    app.get("/api/v1/me", fresh.body["access_token"].as_str().unwrap())
        .await
        .expect(200);
}

async fn sessions_slide_with_use_and_end_when_idle(app: TestApp) {
    let pair = app.login_ok("admin", ADMIN_PASSWORD, "phone").await;
    let refresh = |t: Value| {
        app.req(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": t})),
        )
    };
    // Used every 20 days, the session lives on past 30 days from login.
    app.clock.advance(chrono::Duration::days(20));
    let second = refresh(pair["refresh_token"].clone()).await;
    second.expect(200);
    app.clock.advance(chrono::Duration::days(20));
    let third = refresh(second.body["refresh_token"].clone()).await;
    third.expect(200);
    // Idle for 31 days: over.
    app.clock.advance(chrono::Duration::days(31));
    refresh(third.body["refresh_token"].clone())
        .await
        .expect_error(401, "session_revoked");
}

async fn spent_refresh_tokens_are_pruned_after_a_week(app: TestApp) {
    let mut pair = app.login_ok("admin", ADMIN_PASSWORD, "phone").await;
    for _ in 0..4 {
        let r = app
            .req(
                Method::POST,
                "/api/v1/auth/refresh",
                None,
                Some(json!({"refresh_token": pair["refresh_token"]})),
            )
            .await;
        r.expect(200);
        pair = r.body;
    }
    let sid = claims_of(pair["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let count = format!("SELECT COUNT(*) AS n FROM refresh_tokens WHERE session_id = '{sid}'");
    let mut db = crate::common::Direct::open(&app);
    assert_eq!(db.count(&count), 5);
    app.clock.advance(chrono::Duration::days(8));
    let r = app
        .req(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": pair["refresh_token"]})),
        )
        .await;
    r.expect(200);
    // The 4 spent more than 7 days ago are gone; the one just spent and the new one remain.
    assert_eq!(db.count(&count), 2);
}

async fn lockouts_end_and_stale_counters_are_forgotten(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.login_max_failures_per_account = 2).await;
    for _ in 0..2 {
        app.login("admin", "wrong-password!", "d").await.expect(401);
    }
    app.login("admin", ADMIN_PASSWORD, "d")
        .await
        .expect_error(429, "rate_limited");
    app.clock.advance(chrono::Duration::seconds(301));
    app.login("admin", ADMIN_PASSWORD, "d").await.expect(200);

    // Guesses at made-up usernames leave counters that vanish once their window is over.
    for i in 0..5 {
        app.login(&format!("ghost{i}"), "wrong-password!", "d")
            .await
            .expect(401);
    }
    let mut db = crate::common::Direct::open(&app);
    let rows = "SELECT COUNT(*) AS n FROM login_throttle";
    assert!(db.count(rows) >= 5);
    app.clock.advance(chrono::Duration::minutes(16));
    app.login("ghost-last", "wrong-password!", "d")
        .await
        .expect(401);
    // Left: the new account counter and the address counter.
    assert_eq!(db.count(rows), 2);
}
