//! Security properties that hold across the whole API, checked against the router's own
//! route table (so a new route is covered the day it is added) and the spec's request
//! schemas (so a new text field is too):
//!
//! - every route but the public ones needs a token;
//! - another district's ids answer exactly as unknown ones, on every single-resource route,
//!   and change nothing; nothing else of that district reaches its callers either;
//! - a unit user reaches its own unit's rows only, through an explicit allow-list;
//! - free text (SQL and LIKE metacharacters, quotes, backslashes, CJK, emoji, exactly the
//!   maximum length) is stored and answered byte for byte, over REST and in pulls, and one
//!   character more is a 422 naming the field.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{PASSWORD, TestApp};
use crate::registry::{reg_code, uscc};

crate::both_backends!(
    every_route_but_the_public_ones_needs_a_token,
    another_districts_ids_answer_as_unknown_ones,
    unit_users_reach_only_their_own_unit,
    registry_text_is_kept_verbatim,
    text_of_people_and_devices_is_kept_verbatim,
    text_of_the_work_is_kept_verbatim,
    text_through_the_hazard_lifecycle_is_kept_verbatim,
);

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
    fill_each(path, |_| id.to_string())
}

/// The path with its `n`th `{param}` replaced by `value(n)`.
fn fill_each(path: &str, mut value: impl FnMut(usize) -> String) -> String {
    let mut out = String::new();
    let mut rest = path;
    let mut n = 0;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        match rest[open..].find('}') {
            Some(close) => {
                out.push_str(&value(n));
                n += 1;
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

// ---------------------------------------------------------------------------------------
// A district full of data, and the kind of resource each route parameter names.
// ---------------------------------------------------------------------------------------

/// The kinds of resource a path parameter names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Unit,
    Equipment,
    Assignment,
    Hazard,
    Inspection,
    Evidence,
    Upload,
    Directive,
    Campaign,
    Task,
    Plan,
    User,
    Device,
}

/// What goes into one `{param}` of a route.
#[derive(Debug, Clone, Copy)]
enum Param {
    /// The id of a real resource of this kind (or, for the unknown-id answer, a random UUID).
    Id(Kind),
    /// A fixed segment that is no resource (e.g. a rendition name).
    Lit(&'static str),
}

/// Every parameterised route's parameters. A route with `{…}` that is neither here nor in
/// [`NOT_REGION_OWNED`] fails the sweeps: a new route cannot slip through unchecked.
const PARAMS: &[(&str, &[Param])] = &[
    ("/api/v1/users/{id}", &[Param::Id(Kind::User)]),
    ("/api/v1/devices/{id}/revoke", &[Param::Id(Kind::Device)]),
    ("/api/v1/units/{id}", &[Param::Id(Kind::Unit)]),
    ("/api/v1/equipment/{id}", &[Param::Id(Kind::Equipment)]),
    ("/api/v1/assignments/{id}", &[Param::Id(Kind::Assignment)]),
    (
        "/api/v1/assignments/{id}/dispatch",
        &[Param::Id(Kind::Assignment)],
    ),
    ("/api/v1/hazards/{id}", &[Param::Id(Kind::Hazard)]),
    ("/api/v1/hazards/{id}/classify", &[Param::Id(Kind::Hazard)]),
    ("/api/v1/hazards/{id}/plan", &[Param::Id(Kind::Hazard)]),
    (
        "/api/v1/hazards/{id}/submit_rectification",
        &[Param::Id(Kind::Hazard)],
    ),
    ("/api/v1/hazards/{id}/verify", &[Param::Id(Kind::Hazard)]),
    ("/api/v1/hazards/{id}/close", &[Param::Id(Kind::Hazard)]),
    ("/api/v1/hazards/{id}/reopen", &[Param::Id(Kind::Hazard)]),
    ("/api/v1/inspections/{id}", &[Param::Id(Kind::Inspection)]),
    (
        "/api/v1/inspections/{id}/items",
        &[Param::Id(Kind::Inspection)],
    ),
    (
        "/api/v1/inspections/{id}/submit",
        &[Param::Id(Kind::Inspection)],
    ),
    ("/api/v1/directives/{id}", &[Param::Id(Kind::Directive)]),
    (
        "/api/v1/directives/{id}/comply",
        &[Param::Id(Kind::Directive)],
    ),
    (
        "/api/v1/directives/{id}/revoke",
        &[Param::Id(Kind::Directive)],
    ),
    ("/api/v1/campaigns/{id}", &[Param::Id(Kind::Campaign)]),
    ("/api/v1/campaigns/{id}/tasks", &[Param::Id(Kind::Campaign)]),
    (
        "/api/v1/campaigns/{id}/tasks/{task_id}",
        &[Param::Id(Kind::Campaign), Param::Id(Kind::Task)],
    ),
    ("/api/v1/surprise-plans/{id}", &[Param::Id(Kind::Plan)]),
    ("/api/v1/surprise-plans/{id}/draw", &[Param::Id(Kind::Plan)]),
    (
        "/api/v1/surprise-plans/{id}/verification",
        &[Param::Id(Kind::Plan)],
    ),
    (
        "/api/v1/surprise-plans/{id}/reads",
        &[Param::Id(Kind::Plan)],
    ),
    ("/api/v1/uploads/{id}", &[Param::Id(Kind::Upload)]),
    ("/api/v1/evidence/{id}", &[Param::Id(Kind::Evidence)]),
    (
        "/api/v1/evidence/{id}/{variant}",
        &[Param::Id(Kind::Evidence), Param::Lit("thumb")],
    ),
];

/// Parameterised routes whose parameter names nothing of a region, so that another region's
/// caller has nothing to be kept from.
const NOT_REGION_OWNED: &[&str] = &[
    // The checklist templates are one national catalogue: everyone reads every template (they
    // are synced to every device) and only admins edit them (403 for everyone else).
    "/api/v1/checklist-templates/{id}",
];

fn params_of(path: &str) -> Option<&'static [Param]> {
    PARAMS.iter().find(|(p, _)| *p == path).map(|(_, ps)| *ps)
}

fn has_params(path: &str) -> bool {
    path.contains('{')
}

/// Every parameterised route of the table is mapped or excepted, and every mapping names a
/// route that exists with as many parameters as it has.
fn check_param_table() {
    let routes = xuncha::app::route_table();
    for r in &routes {
        if !has_params(r.path) || NOT_REGION_OWNED.contains(&r.path) {
            continue;
        }
        let ps = params_of(r.path).unwrap_or_else(|| {
            panic!(
                "{} {} has a path parameter that tests/api/security.rs does not map to a \
                 resource: add it to PARAMS (or, if it names nothing of a region, to \
                 NOT_REGION_OWNED with the reason)",
                r.method, r.path
            )
        });
        assert_eq!(
            ps.len(),
            r.path.matches('{').count(),
            "PARAMS entry of {} has the wrong number of parameters",
            r.path
        );
    }
    for (p, _) in PARAMS {
        assert!(
            routes.iter().any(|r| r.path == *p),
            "PARAMS names {p}, which is no route any more"
        );
    }
}

fn uid(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn sha_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// District A (330106) with one resource of every kind, all of unit `u1`; a second unit
/// `u2` there with its own unit user; district B (330105) with a manager and an inspector.
struct World {
    /// Tokens by user name.
    tokens: BTreeMap<&'static str, String>,
    /// User ids by user name.
    users: BTreeMap<&'static str, String>,
    /// One resource of each kind in district A, of unit `u1`.
    ids: BTreeMap<Kind, String>,
    u2: String,
    u2_equipment: String,
    u2_hazard: String,
    u2_directive: String,
}

impl World {
    fn t(&self, name: &str) -> &str {
        self.tokens
            .get(name)
            .unwrap_or_else(|| panic!("no token of {name}"))
    }

    fn id(&self, kind: Kind) -> &str {
        &self.ids[&kind]
    }

    /// Who owns (and may read) a resource of this kind.
    fn owner(&self, kind: Kind) -> &str {
        match kind {
            Kind::Upload => self.t("ins_a1"),
            _ => self.t("mgr_a"),
        }
    }
}

/// A future time, RFC 3339.
fn future(app: &TestApp, days: i64) -> String {
    (app.clock.now_utc() + chrono::Duration::days(days))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn day(app: &TestApp, days: i64) -> String {
    (app.clock.now().date() + chrono::Duration::days(days)).to_string()
}

async fn created(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let r = app.post(path, token, body).await;
    assert_eq!(r.status, 201, "POST {path}: {}", r.text);
    r.body
}

/// Creates a tus upload of `bytes` as `token`; answers its path (`/api/v1/uploads/…`).
async fn tus_create(app: &TestApp, token: &str, bytes: &[u8]) -> String {
    let meta = [
        ("sha256", sha_hex(bytes)),
        ("filename", "p.jpg".to_string()),
        ("content_type", "image/jpeg".to_string()),
    ]
    .iter()
    .map(|(k, v)| format!("{k} {}", STANDARD.encode(v)))
    .collect::<Vec<_>>()
    .join(",");
    let rb = app
        .client
        .post(format!("{}/api/v1/uploads/", app.base))
        .bearer_auth(token)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", bytes.len().to_string())
        .header("upload-metadata", meta);
    let r = app.send_bytes(Method::POST, "/api/v1/uploads/", rb).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let loc = r.header("location").expect("Location").to_string();
    loc[loc.find("/api/").expect("upload path")..].to_string()
}

/// A request as a client sends it: JSON; CSV (a string body) to the imports; on the tus
/// routes the headers a tus client sends (a PATCH with a chunk at offset 0), so that what is
/// tested is the owner check, not the protocol.
async fn call(app: &TestApp, method: &str, path: &str, token: &str, body: Option<Value>) -> Answer {
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    if path.starts_with("/api/v1/uploads/") {
        let mut rb = app
            .client
            .request(m.clone(), format!("{}{path}", app.base))
            .bearer_auth(token)
            .header("tus-resumable", "1.0.0");
        if method == "PATCH" {
            rb = rb
                .header("content-type", "application/offset+octet-stream")
                .header("upload-offset", "0")
                .body(vec![0xffu8, 0xd8, 0xff]);
        } else if method == "POST" {
            rb = rb.header("upload-length", "3");
        }
        let r = app.send_bytes(m, path, rb).await;
        return Answer {
            status: r.status,
            text: String::from_utf8_lossy(&r.bytes).to_string(),
            body: r.body,
        };
    }
    if let (true, Some(Value::String(csv))) = (path.starts_with("/api/v1/imports/"), &body) {
        let rb = app
            .client
            .request(m.clone(), format!("{}{path}", app.base))
            .bearer_auth(token)
            .header("content-type", "text/csv")
            .body(csv.clone());
        let r = app.send(m, path, rb).await;
        return Answer {
            status: r.status,
            text: r.text,
            body: r.body,
        };
    }
    let r = app.req(m, path, Some(token), body).await;
    Answer {
        status: r.status,
        text: r.text,
        body: r.body,
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    text: String,
    body: Value,
}

impl Answer {
    /// What may differ between two refusals without telling anything: nothing but the ids
    /// in the path, which the caller sent.
    fn refusal(&self, ids: &[String]) -> (u16, String) {
        let mut e = self.body["error"].to_string();
        for id in ids {
            e = e.replace(id.as_str(), "<id>");
        }
        (self.status, e)
    }
}

async fn world(app: &TestApp) -> World {
    let admin = app.admin_token().await;
    let mut users = BTreeMap::new();
    for (name, role, region) in [
        ("mgr_a", "manager", "330106"),
        ("mgr_b", "manager", "330105"),
        ("ins_a1", "inspector", "330106"),
        ("ins_b", "inspector", "330105"),
    ] {
        let r = created(
            app,
            &admin,
            "/api/v1/users",
            json!({"username": name, "password": PASSWORD, "display_name": name, "role": role,
                   "region_code": region, "credential_no": format!("ZJ-{name}")}),
        )
        .await;
        users.insert(name, uid(&r));
    }
    let mut tokens = BTreeMap::new();
    for name in ["mgr_a", "mgr_b", "ins_a1", "ins_b"] {
        tokens.insert(name, app.token(name, PASSWORD).await);
    }
    let mgr = tokens["mgr_a"].clone();
    let ins = tokens["ins_a1"].clone();
    let mut ids = BTreeMap::new();
    let unit = |n: u32, name: &str| {
        json!({"uscc": uscc("330106", n), "name": name, "address": "文三路 1 号",
               "region_code": "330106", "place_type": "mall"})
    };
    let u1 = uid(&created(app, &mgr, "/api/v1/units", unit(1, "甲商场")).await);
    let u2 = uid(&created(app, &mgr, "/api/v1/units", unit(2, "乙商场")).await);
    let equipment = |n: u32, unit: &str| {
        json!({"registration_code": reg_code(n), "unit_id": unit, "category_code": "3110",
               "reg_status": "registered"})
    };
    let e1 = uid(&created(app, &mgr, "/api/v1/equipment", equipment(1, &u1)).await);
    let e2 = uid(&created(app, &mgr, "/api/v1/equipment", equipment(2, &u2)).await);
    let r = created(
        app,
        &admin,
        "/api/v1/users",
        json!({"username": "unit_a2", "password": PASSWORD, "display_name": "乙商场",
               "role": "unit", "region_code": "330106", "unit_id": u2}),
    )
    .await;
    users.insert("unit_a2", uid(&r));
    tokens.insert("unit_a2", app.token("unit_a2", PASSWORD).await);
    let assignment = uid(&created(
        app,
        &mgr,
        "/api/v1/assignments",
        json!({"kind": "routine", "unit_id": u1, "equipment_ids": [e1],
               "team": [users["ins_a1"]],
               "window_start": "2026-12-01T00:00:00Z", "window_end": "2026-12-02T00:00:00Z"}),
    )
    .await);
    let inspection = uid(&created(
        app,
        &ins,
        "/api/v1/inspections",
        json!({"assignment_id": assignment, "started_at": "2026-12-01T09:00:00Z"}),
    )
    .await);
    let hazard = uid(&created(
        app,
        &ins,
        "/api/v1/hazards",
        json!({"unit_id": u1, "equipment_id": e1, "description": "门锁回路短接", "level": "general"}),
    )
    .await);
    // A photo with its bytes, so that its renditions exist; and an upload under way.
    let photo = crate::evidence::jpeg(64, 48, 3);
    let done = tus_create(app, &ins, &photo).await;
    let rb = app
        .client
        .patch(format!("{}{done}", app.base))
        .bearer_auth(&ins)
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "0")
        .body(photo.clone());
    assert_eq!(app.send_bytes(Method::PATCH, &done, rb).await.status, 204);
    let evidence = uid(&created(
        app,
        &ins,
        "/api/v1/evidence",
        json!({"id": new_id(), "sha256": sha_hex(&photo), "hazard_id": hazard, "kind": "finding"}),
    )
    .await);
    let upload = tus_create(app, &ins, &crate::evidence::jpeg(64, 48, 4)).await;
    let upload = upload.rsplit('/').next().unwrap().to_string();
    let directive = uid(&created(
        app,
        &mgr,
        "/api/v1/directives",
        json!({"kind": "directive", "doc_no": "甲-指-001", "unit_id": u1, "equipment_id": e1,
               "content": "限期更换门锁", "deadline": future(app, 30)}),
    )
    .await);
    let campaign = uid(&created(
        app,
        &mgr,
        "/api/v1/campaigns",
        json!({"title": "电梯专项", "starts_on": day(app, -10), "ends_on": day(app, 80)}),
    )
    .await);
    let task = uid(&created(
        app,
        &mgr,
        &format!("/api/v1/campaigns/{campaign}/tasks"),
        json!({"title": "排查", "lead_department": "特种设备科", "target": "全覆盖",
               "deadline": day(app, 30)}),
    )
    .await);
    let plan = uid(&created(
        app,
        &mgr,
        "/api/v1/surprise-plans",
        json!({"title": "四不两直", "region_code": "330106",
               "window_start": future(app, 1), "window_end": future(app, 2),
               "target_count": 1, "team_size": 2}),
    )
    .await);
    let r = app
        .get(
            &format!("/api/v1/devices?user_id={}", users["ins_a1"]),
            &mgr,
        )
        .await;
    r.expect(200);
    let device = uid(&r.body["items"][0]);
    // Unit u2's own rows, which its unit user may see.
    let u2_hazard = uid(&created(
        app,
        &tokens["unit_a2"],
        "/api/v1/hazards",
        json!({"unit_id": u2, "equipment_id": e2, "description": "扶梯急停失效", "level": "general"}),
    )
    .await);
    let u2_directive = uid(&created(
        app,
        &mgr,
        "/api/v1/directives",
        json!({"kind": "directive", "doc_no": "乙-指-001", "unit_id": u2, "content": "整改",
               "deadline": future(app, 30)}),
    )
    .await);
    ids.extend([
        (Kind::Unit, u1),
        (Kind::Equipment, e1),
        (Kind::Assignment, assignment),
        (Kind::Hazard, hazard),
        (Kind::Inspection, inspection),
        (Kind::Evidence, evidence),
        (Kind::Upload, upload),
        (Kind::Directive, directive),
        (Kind::Campaign, campaign),
        (Kind::Task, task),
        (Kind::Plan, plan),
        (Kind::User, users["ins_a1"].clone()),
        (Kind::Device, device),
    ]);
    World {
        tokens,
        users,
        ids,
        u2,
        u2_equipment: e2,
        u2_hazard,
        u2_directive,
    }
}

/// The concrete path of a mapped route: real ids, or fresh random ones.
fn concrete(w: &World, path: &str, real: bool) -> (String, Vec<String>) {
    let ps = params_of(path).unwrap();
    let mut ids = Vec::new();
    let p = fill_each(path, |n| match ps[n] {
        Param::Lit(s) => s.to_string(),
        Param::Id(k) => {
            let id = if real { w.id(k).to_string() } else { new_id() };
            ids.push(id.clone());
            id
        }
    });
    (p, ids)
}

/// A body the owner of the resource could send (valid in shape, so that a refusal is about
/// who asks, not what): `None` for routes that take none.
fn write_body(app: &TestApp, w: &World, method: &str, path: &str) -> Option<Value> {
    let deadline = future(app, 60);
    let b = match (method, path) {
        ("GET" | "HEAD" | "DELETE", _) => return None,
        ("POST", "/api/v1/devices/{id}/revoke")
        | ("POST", "/api/v1/assignments/{id}/dispatch")
        | ("POST", "/api/v1/surprise-plans/{id}/draw")
        | ("PATCH", "/api/v1/uploads/{id}") => return None,
        ("PATCH", "/api/v1/users/{id}") => {
            json!({"display_name": "改名", "credential_no": "ZJ-X", "active": false})
        }
        ("PATCH", "/api/v1/units/{id}") => json!({"name": "改名", "region_code": "330105"}),
        ("PATCH", "/api/v1/equipment/{id}") => json!({"location": "改", "reg_status": "scrapped"}),
        ("PATCH", "/api/v1/assignments/{id}") => json!({"notes": "改", "team": [w.users["ins_b"]]}),
        ("POST", "/api/v1/hazards/{id}/classify") => {
            json!({"level": "major", "deadline": deadline, "notice_no": "督-1"})
        }
        ("POST", "/api/v1/hazards/{id}/plan") => {
            json!({"commitments": {"measures": "更换", "deadline": deadline}})
        }
        ("POST", "/api/v1/hazards/{id}/submit_rectification") => {
            json!({"note": "已更换", "evidence_ids": [w.id(Kind::Evidence)]})
        }
        ("POST", "/api/v1/hazards/{id}/verify") => json!({"outcome": "fail"}),
        ("POST", "/api/v1/hazards/{id}/close") => json!({"note": "销号"}),
        ("POST", "/api/v1/hazards/{id}/reopen") => json!({"reason": "复发", "deadline": deadline}),
        ("POST", "/api/v1/inspections/{id}/items") => {
            json!({"item_code": "U-01", "outcome": "fail", "note": "无"})
        }
        ("POST", "/api/v1/inspections/{id}/submit") => {
            json!({"finished_at": "2026-12-01T10:00:00Z", "refused_to_sign": true})
        }
        ("POST", "/api/v1/directives/{id}/comply") => json!({"note": "已整改"}),
        ("POST", "/api/v1/directives/{id}/revoke") => json!({"note": "撤销"}),
        ("PATCH", "/api/v1/campaigns/{id}") => json!({"title": "改名"}),
        ("POST", "/api/v1/campaigns/{id}/tasks") => {
            json!({"title": "新任务", "lead_department": "科", "target": "t", "deadline": day(app, 20)})
        }
        ("PATCH", "/api/v1/campaigns/{id}/tasks/{task_id}") => json!({"progress": 90}),
        _ => panic!(
            "{method} {path}: tests/api/security.rs has no body for this write route; add one \
             to write_body (a body its owner could send)"
        ),
    };
    Some(b)
}

/// What the owners see of every resource of district A: compared before and after the
/// sweeps, it proves that no refused write changed anything.
async fn owners_view(app: &TestApp, w: &World) -> Vec<(String, u16, Value)> {
    let paths: Vec<(Kind, String)> = vec![
        (Kind::Unit, format!("/api/v1/units/{}", w.id(Kind::Unit))),
        (
            Kind::Equipment,
            format!("/api/v1/equipment/{}", w.id(Kind::Equipment)),
        ),
        (
            Kind::Assignment,
            format!("/api/v1/assignments/{}", w.id(Kind::Assignment)),
        ),
        (
            Kind::Hazard,
            format!("/api/v1/hazards/{}", w.id(Kind::Hazard)),
        ),
        (
            Kind::Inspection,
            format!("/api/v1/inspections/{}", w.id(Kind::Inspection)),
        ),
        (
            Kind::Evidence,
            format!("/api/v1/evidence/{}", w.id(Kind::Evidence)),
        ),
        (
            Kind::Directive,
            format!("/api/v1/directives/{}", w.id(Kind::Directive)),
        ),
        (
            Kind::Campaign,
            format!("/api/v1/campaigns/{}", w.id(Kind::Campaign)),
        ),
        (
            Kind::Campaign,
            format!("/api/v1/campaigns/{}/tasks", w.id(Kind::Campaign)),
        ),
        (
            Kind::Plan,
            format!("/api/v1/surprise-plans/{}", w.id(Kind::Plan)),
        ),
        (Kind::User, format!("/api/v1/users/{}", w.id(Kind::User))),
        (
            Kind::Device,
            format!("/api/v1/devices?user_id={}", w.id(Kind::User)),
        ),
    ];
    let mut out = Vec::new();
    for (kind, path) in paths {
        let r = app.get(&path, w.owner(kind)).await;
        assert_eq!(r.status, 200, "owner's GET {path}: {}", r.text);
        let mut body = r.body;
        if kind == Kind::Device {
            // The owner's own requests move `last_seen_at`; what a revoke would change is
            // kept.
            for d in body["items"].as_array_mut().unwrap() {
                d.as_object_mut().unwrap().remove("last_seen_at");
            }
        }
        out.push((path, r.status, body));
    }
    // The upload under way: still there, nothing written to it.
    let up = format!("/api/v1/uploads/{}", w.id(Kind::Upload));
    let rb = app
        .client
        .head(format!("{}{up}", app.base))
        .bearer_auth(w.owner(Kind::Upload))
        .header("tus-resumable", "1.0.0");
    let r = app.send_bytes(Method::HEAD, &up, rb).await;
    assert_eq!(r.status, 200, "owner's HEAD {up}");
    out.push((up, r.status, json!({"offset": r.header("upload-offset")})));
    out
}

fn documents(method: &str, path: &str, status: u16) -> bool {
    crate::common::spec::spec()["paths"][path][method.to_ascii_lowercase()]["responses"]
        .get(status.to_string())
        .is_some()
}

/// Sweeps every parameterised route as `caller` with the ids of district A's resources.
/// Each answer must be a refusal (404, or 403 where the operation documents 403 for a role
/// that never may), identical to the answer for ids that do not exist; and no refused write
/// may change anything. Answers how many routes were swept.
async fn sweep_foreign(app: &TestApp, w: &World, who: &str) -> usize {
    let caller = w.t(who);
    let mut swept = 0;
    for r in xuncha::app::route_table() {
        let method = r.method.as_str();
        if !has_params(r.path) || NOT_REGION_OWNED.contains(&r.path) {
            continue;
        }
        let (path, ids) = concrete(w, r.path, true);
        let (unknown_path, unknown_ids) = concrete(w, r.path, false);
        let body = write_body(app, w, method, r.path);
        let real = call(app, method, &path, caller, body.clone()).await;
        let unknown = call(app, method, &unknown_path, caller, body).await;
        let what = format!("{who}: {method} {}", r.path);
        assert!(
            real.status == 404 || (real.status == 403 && documents(method, r.path, 403)),
            "{what} with district A's ids answered {} {}",
            real.status,
            real.text
        );
        assert_eq!(
            real.refusal(&ids),
            unknown.refusal(&unknown_ids),
            "{what}: the answer for a real id of another district differs from the one for an \
             unknown id (it tells that the id exists)"
        );
        swept += 1;
    }
    swept
}

/// The single-resource routes, swept by a manager and an inspector of district B with the ids
/// of real resources of district A, answer exactly as for unknown ids (404, or 403 where the
/// role never may), and change nothing; every other route, asked about district A's rows,
/// answers nothing of them.
async fn another_districts_ids_answer_as_unknown_ones(app: TestApp) {
    check_param_table();
    let w = world(&app).await;
    // The owners do reach every resource through every mapped read route (so the ids are the
    // right kind and the refusals below are about the caller).
    for r in xuncha::app::route_table() {
        if !matches!(r.method.as_str(), "GET" | "HEAD")
            || !has_params(r.path)
            || NOT_REGION_OWNED.contains(&r.path)
        {
            continue;
        }
        let ps = params_of(r.path).unwrap();
        let Param::Id(kind) = ps[0] else { panic!() };
        let (path, _) = concrete(&w, r.path, true);
        let a = call(&app, r.method.as_str(), &path, w.owner(kind), None).await;
        assert!(
            a.status == 200 || (a.status == 409 && r.path.ends_with("/verification")),
            "owner: {} {path}: {} {}",
            r.method,
            a.status,
            a.text
        );
    }
    let before = owners_view(&app, &w).await;
    let mut swept = 0;
    for who in ["mgr_b", "ins_b"] {
        swept += sweep_foreign(&app, &w, who).await;
    }
    assert!(swept >= 2 * 30, "only {swept} routes swept");
    // Nor do their lists, pulls, reports, audit queries and creating calls, asked about
    // district A's rows, hold or touch any of them.
    let mut secrets: Vec<String> = w.ids.values().cloned().collect();
    secrets.extend([
        w.u2.clone(),
        w.u2_equipment.clone(),
        w.u2_hazard.clone(),
        w.u2_directive.clone(),
        w.users["mgr_a"].clone(),
        w.users["unit_a2"].clone(),
    ]);
    for who in ["mgr_b", "ins_b"] {
        swept += sweep_unparameterised(&app, &w, who, &secrets, |_, _| Access::Staff).await;
    }
    assert!(swept >= 2 * 80, "only {swept} calls swept");
    let after = owners_view(&app, &w).await;
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a, "a refused write changed {}", b.0);
    }
}

/// Everything a unit user may call besides the public routes and the code tables and
/// checklist templates everyone holds; every other route answers a unit user 403 or 404.
/// Parameterised ones answer only for the unit's own rows (checked with another unit's).
const UNIT_MAY: &[(&str, &str)] = &[
    ("GET", "/api/v1/me"),
    // Their own profile (display name, password) and their own devices.
    ("GET", "/api/v1/users/{id}"),
    ("PATCH", "/api/v1/users/{id}"),
    ("GET", "/api/v1/devices"),
    ("GET", "/api/v1/codes"),
    ("GET", "/api/v1/checklist-templates"),
    // Their unit, its equipment, hazards, enforcement actions and submitted records.
    ("GET", "/api/v1/units"),
    ("GET", "/api/v1/units/{id}"),
    ("GET", "/api/v1/equipment"),
    ("GET", "/api/v1/equipment/{id}"),
    ("GET", "/api/v1/hazards"),
    ("POST", "/api/v1/hazards"),
    ("GET", "/api/v1/hazards/{id}"),
    ("POST", "/api/v1/hazards/{id}/plan"),
    ("POST", "/api/v1/hazards/{id}/submit_rectification"),
    ("GET", "/api/v1/directives"),
    ("GET", "/api/v1/directives/{id}"),
    ("GET", "/api/v1/inspections"),
    ("GET", "/api/v1/inspections/{id}"),
    // Rectification photos.
    ("OPTIONS", "/api/v1/uploads/"),
    ("POST", "/api/v1/uploads/"),
    ("HEAD", "/api/v1/uploads/{id}"),
    ("PATCH", "/api/v1/uploads/{id}"),
    ("DELETE", "/api/v1/uploads/{id}"),
    ("GET", "/api/v1/evidence"),
    ("POST", "/api/v1/evidence"),
    ("GET", "/api/v1/evidence/{id}"),
    ("GET", "/api/v1/evidence/{id}/{variant}"),
    // Their device's sync.
    ("GET", "/api/v1/sync/pull"),
    ("POST", "/api/v1/sync/push"),
    ("GET", "/api/v1/sync/checksum"),
];

/// Lists a unit user may call that always answer it an empty list (the spec documents no 403
/// for them): assignments are never shown to a unit (四不两直: no visit is announced).
const UNIT_EMPTY: &[(&str, &str)] = &[("GET", "/api/v1/assignments")];

/// The ways the sweeps call a route without parameters: its path (bare, and with queries that
/// ask for unit u1's rows) and a body (naming unit u1's rows or district A, for routes that
/// create).
fn probes(
    app: &TestApp,
    w: &World,
    method: &str,
    path: &str,
    cursor: &str,
) -> Vec<(String, Option<Value>)> {
    let u1 = w.id(Kind::Unit);
    let hazard = w.id(Kind::Hazard);
    let ins = &w.users["ins_a1"];
    let bare = (path.to_string(), None);
    let with = |q: String| vec![bare.clone(), (format!("{path}?{q}"), None)];
    let post = |b: Value| vec![(path.to_string(), Some(b))];
    let window = (future(app, 1), future(app, 2));
    match (method, path) {
        ("GET", "/api/v1/users") => with("role=inspector".into()),
        ("GET", "/api/v1/devices") => with(format!("user_id={ins}")),
        ("GET", "/api/v1/units") => with("region=330106&q=%E7%94%B2".into()),
        ("GET", "/api/v1/equipment") => with(format!("unit_id={u1}")),
        ("GET", "/api/v1/assignments")
        | ("GET", "/api/v1/hazards")
        | ("GET", "/api/v1/inspections")
        | ("GET", "/api/v1/directives") => with(format!("unit_id={u1}")),
        ("GET", "/api/v1/recusals") => with(format!("user_id={ins}")),
        ("GET", "/api/v1/evidence") => vec![(format!("{path}?hazard_id={hazard}"), None)],
        ("GET", "/api/v1/audit") => with(format!("entity_table=hazards&entity_id={hazard}")),
        ("GET", p) if p.starts_with("/api/v1/reports/") => with("region=330106".into()),
        ("GET", "/api/v1/sync/checksum") => vec![(format!("{path}?cursor={cursor}"), None)],
        ("GET" | "OPTIONS", _) => vec![bare],
        ("POST", "/api/v1/users") => post(json!({"username": "intruder", "password": PASSWORD,
            "display_name": "x", "role": "inspector", "region_code": "330106"})),
        ("POST", "/api/v1/units") => post(json!({"uscc": uscc("330106", 9), "name": "x",
            "address": "y", "region_code": "330106", "place_type": "mall"})),
        ("POST", "/api/v1/equipment") => post(json!({"registration_code": reg_code(9),
            "unit_id": u1, "category_code": "3110", "reg_status": "registered"})),
        ("POST", "/api/v1/imports/units") => post(Value::String(format!(
            "uscc,name,address,region_code,place_type\n{},x,y,330106,mall\n",
            uscc("330106", 1)
        ))),
        ("POST", "/api/v1/imports/equipment") => post(Value::String(format!(
            "registration_code,unit_uscc,category_code,reg_status\n{},{},3110,scrapped\n",
            reg_code(1),
            uscc("330106", 1)
        ))),
        ("POST", "/api/v1/assignments") => post(json!({"kind": "routine", "unit_id": u1,
            "team": [ins], "window_start": window.0, "window_end": window.1})),
        ("POST", "/api/v1/inspections") => post(json!({"assignment_id": w.id(Kind::Assignment),
            "started_at": "2026-12-01T09:00:00Z"})),
        ("POST", "/api/v1/directives") => post(json!({"kind": "directive", "doc_no": "U-X",
            "unit_id": u1, "content": "c"})),
        ("POST", "/api/v1/campaigns") => post(json!({"title": "x", "region_code": "330106",
            "starts_on": day(app, 1), "ends_on": day(app, 9)})),
        ("POST", "/api/v1/surprise-plans") => post(json!({"title": "x", "region_code": "330106",
            "window_start": window.0, "window_end": window.1, "target_count": 1,
            "team_size": 2})),
        ("POST", "/api/v1/recusals") => post(json!({"user_id": ins, "unit_id": u1,
            "reason": "declared"})),
        ("POST", "/api/v1/hazards") => post(json!({"unit_id": u1, "description": "x",
            "level": "general"})),
        ("POST", "/api/v1/evidence") => post(json!({"id": new_id(),
            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "hazard_id": hazard, "kind": "rectification"})),
        ("POST", "/api/v1/uploads/") => post(json!(null)),
        ("POST", "/api/v1/sync/push") => post(json!({"device_id": "test-device", "mutations": [
            {"seq": 1, "name": "hazard.report", "args": {"id": new_id(), "unit_id": u1,
                "description": "x", "level": "general", "fixed_on_site": false}},
            {"seq": 2, "name": "hazard.plan", "args": {"id": hazard,
                "commitments": {"measures": "m", "deadline": future(app, 9)}}},
            {"seq": 3, "name": "hazard.update", "args": {"id": hazard, "base_version": 1,
                "fields": {"description": "改"}}},
            {"seq": 4, "name": "evidence.attach", "args": {"id": new_id(),
                "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "hazard_id": hazard, "kind": "rectification"}},
            {"seq": 5, "name": "inspection.record_item", "args": {
                "inspection_id": w.id(Kind::Inspection), "item_code": "U-01", "outcome": "pass"}},
            {"seq": 6, "name": "inspection.submit", "args": {"id": w.id(Kind::Inspection),
                "finished_at": "2026-12-01T10:00:00Z"}},
            {"seq": 7, "name": "directive.issue", "args": {"id": new_id(), "kind": "directive",
                "doc_no": "U-Y", "unit_id": u1, "content": "c"}},
            {"seq": 8, "name": "assignment.dispatch", "args": {"id": w.id(Kind::Assignment)}},
        ]})),
        _ => panic!(
            "{method} {path}: tests/api/security.rs does not know how to call this route; add \
             it to probes (naming unit u1's rows where it takes any)"
        ),
    }
}

/// A unit user (of unit u2), sweeping the whole route table with the rows of unit u1 of the
/// same district: routes not in [`UNIT_MAY`] answer 403 or 404; parameterised routes answer
/// as for unknown ids; creating routes refuse what names u1's rows; lists, pulls and
/// checksums it may call name nothing of u1; and nothing of u1 changes.
async fn unit_users_reach_only_their_own_unit(app: TestApp) {
    check_param_table();
    let w = world(&app).await;
    let me = w.t("unit_a2");
    let routes = xuncha::app::route_table();
    for (m, p) in UNIT_MAY.iter().chain(UNIT_EMPTY) {
        assert!(
            routes
                .iter()
                .any(|r| r.method.as_str() == *m && r.path == *p),
            "UNIT_MAY names {m} {p}, which is no route"
        );
    }
    // Its own rows are there (so what is refused below is refused for being u1's).
    for path in [
        format!("/api/v1/units/{}", w.u2),
        format!("/api/v1/equipment/{}", w.u2_equipment),
        format!("/api/v1/hazards/{}", w.u2_hazard),
        format!("/api/v1/directives/{}", w.u2_directive),
        format!("/api/v1/users/{}", w.users["unit_a2"]),
    ] {
        app.get(&path, me).await.expect(200);
    }
    let before = owners_view(&app, &w).await;
    let mut swept = 0;
    for r in &routes {
        let method = r.method.as_str();
        if !has_params(r.path) || NOT_REGION_OWNED.contains(&r.path) {
            continue;
        }
        let may = UNIT_MAY.contains(&(method, r.path));
        let what = format!("unit user: {method} {}", r.path);
        // Another unit's rows: as if they did not exist.
        let (path, ids) = concrete(&w, r.path, true);
        let (unknown_path, unknown_ids) = concrete(&w, r.path, false);
        let body = write_body(&app, &w, method, r.path);
        let real = call(&app, method, &path, me, body.clone()).await;
        let unknown = call(&app, method, &unknown_path, me, body).await;
        assert!(
            real.status == 404 || (real.status == 403 && !may),
            "{what} with unit u1's ids answered {} {}",
            real.status,
            real.text
        );
        assert_eq!(
            real.refusal(&ids),
            unknown.refusal(&unknown_ids),
            "{what}: the answer for a real id of another unit differs from the one for an \
             unknown id"
        );
        swept += 1;
    }
    // What unit u1 holds, and who works on it: none of it may reach the user of u2.
    let secrets: Vec<String> = w.ids.values().cloned().collect();
    swept += sweep_unparameterised(&app, &w, "unit_a2", &secrets, |m, p| {
        if UNIT_EMPTY.contains(&(m, p)) {
            Access::Empty
        } else if UNIT_MAY.contains(&(m, p)) {
            Access::May
        } else {
            Access::Not
        }
    })
    .await;
    assert!(swept > 60, "only {swept} calls swept");
    let after = owners_view(&app, &w).await;
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a, "a unit user's refused call changed {}", b.0);
    }
}

/// What a caller may do with a route without parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Call it: reads answer what is the caller's (or 404 for a filter naming what is not).
    May,
    /// Call it, and always get an empty list.
    Empty,
    /// Call it; reads may also be refused (403 or 404) by role or region.
    Staff,
    /// 403 or 404 (or a 422 that names the row as not the caller's, where the operation
    /// documents no 403).
    Not,
}

/// Sweeps every route without parameters (but the public ones and logout) as `who`, the ways
/// [`probes`] calls them (filters and bodies naming the rows of unit u1): no answer holds any
/// of `secrets`; reads answer as `access` says; creating calls are refused (a push's mutations
/// all rejected). Answers how many calls were made.
async fn sweep_unparameterised(
    app: &TestApp,
    w: &World,
    who: &str,
    secrets: &[String],
    access: impl Fn(&str, &str) -> Access,
) -> usize {
    let me = w.t(who);
    let leaks = |text: &str| -> Vec<&String> {
        secrets
            .iter()
            .filter(|s| text.contains(s.as_str()))
            .collect()
    };
    // The caller's whole sync first (its cursor is the checksum's).
    let mut cursor = String::new();
    loop {
        let r = app
            .get(&format!("/api/v1/sync/pull?limit=500&cursor={cursor}"), me)
            .await;
        r.expect(200);
        let found = leaks(&r.text);
        assert!(found.is_empty(), "{who}'s pull holds {found:?}");
        cursor = r.body["cursor"].as_str().unwrap().to_string();
        if r.body["has_more"] != true {
            break;
        }
    }
    let mut swept = 0;
    for r in xuncha::app::route_table() {
        let method = r.method.as_str();
        if has_params(r.path)
            || PUBLIC.contains(&(method, r.path))
            // Ends the caller's own session: nothing of anyone else's.
            || (method, r.path) == ("POST", "/api/v1/auth/logout")
        {
            continue;
        }
        let access = access(method, r.path);
        for (path, body) in probes(app, w, method, r.path, &cursor) {
            let writes = body.is_some();
            let a = call(app, method, &path, me, body).await;
            let what = format!("{who}: {method} {path}");
            let found = leaks(&a.text);
            assert!(found.is_empty(), "{what} answered {found:?}: {}", a.text);
            if path == "/api/v1/sync/push" {
                a_ok(&a, &what);
                for res in a.body["results"].as_array().unwrap() {
                    assert_eq!(res["status"], "rejected", "{what}: {res}");
                }
            } else if access == Access::Not {
                assert!(
                    a.status == 403
                        || a.status == 404
                        || (a.status == 422 && writes && !documents(method, r.path, 403)),
                    "{what} is no route for {who}, yet answered {} {}",
                    a.status,
                    a.text
                );
            } else if writes {
                // Creating something on unit u1's rows: refused.
                assert!(
                    matches!(a.status, 400 | 403 | 404 | 422),
                    "{what} naming unit u1's rows answered {} {}",
                    a.status,
                    a.text
                );
            } else if matches!(a.status, 403 | 404)
                && (path.contains('?') || access == Access::Staff)
            {
                // A filter naming what is not the caller's (the photos of u1's hazard, a
                // report of another region): refused.
                assert!(a.body["error"]["code"].is_string(), "{what}");
            } else {
                a_ok(&a, &what);
                if access == Access::Empty {
                    assert_eq!(a.body["items"], json!([]), "{what}: {}", a.text);
                }
            }
            swept += 1;
        }
    }
    swept
}

#[track_caller]
fn a_ok(a: &Answer, what: &str) {
    assert!(
        (200..300).contains(&a.status),
        "{what}: {} {}",
        a.status,
        a.text
    );
}

// ---------------------------------------------------------------------------------------
// Free text: stored and answered byte for byte, refused one character over its maximum.
// ---------------------------------------------------------------------------------------

/// Values every free-text field must keep byte for byte: SQL and LIKE metacharacters,
/// quotes, backslashes, CJK, an emoji outside the BMP. The fifth value of a field is a string
/// of exactly its maximum length ([`at_max`]).
const TRICKY: [&str; 4] = [
    "'; DROP TABLE units; --",
    "\" OR 1=1 -- /* $1 ? */",
    "%_\\ \\\\%\\_ 100%",
    "引号\"双\"'单' \\反斜杠\\ 电梯 🚧 Ω",
];
const N_VALUES: usize = TRICKY.len() + 1;

/// `n` characters (not bytes) of quotes, backslashes, wildcards, CJK and a 4-byte emoji,
/// without whitespace at either end (which would be trimmed).
fn at_max(n: usize) -> String {
    let mut s: Vec<char> = "电梯'\"\\%_;- 🚧Ω".chars().cycle().take(n).collect();
    for i in [0, n - 1] {
        if s[i].is_whitespace() {
            s[i] = 'Ω';
        }
    }
    s.into_iter().collect()
}

/// The `i`th test value of a field of at most `max` characters.
fn val(i: usize, max: usize) -> String {
    match TRICKY.get(i) {
        Some(t) => {
            assert!(t.chars().count() <= max);
            t.to_string()
        }
        None => at_max(max),
    }
}

/// A free-text field of a request body: its path in the body (`a.b` nested, `a[]` an array
/// of strings, `a[].b` in the objects of an array), its maximum length (what the service
/// passes to src/validate.rs), where the row read back holds it (a JSON pointer) and the key
/// of `fields` in the 422 answered when it is one character longer.
struct Text {
    field: &'static str,
    max: usize,
    read: &'static str,
    err: &'static str,
}

const fn t(field: &'static str, max: usize, read: &'static str, err: &'static str) -> Text {
    Text {
        field,
        max,
        read,
        err,
    }
}

/// Request schemas (of the spec) sharing the same free-text fields.
struct Group {
    schemas: &'static [&'static str],
    fields: &'static [Text],
}

