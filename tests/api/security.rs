//! Security properties that hold across the whole API, checked against the router's own
//! route table (so a new route is covered the day it is added).

use reqwest::Method;
use serde_json::json;

use crate::common::TestApp;

crate::both_backends!(every_route_but_the_public_ones_needs_a_token);

/// Routes anyone may call: health, login and token refresh (which carries its own secret).
const PUBLIC: [(&str, &str); 4] = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
];

/// Every route answers 401 without a token (and with a malformed one), before it looks at
/// its parameters or body: nothing about the API's data is learned unauthenticated.
async fn every_route_but_the_public_ones_needs_a_token(app: TestApp) {
    let id = "0190a0b0-0000-7000-8000-000000000000";
    let mut checked = 0;
    for r in xuncha::app::route_table() {
        if PUBLIC.contains(&(r.method.as_str(), r.path)) {
            continue;
        }
        let path = fill_params(r.path, id);
        let method = Method::from_bytes(r.method.as_str().as_bytes()).unwrap();
        let body = matches!(r.method.as_str(), "POST" | "PATCH" | "PUT").then(|| json!({}));
        let none = app.req(method.clone(), &path, None, body.clone()).await;
        assert_eq!(
            none.status, 401,
            "{} {} without a token: {} {}",
            r.method, r.path, none.status, none.text
        );
        let junk = app.req(method, &path, Some("not.a.token"), body).await;
        assert_eq!(
            junk.status, 401,
            "{} {} with a malformed token: {} {}",
            r.method, r.path, junk.status, junk.text
        );
        checked += 1;
    }
    assert!(checked > 50, "only {checked} routes checked");
    // The public ones are really public.
    app.get("/healthz", "").await.expect(200);
}

/// The path with each `{param}` replaced by `id`.
fn fill_params(path: &str, id: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        match rest[open..].find('}') {
            Some(close) => {
                out.push_str(id);
                rest = &rest[open + close + 1..];
            }
            None => {
                rest = &rest[open..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}
