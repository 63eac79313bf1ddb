//! HTTP behaviour shared by every route: health probes, the error envelope everywhere,
//! request body limits and JSON errors, query errors, compression, request ids.

use std::io::{Read, Write};

use reqwest::Method;
use serde_json::json;

use crate::common::{ADMIN_PASSWORD, TestApp};

crate::both_backends!(
    health_and_readiness,
    unknown_routes_and_methods_answer_in_the_envelope,
    bad_bodies_get_the_right_status,
    oversized_bodies_are_refused,
    query_errors_use_the_envelope,
    only_bodies_worth_it_are_compressed,
    request_ids_are_echoed_or_made,
);

async fn health_and_readiness(app: TestApp) {
    let r = app.req(Method::GET, "/healthz", None, None).await;
    r.expect(200);
    assert_eq!(r.body["status"], "ok");
    let r = app.req(Method::GET, "/readyz", None, None).await;
    r.expect(200);
    let engine = match app.backend {
        crate::common::Backend::Sqlite => "sqlite",
        crate::common::Backend::Postgres => "postgres",
    };
    assert_eq!(r.body["database"], engine);
}

async fn unknown_routes_and_methods_answer_in_the_envelope(app: TestApp) {
    let r = app
        .req(Method::GET, "/api/v1/nothing-here", None, None)
        .await;
    r.expect_error(404, "not_found");
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let r = app.req(Method::DELETE, "/api/v1/me", None, None).await;
    r.expect_error(405, "method_not_allowed");
    // A 405 names the methods the path has (RFC 9110).
    assert_eq!(r.header("allow"), Some("GET"));
    let r = app.req(Method::PUT, "/healthz", None, None).await;
    r.expect_error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET"));
    let r = app
        .req(Method::PUT, "/api/v1/units/not-an-id", None, None)
        .await;
    r.expect_error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, PATCH"));
}

async fn bad_bodies_get_the_right_status(app: TestApp) {
    let url = format!("{}/api/v1/auth/login", app.base);
    let post = |body: &'static str, ct: &'static str| {
        app.client.post(&url).header("content-type", ct).body(body)
    };
    let login = "/api/v1/auth/login";
    app.send(
        Method::POST,
        login,
        post("{\"username\": ", "application/json"),
    )
    .await
    .expect_error(400, "malformed_json");
    app.send(Method::POST, login, post("", "application/json"))
        .await
        .expect_error(400, "malformed_json");
    app.send(Method::POST, login, post("[1,2]", "application/json"))
        .await
        .expect_error(422, "validation_failed");
    // serde_json fills a struct from an array too, field by field: this logged in.
    let positional = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(format!(r#"["admin", "{ADMIN_PASSWORD}", "d"]"#));
    let r = app.send(Method::POST, login, positional).await;
    r.expect_error(422, "validation_failed");
    assert!(r.body["error"]["fields"]["body"].is_string(), "{}", r.text);
    let r = app
        .send(
            Method::POST,
            login,
            post(
                r#"{"username": 5, "password": "x", "device_id": "d"}"#,
                "application/json",
            ),
        )
        .await;
    r.expect_error(422, "validation_failed");
    assert!(
        r.body["error"]["fields"]["username"].is_string(),
        "{}",
        r.text
    );
    let r = app
        .send(
            Method::POST,
            login,
            post(
                r#"{"username": "a", "password": "x", "device_id": "d", "admin": true}"#,
                "application/json",
            ),
        )
        .await;
    r.expect_error(422, "validation_failed");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("admin")
    );
    let r = app
        .send(
            Method::POST,
            login,
            post(r#"{"username": "a", "device_id": "d"}"#, "application/json"),
        )
        .await;
    r.expect_error(422, "validation_failed");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("password")
    );
    app.send(
        Method::POST,
        login,
        post("username=admin", "application/x-www-form-urlencoded"),
    )
    .await
    .expect_error(415, "unsupported_media_type");
    let no_ct = app.client.post(&url).body(r#"{"username": "admin"}"#);
    app.send(Method::POST, login, no_ct)
        .await
        .expect_error(415, "unsupported_media_type");
    // Still works after all that.
    app.login("admin", ADMIN_PASSWORD, "d").await.expect(200);
}

async fn oversized_bodies_are_refused(app: TestApp) {
    let token = app.admin_token().await;
    // Declared too large: refused before the body is read.
    let big = format!("{{\"display_name\": \"{}\"}}", "x".repeat(2 << 20));
    let rb = app
        .client
        .patch(format!("{}/api/v1/me", app.base))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(big);
    let r = rb.send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405, "PATCH /me is not a route");
    let r = app
        .send(
            Method::POST,
            "/api/v1/users",
            app.client
                .post(format!("{}/api/v1/users", app.base))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(format!("{{\"username\": \"{}\"}}", "x".repeat(2 << 20))),
        )
        .await;
    r.expect_error(413, "payload_too_large");

    // Chunked (no length): refused once the limit is crossed while reading.
    let addr = app.base.trim_start_matches("http://").to_string();
    let status = actix_web::rt::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let head = "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        let _ = s.write_all(head.as_bytes());
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..40 {
            let part = format!("{:x}\r\n", chunk.len());
            if s.write_all(part.as_bytes()).is_err() || s.write_all(&chunk).is_err() || s.write_all(b"\r\n").is_err() {
                break;
            }
        }
        let _ = s.write_all(b"0\r\n\r\n");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).to_string()
    })
    .await
    .unwrap();
    assert!(
        status.starts_with("HTTP/1.1 413"),
        "{}",
        &status[..status.len().min(200)]
    );
    assert!(status.contains("payload_too_large"));
}