const LOGIN: Group = Group {
    schemas: &["LoginRequest"],
    // Read back from GET /api/v1/devices.
    fields: &[
        t("device_id", 128, "/device_id", "device_id"),
        t("device_name", 128, "/name", "device_name"),
    ],
};
const PUSH: Group = Group {
    schemas: &["PushRequest"],
    // The device id of the session that pushes; a push under it lands in that device's log.
    fields: &[t("device_id", 128, "", "device_id")],
};
const USER: Group = Group {
    schemas: &["NewUser", "UserPatch"],
    fields: &[
        t("display_name", 100, "/display_name", "display_name"),
        t("credential_no", 64, "/credential_no", "credential_no"),
    ],
};
const UNIT: Group = Group {
    schemas: &["NewUnit", "UnitPatch"],
    fields: &[
        t("name", 200, "/name", "name"),
        t("address", 300, "/address", "address"),
        t("contact_name", 100, "/contact_name", "contact_name"),
    ],
};
const EQUIPMENT: Group = Group {
    schemas: &["NewEquipment", "EquipmentPatch"],
    fields: &[
        t("reg_cert_no", 64, "/reg_cert_no", "reg_cert_no"),
        t("location", 200, "/location", "location"),
        t("brake_type", 40, "/brake_type", "brake_type"),
    ],
};
const TEMPLATE: Group = Group {
    schemas: &["TemplatePatch"],
    fields: &[
        t("title_zh", 200, "/title_zh", "title_zh"),
        t("title_en", 200, "/title_en", "title_en"),
        t("items[].code", 32, "/items/0/code", "items"),
        t("items[].text_zh", 500, "/items/0/text_zh", "items"),
        t("items[].text_en", 500, "/items/0/text_en", "items"),
        t(
            "items[].major_clause",
            200,
            "/items/0/major_clause",
            "items",
        ),
    ],
};
const ASSIGNMENT: Group = Group {
    schemas: &["NewAssignment", "AssignmentPatch"],
    fields: &[t("notes", 2000, "/notes", "notes")],
};
const INSPECTION_ITEM: Group = Group {
    schemas: &["InspectionItemInput"],
    fields: &[t("note", 2000, "/results/0/note", "note")],
};
const INSPECTION_SUBMIT: Group = Group {
    schemas: &["InspectionSubmitInput"],
    fields: &[t(
        "signatory_name",
        100,
        "/signatory_name",
        "signatory_name",
    )],
};
const DIRECTIVE: Group = Group {
    schemas: &["NewDirective"],
    fields: &[
        t("doc_no", 64, "/doc_no", "doc_no"),
        t("content", 4000, "/content", "content"),
        t("article", 200, "/article", "article"),
    ],
};
const DIRECTIVE_CLOSE: Group = Group {
    schemas: &["DirectiveClose"],
    fields: &[t("note", 2000, "/close_note", "note")],
};
const CAMPAIGN: Group = Group {
    schemas: &["NewCampaign", "CampaignPatch"],
    fields: &[
        t("title", 200, "/title", "title"),
        t("description", 4000, "/description", "description"),
    ],
};
const TASK: Group = Group {
    schemas: &["NewCampaignTask", "CampaignTaskPatch"],
    fields: &[
        t("title", 200, "/title", "title"),
        t(
            "lead_department",
            100,
            "/lead_department",
            "lead_department",
        ),
        t(
            "cooperating_departments[]",
            100,
            "/cooperating_departments/0",
            "cooperating_departments",
        ),
        t("target", 2000, "/target", "target"),
        t(
            "milestones[].title",
            200,
            "/milestones/0/title",
            "milestones",
        ),
    ],
};
const SURPRISE_PLAN: Group = Group {
    schemas: &["NewSurprisePlan"],
    fields: &[t("title", 200, "/title", "title")],
};
const RECUSAL: Group = Group {
    schemas: &["NewRecusal"],
    fields: &[t("note", 2000, "/note", "note")],
};
const HAZARD: Group = Group {
    schemas: &["NewHazard"],
    fields: &[t("description", 4000, "/description", "description")],
};
const CLASSIFY: Group = Group {
    schemas: &["HazardClassify"],
    fields: &[t("notice_no", 64, "/notice_no", "notice_no")],
};
const PLAN: Group = Group {
    schemas: &["HazardPlan"],
    fields: &[
        t(
            "commitments.responsible_person",
            2000,
            "/commitments/responsible_person",
            "commitments.responsible_person",
        ),
        t(
            "commitments.measures",
            2000,
            "/commitments/measures",
            "commitments.measures",
        ),
        t(
            "commitments.funds",
            2000,
            "/commitments/funds",
            "commitments.funds",
        ),
        t(
            "commitments.contingency_plan",
            2000,
            "/commitments/contingency_plan",
            "commitments.contingency_plan",
        ),
    ],
};
const RECTIFY: Group = Group {
    schemas: &["HazardSubmitRectification"],
    fields: &[t("note", 4000, "/rectification_note", "note")],
};
// The notes and reasons of these actions are kept in the audit entry (`action_args`).
const VERIFY: Group = Group {
    schemas: &["HazardVerify"],
    fields: &[t("note", 4000, "/after/action_args/note", "note")],
};
const CLOSE: Group = Group {
    schemas: &["HazardClose"],
    fields: &[t("note", 4000, "/after/action_args/note", "note")],
};
const REOPEN: Group = Group {
    schemas: &["HazardReopen"],
    fields: &[t("reason", 4000, "/after/action_args/reason", "reason")],
};
const HAZARD_UPDATE: Group = Group {
    schemas: &["HazardUpdateArgs"],
    fields: &[
        t("fields.description", 4000, "/description", "description"),
        t("fields.notice_no", 64, "/notice_no", "notice_no"),
    ],
};

const GROUPS: &[&Group] = &[
    &LOGIN,
    &PUSH,
    &USER,
    &UNIT,
    &EQUIPMENT,
    &TEMPLATE,
    &ASSIGNMENT,
    &INSPECTION_ITEM,
    &INSPECTION_SUBMIT,
    &DIRECTIVE,
    &DIRECTIVE_CLOSE,
    &CAMPAIGN,
    &TASK,
    &SURPRISE_PLAN,
    &RECUSAL,
    &HAZARD,
    &CLASSIFY,
    &PLAN,
    &RECTIFY,
    &VERIFY,
    &CLOSE,
    &REOPEN,
    &HAZARD_UPDATE,
];

/// Text fields of request bodies that are no free text kept for reading, each with why; the
/// ones marked "probed" get the tricky values anyway and must answer 4xx, never 500.
const NOT_FREE_TEXT: &[(&str, &str, &str)] = &[
    (
        "LoginRequest",
        "username",
        "credentials, answered 401 (probed)",
    ),
    (
        "LoginRequest",
        "password",
        "credentials, answered 401 (probed)",
    ),
    (
        "RefreshRequest",
        "refresh_token",
        "a secret, answered 401 (probed)",
    ),
    ("NewUser", "password", "kept as an argon2id hash only"),
    ("UserPatch", "password", "kept as an argon2id hash only"),
    ("UserPatch", "current_password", "checked, never kept"),
    (
        "NewAssignment",
        "kind",
        "a code of the assignment_kind table (probed)",
    ),
    ("NewHazard", "item_code", "names a checklist item (probed)"),
    (
        "InspectionItemInput",
        "item_code",
        "names a checklist item (probed)",
    ),
    ("EvidenceAttachArgs", "item_code", "names a checklist item"),
    (
        "HazardUpdateArgs",
        "fields.item_code",
        "names a checklist item",
    ),
    (
        "NewSurprisePlan",
        "criteria.categories[]",
        "catalogue codes (probed)",
    ),
    (
        "NewSurprisePlan",
        "criteria.flags[]",
        "risk flag names (probed)",
    ),
    (
        "PushRequest",
        "mutations[].name",
        "a mutation's name (probed)",
    ),
];