async fn query_errors_use_the_envelope(app: TestApp) {
    let token = app.admin_token().await;
    app.get("/api/v1/users?limit=abc", &token)
        .await
        .expect_error(400, "invalid_query");
    app.get("/api/v1/users?colour=blue", &token)
        .await
        .expect_error(400, "invalid_query");
    // A NUL in a text filter: PostgreSQL refuses it in a parameter (it was a 500 there).
    for path in [
        "/api/v1/audit?entity_id=a%00b",
        "/api/v1/audit?entity_table=%00",
        "/api/v1/units?q=%00",
        "/api/v1/hazards?state=%00",
    ] {
        app.get(path, &token)
            .await
            .expect_error(400, "invalid_query");
    }
}

async fn only_bodies_worth_it_are_compressed(app: TestApp) {
    let token = app.admin_token().await;
    for i in 0..12 {
        app.create_user(&token, &format!("compress-{i}"), "inspector", "330106")
            .await;
    }
    let raw = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .build()
        .unwrap();
    let big = raw
        .get(format!("{}/api/v1/users", app.base))
        .bearer_auth(&token)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(big.status().as_u16(), 200);
    assert_eq!(
        big.headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("gzip")
    );
    let zipped = big.bytes().await.unwrap().len();
    let plain = app.get("/api/v1/users", &token).await;
    assert!(
        zipped < plain.text.len() / 2,
        "gzip {zipped} vs plain {}",
        plain.text.len()
    );

    let br = raw
        .get(format!("{}/api/v1/users", app.base))
        .bearer_auth(&token)
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(
        br.headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("br")
    );

    // A tiny body is sent as is, and without a stray `identity` marker.
    let small = raw
        .get(format!("{}/healthz", app.base))
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert!(
        small.headers().get("content-encoding").is_none(),
        "{:?}",
        small.headers()
    );
    assert_eq!(
        small.text().await.unwrap(),
        json!({"status": "ok"}).to_string()
    );
}

async fn request_ids_are_echoed_or_made(app: TestApp) {
    let rb = app
        .client
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "phone-42.abc");
    let r = app.send(Method::GET, "/healthz", rb).await;
    assert_eq!(r.header("x-request-id"), Some("phone-42.abc"));
    let rb = app
        .client
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "bad id\twith junk");
    let r = app.send(Method::GET, "/healthz", rb).await;
    let made = r.header("x-request-id").unwrap();
    assert_eq!(made.len(), 32);
    assert!(made.bytes().all(|b| b.is_ascii_hexdigit()));
    let r = app.req(Method::GET, "/nowhere", None, None).await;
    assert!(r.header("x-request-id").is_some());
}