/// Push mutation arguments whose REST twin (same service, same validation) is tested.
const ARGS_TWINS: &[(&str, &str)] = &[
    ("HazardReportArgs", "NewHazard"),
    ("HazardClassifyArgs", "HazardClassify"),
    ("HazardPlanArgs", "HazardPlan"),
    ("HazardSubmitRectificationArgs", "HazardSubmitRectification"),
    ("HazardVerifyArgs", "HazardVerify"),
    ("HazardCloseArgs", "HazardClose"),
    ("HazardReopenArgs", "HazardReopen"),
    ("InspectionStartArgs", "NewInspection"),
    ("InspectionRecordItemArgs", "InspectionItemInput"),
    ("InspectionSubmitArgs", "InspectionSubmitInput"),
    ("DirectiveIssueArgs", "NewDirective"),
];

/// Sets `path` (see [`Text`]) of `body` to `v`; arrays of objects must be in `body` already.
fn set_path(body: &mut Value, path: &str, v: &str) {
    if let Some((head, rest)) = path.split_once("[].") {
        let a = body[head]
            .as_array_mut()
            .unwrap_or_else(|| panic!("the base body has no array {head}"));
        return set_path(&mut a[0], rest, v);
    }
    if let Some(head) = path.strip_suffix("[]") {
        body[head] = json!([v]);
        return;
    }
    match path.split_once('.') {
        Some((head, rest)) => set_path(&mut body[head], rest, v),
        None => body[path] = json!(v),
    }
}

/// `base` with every field of `g` set to its `i`th value.
fn filled(base: &Value, g: &Group, i: usize) -> Value {
    let mut b = base.clone();
    for f in g.fields {
        set_path(&mut b, f.field, &val(i, f.max));
    }
    b
}

/// `base` with the fields of `g` set to their first value, but `f` one character too long.
fn too_long(base: &Value, g: &Group, f: &Text) -> Value {
    let mut b = filled(base, g, 0);
    set_path(&mut b, f.field, &at_max(f.max + 1));
    b
}

/// The row read back holds the `i`th value of every field of `g` that it holds (`read`
/// pointers into it), byte for byte.
#[track_caller]
fn assert_kept(row: &Value, g: &Group, i: usize, what: &str) {
    for f in g.fields.iter().filter(|f| !f.read.is_empty()) {
        let got = row.pointer(f.read);
        assert_eq!(
            got.and_then(Value::as_str),
            Some(val(i, f.max).as_str()),
            "{what}: {} (value {i}) came back as {got:?}",
            f.field
        );
    }
}

/// A 422 in the error envelope naming `f` (or a push result rejected the same way).
#[track_caller]
fn assert_too_long(status: u16, error: &Value, f: &Text, what: &str) {
    assert_eq!(status, 422, "{what}: {} too long answered {error}", f.field);
    assert_eq!(error["code"], "validation_failed", "{what}: {error}");
    assert!(error["message"].is_string(), "{what}: {error}");
    assert!(
        error["fields"].get(f.err).is_some_and(Value::is_string),
        "{what}: {} too long: `fields` does not name {}: {error}",
        f.field,
        f.err
    );
}

/// Tries each field of `g` one character too long with `send`; each must be refused.
async fn refuses_too_long<F, Fut>(g: &Group, base: &Value, what: &str, mut send: F)
where
    F: FnMut(Value) -> Fut,
    Fut: std::future::Future<Output = crate::common::Resp>,
{
    for f in g.fields {
        let r = send(too_long(base, g, f)).await;
        assert_too_long(r.status, &r.body["error"], f, what);
    }
}

/// Every row of `token`'s scope, by (table, id), from a whole initial pull.
async fn pull_all(app: &TestApp, token: &str) -> BTreeMap<(String, String), Value> {
    let mut rows = BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let r = app
            .get(
                &format!("/api/v1/sync/pull?limit=1000&cursor={cursor}"),
                token,
            )
            .await;
        r.expect(200);
        for c in r.body["changes"].as_array().unwrap() {
            if c["op"] == "put" {
                rows.insert(
                    (
                        c["table"].as_str().unwrap().to_string(),
                        c["id"].as_str().unwrap().to_string(),
                    ),
                    c["data"].clone(),
                );
            }
        }
        cursor = r.body["cursor"].as_str().unwrap().to_string();
        if r.body["has_more"] != true {
            return rows;
        }
    }
}

/// What a pull must hold at the end: (table, id, group, value index).
type Synced = Vec<(&'static str, String, &'static Group, usize)>;

#[track_caller]
fn assert_pulled(rows: &BTreeMap<(String, String), Value>, expected: &Synced) {
    for (table, id, g, i) in expected {
        let row = rows
            .get(&(table.to_string(), id.clone()))
            .unwrap_or_else(|| panic!("{table} {id} is not in the pull"));
        assert_kept(row, g, *i, &format!("pulled {table}"));
    }
}

async fn read(app: &TestApp, token: &str, path: &str) -> Value {
    let r = app.get(path, token).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.text);
    r.body
}

/// The item of the list at `path` (one page) with this id.
async fn read_item(app: &TestApp, token: &str, path: &str, id: &str) -> Value {
    let list = read(app, token, path).await;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in {path}"))
        .clone()
}

/// The answer to a write, which must be `status`.
#[track_caller]
fn ok(r: &crate::common::Resp, status: u16, what: &str) -> Value {
    assert_eq!(r.status, status, "{what}: {}", r.text);
    r.body.clone()
}

/// A district (330106) with a manager, two inspectors with credentials, a unit with an
/// elevator and its unit user.
struct Place {
    admin: String,
    mgr: String,
    ins1: String,
    ins1_id: String,
    ins2: String,
    unit_user: String,
    unit: String,
    equipment: String,
}

async fn place(app: &TestApp) -> Place {
    let admin = app.admin_token().await;
    let mut ids = BTreeMap::new();
    for (name, role) in [
        ("mgr", "manager"),
        ("ins1", "inspector"),
        ("ins2", "inspector"),
    ] {
        let u = created(
            app,
            &admin,
            "/api/v1/users",
            json!({"username": name, "password": PASSWORD, "display_name": name, "role": role,
                   "region_code": "330106", "credential_no": format!("ZJ-{name}")}),
        )
        .await;
        ids.insert(name, uid(&u));
    }
    let mgr = app.token("mgr", PASSWORD).await;
    let unit = uid(&created(
        app,
        &mgr,
        "/api/v1/units",
        json!({"uscc": uscc("330106", 1), "name": "商场", "address": "路",
               "region_code": "330106", "place_type": "mall"}),
    )
    .await);
    let equipment = uid(&created(
        app,
        &mgr,
        "/api/v1/equipment",
        json!({"registration_code": reg_code(1), "unit_id": unit, "category_code": "3110",
               "reg_status": "registered"}),
    )
    .await);
    created(
        app,
        &admin,
        "/api/v1/users",
        json!({"username": "shop", "password": PASSWORD, "display_name": "商场",
               "role": "unit", "region_code": "330106", "unit_id": unit}),
    )
    .await;
    Place {
        ins1: app.token("ins1", PASSWORD).await,
        ins1_id: ids["ins1"].clone(),
        ins2: app.token("ins2", PASSWORD).await,
        unit_user: app.token("shop", PASSWORD).await,
        admin,
        mgr,
        unit,
        equipment,
    }
}

/// Units, equipment and checklist templates: created and patched with each value, read back
/// over REST and in a pull; one character over each maximum is a 422 naming the field; and
/// the text search takes `%`, `_` and `\` literally.
async fn registry_text_is_kept_verbatim(app: TestApp) {
    let p = place(&app).await;
    let mut synced: Synced = Vec::new();
    // Units.
    let unit_base = |n: u32| {
        json!({"uscc": uscc("330106", n), "name": "x", "address": "x",
               "region_code": "330106", "place_type": "mall"})
    };
    refuses_too_long(&UNIT, &unit_base(99), "POST /api/v1/units", |b| {
        app.post("/api/v1/units", &p.mgr, b)
    })
    .await;
    let mut units = Vec::new();
    for i in 0..N_VALUES {
        let body = filled(&unit_base(10 + i as u32), &UNIT, i);
        let r = ok(&app.post("/api/v1/units", &p.mgr, body).await, 201, "unit");
        assert_kept(&r, &UNIT, i, "POST /api/v1/units");
        let id = uid(&r);
        let row = read(&app, &p.mgr, &format!("/api/v1/units/{id}")).await;
        assert_kept(&row, &UNIT, i, "GET /api/v1/units/{id}");
        units.push(id);
    }
    let mut names = Vec::new();
    for (i, id) in units.iter().enumerate() {
        let path = format!("/api/v1/units/{id}");
        if i == 0 {
            refuses_too_long(&UNIT, &json!({}), "PATCH /api/v1/units/{id}", |b| {
                app.patch(&path, &p.mgr, b)
            })
            .await;
        }
        let j = (i + 1) % N_VALUES;
        ok(
            &app.patch(&path, &p.mgr, filled(&json!({}), &UNIT, j)).await,
            200,
            "patch unit",
        );
        assert_kept(
            &read(&app, &p.mgr, &path).await,
            &UNIT,
            j,
            "PATCH /api/v1/units/{id}",
        );
        synced.push(("units", id.clone(), &UNIT, j));
        names.push((id.clone(), val(j, 200)));
    }
    // The text search finds a value as it is: `%` and `_` are no wildcards, `\` no escape.
    for q in TRICKY {
        let list = read(&app, &p.mgr, &format!("/api/v1/units?q={}", enc(q))).await;
        let mut got: Vec<String> = list["items"].as_array().unwrap().iter().map(uid).collect();
        let mut want: Vec<String> = names
            .iter()
            .filter(|(_, n)| n.contains(q))
            .map(|(id, _)| id.clone())
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "GET /api/v1/units?q={q}");
    }
    // Equipment.
    let eq_base = |n: u32| {
        json!({"registration_code": reg_code(n), "unit_id": p.unit, "category_code": "3110",
               "reg_status": "registered"})
    };
    refuses_too_long(&EQUIPMENT, &eq_base(99), "POST /api/v1/equipment", |b| {
        app.post("/api/v1/equipment", &p.mgr, b)
    })
    .await;
    let mut locations = Vec::new();
    for i in 0..N_VALUES {
        let body = filled(&eq_base(10 + i as u32), &EQUIPMENT, i);
        let r = ok(
            &app.post("/api/v1/equipment", &p.mgr, body).await,
            201,
            "equipment",
        );
        let id = uid(&r);
        let path = format!("/api/v1/equipment/{id}");
        assert_kept(
            &read(&app, &p.mgr, &path).await,
            &EQUIPMENT,
            i,
            "GET equipment",
        );
        if i == 0 {
            refuses_too_long(
                &EQUIPMENT,
                &json!({}),
                "PATCH /api/v1/equipment/{id}",
                |b| app.patch(&path, &p.mgr, b),
            )
            .await;
        }
        let j = (i + 2) % N_VALUES;
        let r = app
            .patch(&path, &p.mgr, filled(&json!({}), &EQUIPMENT, j))
            .await;
        ok(&r, 200, "patch equipment");
        assert_kept(
            &read(&app, &p.mgr, &path).await,
            &EQUIPMENT,
            j,
            "PATCH equipment",
        );
        synced.push(("equipment", id.clone(), &EQUIPMENT, j));
        locations.push((id, val(j, 200)));
    }
    for q in TRICKY {
        let list = read(&app, &p.mgr, &format!("/api/v1/equipment?q={}", enc(q))).await;
        let mut got: Vec<String> = list["items"].as_array().unwrap().iter().map(uid).collect();
        let mut want: Vec<String> = locations
            .iter()
            .filter(|(_, l)| l.contains(q))
            .map(|(id, _)| id.clone())
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "GET /api/v1/equipment?q={q}");
    }
    // Filters that take codes refuse metacharacters, or (those documented as unchecked)
    // match them exactly: none is a wildcard that matches all.
    for v in TRICKY {
        for (q, checked) in [
            ("units?region", true),
            ("units?place_type", false),
            ("units?flag", true),
            ("equipment?region", true),
            ("equipment?category", true),
            ("equipment?reg_status", false),
            ("equipment?flag", true),
        ] {
            let what = format!("GET /api/v1/{q}={v}");
            let r = app.get(&format!("/api/v1/{q}={}", enc(v)), &p.mgr).await;
            if checked {
                assert_refused(&r, &[400, 422], &what);
            } else {
                assert_eq!(ok(&r, 200, &what)["items"], json!([]), "{what}");
            }
        }
    }
    // A checklist template (the ropeway's), as admins edit them.
    let templates = read(&app, &p.admin, "/api/v1/checklist-templates").await;
    let template = templates["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["category_code"] == "9000")
        .map(uid)
        .expect("the ropeway template");
    let path = format!("/api/v1/checklist-templates/{template}");
    let base =
        json!({"items": [{"code": "x", "text_zh": "x", "text_en": "x", "per_equipment": true}]});
    refuses_too_long(&TEMPLATE, &base, "PATCH a template", |b| {
        app.patch(&path, &p.admin, b)
    })
    .await;
    for i in 0..N_VALUES {
        ok(
            &app.patch(&path, &p.admin, filled(&base, &TEMPLATE, i))
                .await,
            200,
            "template",
        );
        assert_kept(
            &read(&app, &p.mgr, &path).await,
            &TEMPLATE,
            i,
            "PATCH a template",
        );
    }
    synced.push(("checklist_templates", template, &TEMPLATE, N_VALUES - 1));
    assert_pulled(&pull_all(&app, &p.mgr).await, &synced);
}

/// What a pull holds of a user: the display name (credential numbers stay on the server).
const USER_SYNCED: Group = Group {
    schemas: &[],
    fields: &[t("display_name", 100, "/display_name", "display_name")],
};

/// An answer that refuses a credential or a code: a 4xx in the error envelope, never a 500.
#[track_caller]
fn assert_refused(r: &crate::common::Resp, allowed: &[u16], what: &str) {
    assert!(
        allowed.contains(&r.status),
        "{what}: answered {} {}",
        r.status,
        r.text
    );
    assert!(r.body["error"]["code"].is_string(), "{what}: {}", r.text);
}

/// URL-encodes every byte.
fn enc(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// Users (display names, credential numbers) and devices (their ids and names at login, the
/// device id of a push) keep each value; one character more is a 422 naming the field;
/// metacharacters in usernames, passwords and refresh tokens are a plain 401.
async fn text_of_people_and_devices_is_kept_verbatim(app: TestApp) {
    let admin = app.admin_token().await;
    created(
        &app,
        &admin,
        "/api/v1/users",
        json!({"username": "mgr", "password": PASSWORD, "display_name": "mgr",
               "role": "manager", "region_code": "330106"}),
    )
    .await;
    let mgr = app.token("mgr", PASSWORD).await;
    let base = json!({"username": "toolong", "password": PASSWORD, "role": "inspector",
                      "region_code": "330106"});
    refuses_too_long(&USER, &base, "POST /api/v1/users", |b| {
        app.post("/api/v1/users", &admin, b)
    })
    .await;
    let mut synced: Synced = Vec::new();
    let mut people = Vec::new();
    for i in 0..N_VALUES {
        let mut body = filled(&base, &USER, i);
        body["username"] = json!(format!("person{i}"));
        let r = ok(&app.post("/api/v1/users", &admin, body).await, 201, "user");
        assert_kept(&r, &USER, i, "POST /api/v1/users");
        let id = uid(&r);
        let path = format!("/api/v1/users/{id}");
        assert_kept(&read(&app, &mgr, &path).await, &USER, i, "GET a user");
        if i == 0 {
            refuses_too_long(&USER, &json!({}), "PATCH a user", |b| {
                app.patch(&path, &mgr, b)
            })
            .await;
        }
        let j = (i + 1) % N_VALUES;
        ok(
            &app.patch(&path, &mgr, filled(&json!({}), &USER, j)).await,
            200,
            "patch user",
        );
        assert_kept(&read(&app, &mgr, &path).await, &USER, j, "PATCH a user");
        synced.push(("users", id.clone(), &USER_SYNCED, j));
        people.push(id);
    }
    assert_pulled(&pull_all(&app, &mgr).await, &synced);
    // Devices: as named at login, and a push under such a device id.
    let login = |b: Value| app.req(Method::POST, "/api/v1/auth/login", None, Some(b));
    let base = json!({"username": "person0", "password": PASSWORD});
    refuses_too_long(&LOGIN, &base, "POST /api/v1/auth/login", login).await;
    for (i, person) in people.iter().enumerate() {
        let mut body = filled(&base, &LOGIN, i);
        body["username"] = json!(format!("person{i}"));
        let pair = ok(&login(body).await, 200, "login");
        let token = pair["access_token"].as_str().unwrap();
        let devices = read(&app, &mgr, &format!("/api/v1/devices?user_id={person}")).await;
        assert_eq!(devices["items"].as_array().unwrap().len(), 1, "{devices}");
        assert_kept(&devices["items"][0], &LOGIN, i, "GET /api/v1/devices");
        let push = |b: Value| app.post("/api/v1/sync/push", token, b);
        let base = json!({"mutations": []});
        if i == 0 {
            refuses_too_long(&PUSH, &base, "POST /api/v1/sync/push", push).await;
        }
        let mut body = filled(&base, &PUSH, i);
        body["mutations"] =
            json!([{"seq": 1, "name": "assignment.dispatch", "args": {"id": new_id()}}]);
        let r = ok(&push(body.clone()).await, 200, "push");
        assert_eq!(r["results"][0]["seq"], 1, "{r}");
        // A mutation's name with metacharacters is just an unknown one.
        body["mutations"] = json!([{"seq": 2, "name": TRICKY[i % TRICKY.len()], "args": {}}]);
        let r = ok(&push(body.clone()).await, 200, "push");
        assert_eq!(r["results"][0]["status"], "rejected", "{r}");
        assert_eq!(r["results"][0]["error"]["code"], "unknown_mutation", "{r}");
        // It went to that device's log: the next push must follow it.
        body["mutations"][0]["seq"] = json!(4);
        let r = push(body).await;
        assert_eq!(
            (r.status, &r.body["error"]["expected_seq"]),
            (409, &json!(3)),
            "the push under device id {:?} is not in that device's log: {}",
            val(i, 128),
            r.text
        );
    }
    // Credentials with metacharacters are just wrong credentials (each tried on its own
    // account, under the lockout threshold).
    for (i, v) in TRICKY
        .iter()
        .map(|s| s.to_string())
        .chain([at_max(300)])
        .enumerate()
    {
        let r = login(json!({"username": v, "password": PASSWORD, "device_id": "d"})).await;
        assert_refused(&r, &[401, 422], &format!("login as {v:?}"));
        let r =
            login(json!({"username": format!("person{i}"), "password": v, "device_id": "d"})).await;
        assert_refused(&r, &[401, 422], &format!("login with password {v:?}"));
        let r = app
            .req(
                Method::POST,
                "/api/v1/auth/refresh",
                None,
                Some(json!({"refresh_token": v})),
            )
            .await;
        assert_refused(&r, &[401, 422], &format!("refresh with {v:?}"));
    }
}

/// Assignments, inspection records, enforcement actions, campaigns and their tasks,
/// unannounced-check plans and recusals keep each value (over REST and, where synced, in a
/// pull); one character more is a 422 naming the field; codes with metacharacters are a 422.
async fn text_of_the_work_is_kept_verbatim(app: TestApp) {
    let p = place(&app).await;
    let mut synced: Synced = Vec::new();
    // Assignments.
    let base = json!({"kind": "routine", "unit_id": p.unit, "team": [p.ins1_id],
                      "window_start": "2026-12-01T00:00:00Z", "window_end": "2026-12-02T00:00:00Z"});
    refuses_too_long(&ASSIGNMENT, &base, "POST /api/v1/assignments", |b| {
        app.post("/api/v1/assignments", &p.mgr, b)
    })
    .await;
    for v in TRICKY {
        let mut b = base.clone();
        b["kind"] = json!(v);
        let r = app.post("/api/v1/assignments", &p.mgr, b).await;
        assert_refused(&r, &[422], &format!("assignment kind {v:?}"));
    }
    let mut assignments = Vec::new();
    for i in 0..N_VALUES {
        let r = app
            .post("/api/v1/assignments", &p.mgr, filled(&base, &ASSIGNMENT, i))
            .await;
        let id = uid(&ok(&r, 201, "assignment"));
        let path = format!("/api/v1/assignments/{id}");
        assert_kept(
            &read(&app, &p.mgr, &path).await,
            &ASSIGNMENT,
            i,
            "GET assignment",
        );
        if i == 0 {
            refuses_too_long(&ASSIGNMENT, &json!({}), "PATCH an assignment", |b| {
                app.patch(&path, &p.mgr, b)
            })
            .await;
        }
        let j = (i + 1) % N_VALUES;
        let r = app
            .patch(&path, &p.mgr, filled(&json!({}), &ASSIGNMENT, j))
            .await;
        ok(&r, 200, "patch assignment");
        assert_kept(
            &read(&app, &p.mgr, &path).await,
            &ASSIGNMENT,
            j,
            "PATCH assignment",
        );
        synced.push(("assignments", id.clone(), &ASSIGNMENT, j));
        assignments.push(id);
    }
    // Inspection records: a result's note, the signatory.
    for (i, a) in assignments.iter().enumerate() {
        let r = app
            .post(
                "/api/v1/inspections",
                &p.ins1,
                json!({"assignment_id": a, "started_at": "2026-12-01T09:00:00Z"}),
            )
            .await;
        let id = uid(&ok(&r, 201, "inspection"));
        let path = format!("/api/v1/inspections/{id}");
        let items = format!("{path}/items");
        let base = json!({"item_code": "U-01", "outcome": "fail"});
        if i == 0 {
            refuses_too_long(&INSPECTION_ITEM, &base, "POST …/items", |b| {
                app.post(&items, &p.ins1, b)
            })
            .await;
            for v in TRICKY.iter().map(|s| s.to_string()).chain([at_max(33)]) {
                let r = app
                    .post(&items, &p.ins1, json!({"item_code": v, "outcome": "pass"}))
                    .await;
                assert_refused(&r, &[422], &format!("item code {v:?}"));
            }
        }
        let r = app
            .post(&items, &p.ins1, filled(&base, &INSPECTION_ITEM, i))
            .await;
        ok(&r, 200, "record item");
        assert_kept(
            &read(&app, &p.ins1, &path).await,
            &INSPECTION_ITEM,
            i,
            "GET record",
        );
        let submit = format!("{path}/submit");
        let base = json!({"finished_at": "2026-12-01T10:00:00Z"});
        if i == 0 {
            refuses_too_long(&INSPECTION_SUBMIT, &base, "POST …/submit", |b| {
                app.post(&submit, &p.ins1, b)
            })
            .await;
        }
        let r = app
            .post(&submit, &p.ins1, filled(&base, &INSPECTION_SUBMIT, i))
            .await;
        ok(&r, 200, "submit record");
        let row = read(&app, &p.mgr, &path).await;
        assert_kept(&row, &INSPECTION_SUBMIT, i, "GET record");
        assert_kept(&row, &INSPECTION_ITEM, i, "GET record");
        synced.push(("inspections", id.clone(), &INSPECTION_SUBMIT, i));
        synced.push(("inspections", id, &INSPECTION_ITEM, i));
    }
    // Enforcement actions: a fine (document number, content, article), complied with or
    // revoked with a note.
    let base = json!({"kind": "fine", "unit_id": p.unit, "amount_yuan": 1000});
    refuses_too_long(&DIRECTIVE, &base, "POST /api/v1/directives", |b| {
        app.post("/api/v1/directives", &p.mgr, b)
    })
    .await;
    for i in 0..N_VALUES {
        let r = app
            .post("/api/v1/directives", &p.mgr, filled(&base, &DIRECTIVE, i))
            .await;
        let id = uid(&ok(&r, 201, "directive"));
        let path = format!("/api/v1/directives/{id}");
        assert_kept(
            &read(&app, &p.mgr, &path).await,
            &DIRECTIVE,
            i,
            "GET directive",
        );
        synced.push(("directives", id.clone(), &DIRECTIVE, i));
        let comply = format!("{path}/comply");
        if i == 0 {
            refuses_too_long(&DIRECTIVE_CLOSE, &json!({}), "POST …/comply", |b| {
                app.post(&comply, &p.mgr, b)
            })
            .await;
        }
        let r = app
            .post(&comply, &p.mgr, filled(&json!({}), &DIRECTIVE_CLOSE, i))
            .await;
        ok(&r, 200, "comply");
        assert_kept(
            &read(&app, &p.mgr, &path).await,
            &DIRECTIVE_CLOSE,
            i,
            "complied",
        );
        synced.push(("directives", id, &DIRECTIVE_CLOSE, i));
        let r = app
            .post(
                "/api/v1/directives",
                &p.mgr,
                json!({"kind": "interview", "doc_no": format!("R-{i}"), "unit_id": p.unit,
                       "content": "约谈"}),
            )
            .await;
        let id = uid(&ok(&r, 201, "directive"));
        let path = format!("/api/v1/directives/{id}");
        let revoke = format!("{path}/revoke");
        if i == 0 {
            refuses_too_long(&DIRECTIVE_CLOSE, &json!({}), "POST …/revoke", |b| {
                app.post(&revoke, &p.mgr, b)
            })
            .await;
        }
        let r = app
            .post(&revoke, &p.mgr, filled(&json!({}), &DIRECTIVE_CLOSE, i))
            .await;
        ok(&r, 200, "revoke");
        assert_kept(
            &read(&app, &p.mgr, &path).await,
            &DIRECTIVE_CLOSE,
            i,
            "revoked",
        );
        synced.push(("directives", id, &DIRECTIVE_CLOSE, i));
    }
    // Campaigns and their tasks.
    let base = json!({"starts_on": day(&app, -10), "ends_on": day(&app, 80)});
    refuses_too_long(&CAMPAIGN, &base, "POST /api/v1/campaigns", |b| {
        app.post("/api/v1/campaigns", &p.mgr, b)
    })
    .await;
    let mut campaigns = Vec::new();
    for i in 0..N_VALUES {
        let r = app
            .post("/api/v1/campaigns", &p.mgr, filled(&base, &CAMPAIGN, i))
            .await;
        let id = uid(&ok(&r, 201, "campaign"));
        let path = format!("/api/v1/campaigns/{id}");
        assert_kept(
            &read(&app, &p.mgr, &path).await,
            &CAMPAIGN,
            i,
            "GET campaign",
        );
        if i == 0 {
            refuses_too_long(&CAMPAIGN, &json!({}), "PATCH a campaign", |b| {
                app.patch(&path, &p.mgr, b)
            })
            .await;
        }
        let j = (i + 3) % N_VALUES;
        let r = app
            .patch(&path, &p.mgr, filled(&json!({}), &CAMPAIGN, j))
            .await;
        ok(&r, 200, "patch campaign");
        assert_kept(
            &read(&app, &p.mgr, &path).await,
            &CAMPAIGN,
            j,
            "PATCH campaign",
        );
        campaigns.push(id);
    }
    let tasks = format!("/api/v1/campaigns/{}/tasks", campaigns[0]);
    let milestone = json!([{"title": "x", "due_on": day(&app, 20)}]);
    let base = json!({"deadline": day(&app, 30), "milestones": milestone});
    refuses_too_long(&TASK, &base, "POST …/tasks", |b| {
        app.post(&tasks, &p.mgr, b)
    })
    .await;
    for i in 0..N_VALUES {
        let r = app.post(&tasks, &p.mgr, filled(&base, &TASK, i)).await;
        let id = uid(&ok(&r, 201, "task"));
        assert_kept(
            &read_item(&app, &p.mgr, &tasks, &id).await,
            &TASK,
            i,
            "GET tasks",
        );
        let path = format!("{tasks}/{id}");
        let base = json!({"milestones": milestone});
        if i == 0 {
            refuses_too_long(&TASK, &base, "PATCH a task", |b| {
                app.patch(&path, &p.mgr, b)
            })
            .await;
        }
        let j = (i + 4) % N_VALUES;
        ok(
            &app.patch(&path, &p.mgr, filled(&base, &TASK, j)).await,
            200,
            "patch task",
        );
        assert_kept(
            &read_item(&app, &p.mgr, &tasks, &id).await,
            &TASK,
            j,
            "PATCH task",
        );
    }
    // Unannounced-check plans.
    let base = json!({"region_code": "330106", "window_start": future(&app, 1),
                      "window_end": future(&app, 2), "target_count": 1, "team_size": 2});
    refuses_too_long(&SURPRISE_PLAN, &base, "POST /api/v1/surprise-plans", |b| {
        app.post("/api/v1/surprise-plans", &p.mgr, b)
    })
    .await;
    for v in TRICKY {
        for key in ["categories", "flags"] {
            let mut b = filled(&base, &SURPRISE_PLAN, 0);
            b["criteria"] = json!({key: [v]});
            let r = app.post("/api/v1/surprise-plans", &p.mgr, b).await;
            assert_refused(&r, &[422], &format!("plan criteria {key} {v:?}"));
        }
    }
    for i in 0..N_VALUES {
        let r = app
            .post(
                "/api/v1/surprise-plans",
                &p.mgr,
                filled(&base, &SURPRISE_PLAN, i),
            )
            .await;
        let id = uid(&ok(&r, 201, "plan"));
        let row = read(&app, &p.mgr, &format!("/api/v1/surprise-plans/{id}")).await;
        assert_kept(&row, &SURPRISE_PLAN, i, "GET plan");
    }
    // Recusals (one per unit and inspector).
    let recusals = format!("/api/v1/recusals?user_id={}", p.ins1_id);
    for i in 0..N_VALUES {
        let r = app
            .post(
                "/api/v1/units",
                &p.mgr,
                json!({"uscc": uscc("330106", 20 + i as u32), "name": "u", "address": "a",
                       "region_code": "330106", "place_type": "office"}),
            )
            .await;
        let unit = uid(&ok(&r, 201, "unit"));
        let base = json!({"user_id": p.ins1_id, "unit_id": unit, "reason": "kinship"});
        if i == 0 {
            refuses_too_long(&RECUSAL, &base, "POST /api/v1/recusals", |b| {
                app.post("/api/v1/recusals", &p.mgr, b)
            })
            .await;
        }
        let r = app
            .post("/api/v1/recusals", &p.mgr, filled(&base, &RECUSAL, i))
            .await;
        let id = uid(&ok(&r, 201, "recusal"));
        assert_kept(
            &read_item(&app, &p.mgr, &recusals, &id).await,
            &RECUSAL,
            i,
            "recusal",
        );
    }
    assert_pulled(&pull_all(&app, &p.mgr).await, &synced);
}

const PHOTO_SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A photo record (its bytes may follow) of `kind` for `hazard`.
async fn photo(app: &TestApp, token: &str, hazard: &str, kind: &str) -> String {
    let body = json!({"id": new_id(), "sha256": PHOTO_SHA, "hazard_id": hazard, "kind": kind});
    uid(&created(app, token, "/api/v1/evidence", body).await)
}

/// Through the whole closed loop of a hazard (report, classify, plan, rectification, re-check,
/// close, reopen, and a manager's edit pushed from a device), every text keeps each value
/// (over REST, in the audit entry of the action, and in a pull); one character more is a 422
/// naming the field (a rejected mutation in a push); item codes with metacharacters are a 422.
async fn text_through_the_hazard_lifecycle_is_kept_verbatim(app: TestApp) {
    let p = place(&app).await;
    let mut synced: Synced = Vec::new();
    let deadline = future(&app, 60);
    let base = json!({"unit_id": p.unit, "equipment_id": p.equipment, "level": "general"});
    refuses_too_long(&HAZARD, &base, "POST /api/v1/hazards", |b| {
        app.post("/api/v1/hazards", &p.ins1, b)
    })
    .await;
    for v in TRICKY.iter().map(|s| s.to_string()).chain([at_max(33)]) {
        let mut b = filled(&base, &HAZARD, 0);
        b["item_code"] = json!(v);
        let r = app.post("/api/v1/hazards", &p.ins1, b).await;
        assert_refused(&r, &[422], &format!("hazard item code {v:?}"));
    }
    let mut seq = 0;
    for i in 0..N_VALUES {
        let first = i == 0;
        let r = app
            .post("/api/v1/hazards", &p.ins1, filled(&base, &HAZARD, i))
            .await;
        let id = uid(&ok(&r, 201, "hazard"));
        let path = format!("/api/v1/hazards/{id}");
        assert_kept(&read(&app, &p.mgr, &path).await, &HAZARD, i, "GET hazard");
        // Each action: its too-long refusals (the state stays), then with the i-th value.
        let steps: [(&str, &str, &Group, Value); 6] = [
            (
                &p.mgr,
                "classify",
                &CLASSIFY,
                json!({"level": "major", "deadline": deadline}),
            ),
            (
                &p.unit_user,
                "plan",
                &PLAN,
                json!({"commitments": {"deadline": deadline}}),
            ),
            (&p.unit_user, "submit_rectification", &RECTIFY, json!({})),
            (&p.ins2, "verify", &VERIFY, json!({"outcome": "pass"})),
            (&p.mgr, "close", &CLOSE, json!({})),
            (&p.mgr, "reopen", &REOPEN, json!({"deadline": deadline})),
        ];
        for (token, action, g, mut base) in steps {
            match action {
                "submit_rectification" => {
                    base["evidence_ids"] = json!([photo(&app, token, &id, "rectification").await]);
                }
                "verify" => {
                    base["evidence_ids"] = json!([photo(&app, token, &id, "verification").await]);
                }
                _ => {}
            }
            let url = format!("{path}/{action}");
            if first {
                refuses_too_long(g, &base, &format!("POST …/{action}"), |b| {
                    app.post(&url, token, b)
                })
                .await;
            }
            let r = app.post(&url, token, filled(&base, g, i)).await;
            let row = ok(&r, 200, action);
            if !g.fields[0].read.starts_with("/after/") {
                assert_kept(&row, g, i, action);
                assert_kept(&read(&app, &p.mgr, &path).await, g, i, action);
            }
        }
        // What was said at the re-check, the closure and the reopening is in the audit log.
        let audit = read(
            &app,
            &p.mgr,
            &format!("/api/v1/audit?entity_table=hazards&entity_id={id}&limit=500"),
        )
        .await;
        for (action, g) in [("verify", &VERIFY), ("close", &CLOSE), ("reopen", &REOPEN)] {
            let entry = audit["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["action"] == format!("hazard.{action}"))
                .unwrap_or_else(|| panic!("no hazard.{action} entry"));
            assert_kept(entry, g, i, &format!("audit of {action}"));
        }
        synced.push(("hazards", id.clone(), &PLAN, i));
        synced.push(("hazards", id.clone(), &RECTIFY, i));
        // A manager's edit from a device (description, notice number).
        let version = read(&app, &p.mgr, &path).await["version"].clone();
        let base = json!({"id": id, "base_version": version, "fields": {}});
        let mut push = |args: Value| {
            seq += 1;
            app.push_one(&p.mgr, "test-device", seq, "hazard.update", args)
        };
        if first {
            for f in HAZARD_UPDATE.fields {
                let r = push(too_long(&base, &HAZARD_UPDATE, f)).await;
                assert_eq!(r["status"], "rejected", "{r}");
                assert_too_long(422, &r["error"], f, "push hazard.update");
            }
        }
        let j = (i + 1) % N_VALUES;
        let r = push(filled(&base, &HAZARD_UPDATE, j)).await;
        assert!(
            matches!(r["status"].as_str(), Some("applied" | "merged")),
            "{r}"
        );
        assert_kept(
            &read(&app, &p.mgr, &path).await,
            &HAZARD_UPDATE,
            j,
            "hazard.update",
        );
        synced.push(("hazards", id, &HAZARD_UPDATE, j));
    }
    assert_pulled(&pull_all(&app, &p.mgr).await, &synced);
}

/// The free-text fields of `schema` (strings without a format, pattern, enum or constant),
/// as paths in the style of [`Text::field`], with their documented `maxLength` if any.
fn free_text_fields(schema: &Value, prefix: &str, out: &mut Vec<(String, Option<u64>)>) {
    use crate::common::spec::resolve_ref;
    let s = resolve_ref(schema);
    for key in ["anyOf", "oneOf", "allOf"] {
        for alt in s[key].as_array().into_iter().flatten() {
            free_text_fields(alt, prefix, out);
        }
    }
    let Some(props) = s["properties"].as_object() else {
        return;
    };
    for (name, p) in props {
        let p = resolve_ref(p);
        let types: Vec<&str> = match &p["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let is_text = |p: &Value| {
            ["format", "pattern", "enum", "const"]
                .iter()
                .all(|k| p.get(*k).is_none())
        };
        let path = format!("{prefix}{name}");
        if types.contains(&"string") && is_text(p) {
            out.push((path, p["maxLength"].as_u64()));
        } else if types.contains(&"array") {
            let items = resolve_ref(&p["items"]);
            if items["type"] == "string" && is_text(items) {
                out.push((format!("{path}[]"), items["maxLength"].as_u64()));
            } else {
                free_text_fields(items, &format!("{path}[]."), out);
            }
        } else {
            free_text_fields(p, &format!("{path}."), out);
        }
    }
}

/// Every free-text field of every JSON request body in the spec (and of every push mutation's
/// arguments) is in a tested group, or listed in [`NOT_FREE_TEXT`] with the reason, or the
/// argument of a mutation whose REST twin is tested; and where the spec documents a
/// `maxLength`, it is the one the tests hold the server to.
#[test]
fn every_free_text_field_is_covered() {
    let spec = crate::common::spec::spec();
    let mut schemas: Vec<String> = Vec::new();
    for item in spec["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let r = &op["requestBody"]["content"]["application/json"]["schema"]["$ref"];
            if let Some(name) = r.as_str().and_then(|r| r.rsplit('/').next()) {
                schemas.push(name.to_string());
            }
        }
    }
    for name in spec["components"]["schemas"].as_object().unwrap().keys() {
        if name.ends_with("Args") {
            schemas.push(name.clone());
        }
    }
    schemas.sort();
    schemas.dedup();
    let tested = |schema: &str, field: &str| -> Option<usize> {
        GROUPS
            .iter()
            .filter(|g| g.schemas.contains(&schema))
            .flat_map(|g| g.fields)
            .find(|f| f.field == field)
            .map(|f| f.max)
    };
    let excepted = |schema: &str, field: &str| {
        NOT_FREE_TEXT
            .iter()
            .any(|(s, f, _)| *s == schema && *f == field)
    };
    let mut missing = Vec::new();
    let mut seen = 0;
    for schema in &schemas {
        let mut fields = Vec::new();
        free_text_fields(
            &json!({"$ref": format!("#/components/schemas/{schema}")}),
            "",
            &mut fields,
        );
        let twin = ARGS_TWINS
            .iter()
            .find(|(a, _)| a == schema)
            .map(|(_, t)| *t);
        for (field, documented) in fields {
            // A push's mutations take the arguments of the `*Args` schemas (one `anyOf`
            // branch each), which are checked as such below.
            if schema == "PushRequest" && field.starts_with("mutations[].args.") {
                continue;
            }
            seen += 1;
            let max = tested(schema, &field).or_else(|| twin.and_then(|t| tested(t, &field)));
            match (max, documented) {
                (Some(max), Some(doc)) => assert_eq!(
                    max as u64, doc,
                    "{schema}.{field}: the spec documents maxLength {doc}, the tests {max}"
                ),
                (Some(_), None) => {}
                (None, _) => {
                    if !excepted(schema, &field) && !twin.is_some_and(|t| excepted(t, &field)) {
                        missing.push(format!("{schema}.{field}"));
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "free-text fields no test of tests/api/security.rs sends verbatim (add them to a group \
         and its test, or to NOT_FREE_TEXT with the reason): {missing:?}"
    );
    assert!(seen > 60, "only {seen} text fields found in the spec");
    // And every group names fields the spec has.
    for g in GROUPS {
        for s in g.schemas {
            let mut fields = Vec::new();
            free_text_fields(
                &json!({"$ref": format!("#/components/schemas/{s}")}),
                "",
                &mut fields,
            );
            for f in g.fields {
                assert!(
                    fields.iter().any(|(name, _)| name == f.field),
                    "{s} has no free-text field {} in the spec",
                    f.field
                );
            }
        }
    }
}
