//! Unannounced checks (四不两直) through the HTTP API, on SQLite and PostgreSQL: plans and their
//! seed commitment, the draw into sealed assignments, sealing through every read path, reveal
//! by dispatch and by time (exactly once across app servers), audited reads of revealed
//! targets, recusals, and verification of the draw (endpoint and `xuncha surprise verify`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{ADMIN_PASSWORD, Direct, PASSWORD, Resp, TestApp};
use crate::registry::{reg_code, uscc};

crate::both_backends!(
    plans_are_made_by_managers_of_their_region,
    a_draw_makes_sealed_teams_of_the_region_once,
    sealed_targets_leak_through_no_read_path,
    dispatch_reveals_a_target_to_its_team_once,
    reveal_by_time_happens_once_across_servers,
    reads_of_revealed_targets_are_audited,
    recusals_keep_inspectors_off_their_units,
    verification_recomputes_the_draw_and_catches_tampering,
    district_managers_get_no_hint_of_a_sealed_target,
    a_drawn_target_cannot_be_deleted_from_its_plan,
);

/// The credentialed inspectors of 330106: the whole pool of a 330100 plan.
const INSPECTORS: [&str; 5] = ["ins1", "ins2", "ins3", "ins4", "ins5"];

/// What a sealed assignment shows, and nothing more.
const SHELL: [&str; 7] = [
    "id",
    "kind",
    "sealed",
    "team",
    "version",
    "window_end",
    "window_start",
];

struct World {
    /// username → access token (`relogin` renews them after the clock moves).
    tokens: BTreeMap<String, String>,
    /// username → user id.
    ids: BTreeMap<String, String>,
    /// Six units of 330105: malls (key units) 0–2, offices 3–5.
    units: Vec<String>,
    /// unit → its equipment.
    equipment: BTreeMap<String, Vec<String>>,
    /// units[0]'s boiler, its only piece of category 2100 (it also has two elevators).
    boiler: String,
}

impl World {
    fn t(&self, user: &str) -> &str {
        &self.tokens[user]
    }

    fn id(&self, user: &str) -> &str {
        &self.ids[user]
    }

    fn name_of(&self, id: &str) -> &str {
        self.ids
            .iter()
            .find(|(_, v)| v.as_str() == id)
            .map(|(k, _)| k.as_str())
            .unwrap_or_else(|| panic!("no user {id}"))
    }

    /// Every unit and piece of equipment of 330105: none of it is any inspector's business
    /// (they are all of 330106) until a target is revealed to them.
    fn secrets(&self) -> Vec<String> {
        let mut s = self.units.clone();
        s.extend(self.equipment.values().flatten().cloned());
        s
    }

    /// New tokens for everyone (after `app.clock.advance`, the old ones have expired).
    async fn relogin(&mut self, app: &TestApp) {
        for (user, token) in self.tokens.iter_mut() {
            let pw = if user == "admin" {
                ADMIN_PASSWORD
            } else {
                PASSWORD
            };
            *token = app.token(user, pw).await;
        }
    }
}

fn uid(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[track_caller]
fn assert_shell(a: &Value) {
    let want: BTreeSet<String> = SHELL.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        keys(a),
        want,
        "a sealed assignment shows only its shell: {a}"
    );
    assert_eq!(a["sealed"], true, "{a}");
    assert_eq!(a["kind"], "surprise", "{a}");
}

#[track_caller]
fn assert_secret_free(text: &str, secrets: &[String], what: &str) {
    for s in secrets {
        assert!(!text.contains(s.as_str()), "{what} names {s}: {text}");
    }
}

fn is_hex64(s: &Value) -> bool {
    s.as_str()
        .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// An RFC 3339 time `d` from the server's now.
fn at(app: &TestApp, d: Duration) -> String {
    (app.clock.now_utc() + d).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A plan of the city 330100 whose window opens in an hour and closes in a day.
fn plan_body(app: &TestApp, target_count: i32, team_size: i32) -> Value {
    json!({"title": "电梯四不两直检查", "region_code": "330100",
           "window_start": at(app, Duration::hours(1)), "window_end": at(app, Duration::days(1)),
           "target_count": target_count, "team_size": team_size})
}

async fn new_plan(app: &TestApp, token: &str, body: Value) -> Value {
    let r = app.post("/api/v1/surprise-plans", token, body).await;
    r.expect(201);
    r.body
}

async fn draw_req(app: &TestApp, token: &str, plan: &str) -> Resp {
    app.req(
        Method::POST,
        &format!("/api/v1/surprise-plans/{plan}/draw"),
        Some(token),
        None,
    )
    .await
}

async fn draw(app: &TestApp, token: &str, plan: &str) -> Value {
    let r = draw_req(app, token, plan).await;
    r.expect(200);
    r.body
}

async fn dispatch(app: &TestApp, token: &str, id: &str) -> Resp {
    app.req(
        Method::POST,
        &format!("/api/v1/assignments/{id}/dispatch"),
        Some(token),
        None,
    )
    .await
}

fn targets(plan: &Value) -> Vec<Value> {
    plan["assignments"].as_array().unwrap().clone()
}

async fn add_equipment(app: &TestApp, token: &str, unit: &str, category: &str, n: u32) -> String {
    let r = app
        .post(
            "/api/v1/equipment",
            token,
            json!({"registration_code": reg_code(n), "unit_id": unit,
                   "category_code": category, "reg_status": "registered"}),
        )
        .await;
    r.expect(201);
    uid(&r.body)
}

async fn add_unit(app: &TestApp, token: &str, region: &str, n: u32, place: &str) -> String {
    let r = app
        .post(
            "/api/v1/units",
            token,
            json!({"uscc": uscc(region, n), "name": format!("单位{region}-{n}"), "address": "文三路",
                   "region_code": region, "place_type": place}),
        )
        .await;
    r.expect(201);
    uid(&r.body)
}

/// Managers: `city` (330100, plans), `mgr5` (330105, where the units are), `mgr6` (330106,
/// where the inspectors are), `nbmgr` (330200, another city). Inspectors ins1–ins5 of 330106 with
/// enforcement credentials; `rookie` (330106) without one; `far` (330200) with one. Six units
/// of 330105 (three malls, three offices), an elevator each, units[0] with a second elevator
/// and a boiler.
async fn world(app: &TestApp) -> World {
    let admin = app.admin_token().await;
    let mut ids = BTreeMap::new();
    for (name, region) in [
        ("city", "330100"),
        ("mgr5", "330105"),
        ("mgr6", "330106"),
        ("nbmgr", "330200"),
    ] {
        let u = app.create_user(&admin, name, "manager", region).await;
        ids.insert(name.to_string(), uid(&u));
    }
    let mut people: Vec<(&str, &str, bool)> =
        INSPECTORS.iter().map(|n| (*n, "330106", true)).collect();
    people.push(("rookie", "330106", false));
    people.push(("far", "330200", true));
    for (name, region, credential) in people {
        let mut body = json!({"username": name, "password": PASSWORD, "display_name": name,
                              "role": "inspector", "region_code": region});
        if credential {
            body["credential_no"] = json!(format!("ZJ-{name}"));
        }
        let r = app.post("/api/v1/users", &admin, body).await;
        r.expect(201);
        ids.insert(name.to_string(), uid(&r.body));
    }
    let city = app.token("city", PASSWORD).await;
    let mut units = Vec::new();
    let mut equipment = BTreeMap::new();
    for n in 0..6u32 {
        let place = if n < 3 { "mall" } else { "office" };
        let unit = add_unit(app, &city, "330105", n + 1, place).await;
        let e = add_equipment(app, &city, &unit, "3110", 100 + n).await;
        equipment.insert(unit.clone(), vec![e]);
        units.push(unit);
    }
    let second = add_equipment(app, &city, &units[0], "3110", 200).await;
    let boiler = add_equipment(app, &city, &units[0], "2100", 201).await;
    equipment
        .get_mut(&units[0])
        .unwrap()
        .extend([second, boiler.clone()]);
    let mut tokens = BTreeMap::new();
    tokens.insert("admin".to_string(), admin);
    for name in ids.keys() {
        tokens.insert(name.clone(), app.token(name, PASSWORD).await);
    }
    World {
        tokens,
        ids,
        units,
        equipment,
        boiler,
    }
}

/// A phone: pulls into a local copy, pushes mutations with contiguous seqs.
struct Device {
    user: String,
    device_id: String,
    token: String,
    cursor: Option<String>,
    rows: BTreeMap<(String, String), Value>,
    seq: i64,
}

/// One sync: the changes it brought and the raw text of its pages.
struct Synced {
    changes: Vec<Value>,
    text: String,
}

impl Synced {
    fn puts(&self, table: &str) -> Vec<&Value> {
        self.changes
            .iter()
            .filter(|c| c["table"] == table && c["op"] == "put")
            .collect()
    }

    fn put_ids(&self, table: &str) -> BTreeSet<String> {
        self.puts(table).iter().map(|c| uid(c)).collect()
    }
}

impl Device {
    async fn new(app: &TestApp, user: &str, device_id: &str) -> Device {
        let pair = app.login_ok(user, PASSWORD, device_id).await;
        Device {
            user: user.to_string(),
            device_id: device_id.to_string(),
            token: pair["access_token"].as_str().unwrap().to_string(),
            cursor: None,
            rows: BTreeMap::new(),
            seq: 0,
        }
    }

    async fn relogin(&mut self, app: &TestApp) {
        let pair = app.login_ok(&self.user, PASSWORD, &self.device_id).await;
        self.token = pair["access_token"].as_str().unwrap().to_string();
    }

    /// Pulls until nothing more is pending.
    async fn sync(&mut self, app: &TestApp) -> Synced {
        let mut out = Synced {
            changes: Vec::new(),
            text: String::new(),
        };
        loop {
            let mut path = "/api/v1/sync/pull?limit=1000".to_string();
            if let Some(c) = &self.cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let r = app.get(&path, &self.token).await;
            r.expect(200);
            assert!(
                r.body.get("reset").is_none(),
                "unexpected reset: {}",
                r.text
            );
            for c in r.body["changes"].as_array().unwrap() {
                let key = (
                    c["table"].as_str().unwrap().to_string(),
                    c["id"].as_str().unwrap().to_string(),
                );
                match c["op"].as_str().unwrap() {
                    "put" => {
                        self.rows.insert(key, c["data"].clone());
                    }
                    _ => {
                        self.rows.remove(&key);
                    }
                }
                out.changes.push(c.clone());
            }
            out.text.push_str(&r.text);
            self.cursor = Some(r.body["cursor"].as_str().unwrap().to_string());
            if !r.body["has_more"].as_bool().unwrap() {
                return out;
            }
        }
    }

    fn row(&self, table: &str, id: &str) -> Option<&Value> {
        self.rows.get(&(table.to_string(), id.to_string()))
    }

    /// Pushes one mutation; answers its result.
    async fn push(&mut self, app: &TestApp, name: &str, args: Value) -> Value {
        self.seq += 1;
        app.push_one(&self.token, &self.device_id, self.seq, name, args)
            .await
    }
}

/// A unit user of `unit`, on their phone.
async fn unit_user(app: &TestApp, w: &World, name: &str, unit: &str) -> Device {
    app.post(
        "/api/v1/users",
        w.t("admin"),
        json!({"username": name, "password": PASSWORD, "display_name": name,
               "role": "unit", "region_code": "330105", "unit_id": unit}),
    )
    .await
    .expect(201);
    Device::new(app, name, &format!("phone-{name}")).await
}

/// Every audit entry `token` may read matching `query` (`&entity_id=…`), all pages.
async fn audit(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/audit?limit=500{query}");
        if let Some(a) = &after {
            path.push_str(&format!("&after={a}"));
        }
        let r = app.get(&path, token).await;
        r.expect(200);
        out.extend(r.body["items"].as_array().unwrap().iter().cloned());
        match r.body["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => return out,
        }
    }
}

/// The `surprise.reveal` entries of one assignment.
async fn reveals(app: &TestApp, w: &World, assignment: &str) -> Vec<Value> {
    audit(
        app,
        w.t("city"),
        &format!("&entity_table=assignments&entity_id={assignment}"),
    )
    .await
    .into_iter()
    .filter(|e| e["action"] == "surprise.reveal")
    .collect()
}

#[derive(diesel::QueryableByName)]
struct DrawnRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    unit_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    team: String,
}

/// assignment id → (unit, team) of every drawn assignment, read behind the API's back (the
/// API rightly names no sealed target).
fn drawn(app: &TestApp) -> BTreeMap<String, (String, Vec<String>)> {
    use diesel::RunQueryDsl;
    let sql = "SELECT id, unit_id, team FROM assignments WHERE kind = 'surprise'";
    let rows: Vec<DrawnRow> = match Direct::open(app) {
        Direct::Sqlite(mut c) => diesel::sql_query(sql).load(&mut c),
        Direct::Pg(mut c) => diesel::sql_query(sql).load(&mut c),
    }
    .unwrap();
    rows.into_iter()
        .map(|r| {
            let team: Vec<String> = serde_json::from_str(&r.team).unwrap();
            (r.id, (r.unit_id, team))
        })
        .collect()
}

/// Runs the reveal job's function once on `app`'s own pool at `app`'s now.
async fn reveal_due(app: &TestApp) -> usize {
    let now = app.clock.now();
    let n = app
        .server_db()
        .run(move |conn| xuncha::surprise::service::reveal_due(conn, now))
        .await
        .unwrap();
    app.settle().await;
    n
}

async fn plans_are_made_by_managers_of_their_region(app: TestApp) {
    let w = world(&app).await;
    let shop = unit_user(&app, &w, "shop", &w.units[0]).await;
    let mut body = plan_body(&app, 3, 2);
    body["criteria"] =
        json!({"categories": ["3110", "3000", "3110"], "flags": ["public_gathering"]});
    let r = app
        .post("/api/v1/surprise-plans", w.t("city"), body.clone())
        .await;
    r.expect(201);
    let p = r.body.clone();
    let id = uid(&p);
    assert_eq!(
        r.header("location"),
        Some(format!("/api/v1/surprise-plans/{id}").as_str())
    );
    assert!(is_hex64(&p["seed_commitment"]), "{p}");
    assert_eq!(p["status"], "open");
    assert_eq!(p["algorithm"], "xuncha-draw-v1");
    assert_eq!(p["reveal"], "window_start");
    assert_eq!(p["region_code"], "330100");
    assert_eq!(p["target_count"], 3);
    assert_eq!(p["team_size"], 2);
    assert_eq!(p["created_by"], w.id("city"));
    assert!(p["pool_hash"].is_null() && p["drawn_at"].is_null());
    assert_eq!(p["assignments"], json!([]));
    assert_eq!(
        p["criteria"],
        json!({"categories": ["3000", "3110"], "flags": ["public_gathering"]})
    );
    // The secret itself is nowhere before the window closes.
    assert!(p.get("seed").is_none(), "{p}");
    let r = app
        .get(&format!("/api/v1/surprise-plans/{id}"), w.t("city"))
        .await;
    r.expect(200);
    assert_eq!(r.body["seed_commitment"], p["seed_commitment"]);
    assert!(r.body.get("seed").is_none());
    // Each plan its own seed.
    let other = new_plan(&app, w.t("city"), plan_body(&app, 1, 2)).await;
    assert_ne!(other["seed_commitment"], p["seed_commitment"]);
    // The commitment is in the audit log from the start.
    let entries = audit(
        &app,
        w.t("city"),
        &format!("&entity_table=surprise_plans&entity_id={id}"),
    )
    .await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["action"], "surprise.plan");
    assert_eq!(entries[0]["after"]["seed_commitment"], p["seed_commitment"]);
    assert_eq!(entries[0]["actor_id"], w.id("city"));

    // Inspectors and unit users plan nothing, and see no plan.
    for token in [w.t("ins1"), w.t("rookie"), shop.token.as_str()] {
        app.post("/api/v1/surprise-plans", token, body.clone())
            .await
            .expect_error(403, "forbidden");
        app.get("/api/v1/surprise-plans", token)
            .await
            .expect_error(403, "forbidden");
        draw_req(&app, token, &id)
            .await
            .expect_error(403, "forbidden");
        for path in ["", "/verification", "/reads"] {
            app.get(&format!("/api/v1/surprise-plans/{id}{path}"), token)
                .await
                .expect_error(404, "not_found");
        }
    }
    // Managers whose region does not cover the plan's: 404, word for word as an unknown plan.
    let unknown = app
        .get(&format!("/api/v1/surprise-plans/{}", new_id()), w.t("mgr5"))
        .await;
    unknown.expect_error(404, "not_found");
    for m in ["mgr5", "mgr6", "nbmgr"] {
        let r = app
            .get(&format!("/api/v1/surprise-plans/{id}"), w.t(m))
            .await;
        r.expect(404);
        assert_eq!(r.text, unknown.text, "{m}");
        let r = draw_req(&app, w.t(m), &id).await;
        r.expect(404);
        assert_eq!(r.text, unknown.text, "{m}");
    }
    app.get("/api/v1/surprise-plans/not-a-uuid", w.t("city"))
        .await
        .expect_error(404, "not_found");

    // A district manager plans for their district only; the city's manager sees those too.
    let mut b5 = plan_body(&app, 1, 2);
    let r = app
        .post("/api/v1/surprise-plans", w.t("mgr5"), b5.clone())
        .await;
    r.expect_error(422, "validation_failed");
    assert!(
        r.body["error"]["fields"]["region_code"].is_string(),
        "{}",
        r.text
    );
    b5["region_code"] = json!("330105");
    let p5 = new_plan(&app, w.t("mgr5"), b5).await;
    app.get(&format!("/api/v1/surprise-plans/{}", uid(&p5)), w.t("city"))
        .await
        .expect(200);
    app.get(&format!("/api/v1/surprise-plans/{}", uid(&p5)), w.t("mgr6"))
        .await
        .expect(404);
    let listed = |r: &Resp| -> BTreeSet<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(uid)
            .collect()
    };
    let r = app.get("/api/v1/surprise-plans", w.t("city")).await;
    r.expect(200);
    assert_eq!(
        listed(&r),
        BTreeSet::from([id.clone(), uid(&other), uid(&p5)])
    );
    let r = app.get("/api/v1/surprise-plans", w.t("mgr5")).await;
    assert_eq!(listed(&r), BTreeSet::from([uid(&p5)]));
    let r = app.get("/api/v1/surprise-plans", w.t("nbmgr")).await;
    assert!(listed(&r).is_empty());

    // Validation: each bad field named.
    let cases: Vec<(&str, Value)> = vec![
        ("team_size", json!({"team_size": 1})),
        ("team_size", json!({"team_size": 11})),
        ("target_count", json!({"target_count": 0})),
        ("target_count", json!({"target_count": -3})),
        (
            "window_end",
            json!({"window_end": at(&app, Duration::minutes(30))}),
        ),
        (
            "window_end",
            json!({"window_start": at(&app, -Duration::days(3)), "window_end": at(&app, -Duration::days(2))}),
        ),
        (
            "window_end",
            json!({"window_end": at(&app, Duration::days(120))}),
        ),
        (
            "criteria.flags",
            json!({"criteria": {"flags": ["nice_view"]}}),
        ),
        (
            "criteria.categories",
            json!({"criteria": {"categories": ["31"]}}),
        ),
        ("reveal", json!({"reveal": "whenever"})),
        ("min_key_share", json!({"min_key_share": 101})),
        ("region_code", json!({"region_code": "33"})),
        ("title", json!({"title": ""})),
    ];
    for (field, patch) in cases {
        let mut b = plan_body(&app, 3, 2);
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        let r = app.post("/api/v1/surprise-plans", w.t("city"), b).await;
        r.expect_error(422, "validation_failed");
        assert!(
            r.body["error"]["fields"][field].is_string(),
            "{field}: {}",
            r.text
        );
    }
    // None of them made a plan.
    let r = app.get("/api/v1/surprise-plans", w.t("city")).await;
    assert_eq!(listed(&r).len(), 3);
    // Criteria select the pool: a top-level category takes its sub-categories (only the first
    // unit holds a boiler, 2100), an exact code only itself (no unit holds a 2200).
    for (categories, units) in [
        (json!(["2000"]), vec![&w.units[0]]),
        (json!(["2200"]), vec![]),
    ] {
        let mut b = plan_body(&app, 3, 2);
        b["criteria"] = json!({ "categories": categories });
        let p = new_plan(&app, w.t("city"), b).await;
        let plan = draw(&app, w.t("city"), &uid(&p)).await;
        let truth = drawn(&app);
        let got: Vec<&String> = targets(&plan).iter().map(|t| &truth[&uid(t)].0).collect();
        assert_eq!(got, units, "{categories}: {plan}");
    }
}

async fn a_draw_makes_sealed_teams_of_the_region_once(app: TestApp) {
    let w = world(&app).await;
    let p = new_plan(&app, w.t("city"), plan_body(&app, 3, 2)).await;
    let id = uid(&p);
    // Three draws at once: exactly one draws.
    let draws =
        futures_util::future::join_all((0..3).map(|_| draw_req(&app, w.t("city"), &id))).await;
    let ok: Vec<&Resp> = draws.iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        ok.len(),
        1,
        "{:?}",
        draws.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    for r in draws.iter().filter(|r| r.status != 200) {
        r.expect_error(409, "already_drawn");
    }
    let plan = ok[0].body.clone();
    assert_eq!(plan["status"], "drawn");
    assert!(is_hex64(&plan["pool_hash"]), "{plan}");
    assert!(plan["drawn_at"].is_string());
    assert_eq!(plan["seed_commitment"], p["seed_commitment"]);
    let ts = targets(&plan);
    assert_eq!(ts.len(), 3, "{plan}");
    let pool: BTreeSet<&str> = INSPECTORS.iter().map(|n| w.id(n)).collect();
    let mut load: BTreeMap<String, u32> = BTreeMap::new();
    for t in &ts {
        // The plan names no target while it is sealed.
        assert_eq!(t["sealed"], true, "{t}");
        assert!(t["unit_id"].is_null(), "{t}");
        assert!(t["equipment_ids"].is_null(), "{t}");
        assert!(t["status"].is_null(), "{t}");
        assert_eq!(t["reveal_at"], p["window_start"]);
        let team = strings(&t["team"]);
        assert_eq!(team.len(), 2);
        assert_ne!(team[0], team[1]);
        for m in &team {
            // Only credentialed inspectors of the plan's region (not `rookie`, not `far`).
            assert!(pool.contains(m.as_str()), "{m} is not in the pool");
            *load.entry(m.clone()).or_default() += 1;
        }
    }
    // Six seats for five idle inspectors: the load is spread (everyone once, one twice).
    let mut counts: Vec<u32> = load.values().copied().collect();
    counts.sort();
    assert_eq!(counts, [1, 1, 1, 1, 2], "{load:?}");
    // The assignments behind them: distinct units of the region, the teams as the plan says.
    let truth = drawn(&app);
    assert_eq!(truth.len(), 3);
    let units: BTreeSet<&str> = truth.values().map(|(u, _)| u.as_str()).collect();
    assert_eq!(units.len(), 3);
    assert!(units.iter().all(|u| w.units.iter().any(|x| x == u)));
    for t in &ts {
        assert_eq!(truth[&uid(t)].1, strings(&t["team"]));
    }
    let mut db = Direct::open(&app);
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM assignments WHERE kind = 'surprise' AND sealed AND status = 'scheduled'"),
        3
    );
    // Read again, listed, drawn again: still sealed, still one draw.
    let r = app
        .get(&format!("/api/v1/surprise-plans/{id}"), w.t("city"))
        .await;
    r.expect(200);
    assert_eq!(r.body["assignments"], plan["assignments"]);
    draw_req(&app, w.t("city"), &id)
        .await
        .expect_error(409, "already_drawn");
    let r = app.get("/api/v1/surprise-plans", w.t("city")).await;
    let listed = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| uid(x) == id)
        .unwrap()
        .clone();
    assert_eq!(listed["assignments"], plan["assignments"]);
    // The manager sees the shell through the assignment endpoints, and cannot edit it there.
    let a = uid(&ts[0]);
    let r = app
        .get(&format!("/api/v1/assignments/{a}"), w.t("city"))
        .await;
    r.expect(200);
    assert_shell(&r.body);
    app.patch(
        &format!("/api/v1/assignments/{a}"),
        w.t("city"),
        json!({"notes": "提前通知"}),
    )
    .await
    .expect_error(409, "sealed");
    let r = app
        .req(
            Method::DELETE,
            &format!("/api/v1/assignments/{a}"),
            Some(w.t("city")),
            None,
        )
        .await;
    r.expect(409);
    assert_eq!(drawn(&app).len(), 3);
    // Hand-made unannounced checks do not exist.
    let r = app
        .post(
            "/api/v1/assignments",
            w.t("city"),
            json!({"kind": "surprise", "unit_id": w.units[0], "team": [w.id("ins1"), w.id("ins2")],
                   "window_start": at(&app, Duration::hours(1)), "window_end": at(&app, Duration::days(1))}),
        )
        .await;
    r.expect_error(422, "validation_failed");
    // An empty pool (no unit is blacklisted) draws nothing, and that is no failure.
    let mut b = plan_body(&app, 2, 2);
    b["criteria"] = json!({"flags": ["blacklisted"]});
    let empty = new_plan(&app, w.t("city"), b).await;
    let r = draw(&app, w.t("city"), &uid(&empty)).await;
    assert_eq!(r["status"], "drawn");
    assert_eq!(r["assignments"], json!([]));
    assert_eq!(drawn(&app).len(), 3);
    // The draw's audit entry: the pool hash and a count, no target.
    let entries = audit(
        &app,
        w.t("city"),
        &format!("&entity_table=surprise_plans&entity_id={id}"),
    )
    .await;
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["surprise.plan", "surprise.draw"]);
    assert_eq!(entries[1]["after"]["pool_hash"], plan["pool_hash"]);
    assert_eq!(entries[1]["after"]["targets"], 3);
}

async fn sealed_targets_leak_through_no_read_path(app: TestApp) {
    let w = world(&app).await;
    let secrets = w.secrets();
    // Every inspector's phone is in sync before the draw.
    let mut phones = Vec::new();
    for name in INSPECTORS {
        let mut d = Device::new(&app, name, &format!("phone-{name}")).await;
        d.sync(&app).await;
        phones.push(d);
    }
    let p = new_plan(&app, w.t("city"), plan_body(&app, 3, 2)).await;
    let plan_id = uid(&p);
    let plan = draw(&app, w.t("city"), &plan_id).await;
    let ts = targets(&plan);
    let truth = drawn(&app);
    let all_ids: BTreeSet<String> = ts.iter().map(uid).collect();

    // Pull: the next incremental pull, and a fresh initial sync, of every inspector carry the
    // shells of their own targets and nothing of any target unit.
    for phone in &mut phones {
        let me = w.id(&phone.user).to_string();
        let mine: BTreeSet<String> = ts
            .iter()
            .filter(|t| strings(&t["team"]).contains(&me))
            .map(uid)
            .collect();
        let mut fresh = Device::new(&app, &phone.user, &format!("fresh-{}", phone.user)).await;
        for (how, s) in [
            ("incremental", phone.sync(&app).await),
            ("initial", fresh.sync(&app).await),
        ] {
            let what = format!("{}'s {how} pull", phone.user);
            assert_eq!(s.put_ids("assignments"), mine, "{what}");
            for c in s.puts("assignments") {
                assert_shell(&c["data"]);
            }
            assert!(s.puts("units").is_empty(), "{what}: {}", s.text);
            assert!(s.puts("equipment").is_empty(), "{what}: {}", s.text);
            assert_secret_free(&s.text, &secrets, &what);
        }
    }

    let a = &ts[0];
    let a_id = uid(a);
    let a_team = strings(&a["team"]);
    let a_unit = truth[&a_id].0.clone();
    let member = w.name_of(&a_team[0]).to_string();
    let outsider = INSPECTORS
        .iter()
        .find(|n| !a_team.iter().any(|m| m == w.id(n)))
        .unwrap()
        .to_string();

    // REST for a member: the shell, by id and in lists; a filter on the target finds nothing.
    let r = app
        .get(&format!("/api/v1/assignments/{a_id}"), w.t(&member))
        .await;
    r.expect(200);
    assert_shell(&r.body);
    assert_eq!(strings(&r.body["team"]), a_team);
    assert_secret_free(&r.text, &secrets, "GET assignment");
    for q in ["", "?kind=surprise", "?status=scheduled"] {
        let r = app
            .get(&format!("/api/v1/assignments{q}"), w.t(&member))
            .await;
        r.expect(200);
        let items = r.body["items"].as_array().unwrap();
        assert!(items.iter().any(|x| uid(x) == a_id), "{q}: {}", r.text);
        for x in items {
            assert_shell(x);
        }
        assert_secret_free(&r.text, &secrets, "assignment list");
    }
    for who in [member.as_str(), "city", "admin"] {
        let r = app
            .get(&format!("/api/v1/assignments?unit_id={a_unit}"), w.t(who))
            .await;
        r.expect(200);
        assert_eq!(r.body["items"], json!([]), "{who}: {}", r.text);
    }
    // A sealed check cannot be started.
    let mut phone = Device::new(&app, &member, "phone-member-start").await;
    let res = phone
        .push(
            &app,
            "inspection.start",
            json!({"id": new_id(), "assignment_id": a_id, "started_at": at(&app, Duration::zero())}),
        )
        .await;
    assert_eq!(res["status"], "rejected", "{res}");
    assert_eq!(res["error"]["code"], "sealed", "{res}");
    assert_secret_free(&res.to_string(), &secrets, "the refusal");

    // Anyone else off the team: exactly the answer of an id that does not exist.
    let ghost = new_id();
    for (who, path) in [
        (outsider.as_str(), "/api/v1/assignments/{}"),
        ("rookie", "/api/v1/assignments/{}"),
        ("far", "/api/v1/assignments/{}"),
    ] {
        let r = app.get(&path.replace("{}", &a_id), w.t(who)).await;
        let g = app.get(&path.replace("{}", &ghost), w.t(who)).await;
        r.expect_error(404, "not_found");
        assert_eq!((r.status, &r.text), (g.status, &g.text), "{who}");
        let r = dispatch(&app, w.t(who), &a_id).await;
        let g = dispatch(&app, w.t(who), &ghost).await;
        r.expect_error(404, "not_found");
        assert_eq!((r.status, &r.text), (g.status, &g.text), "{who}");
        let r = app.get("/api/v1/assignments", w.t(who)).await;
        let listed: BTreeSet<String> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(uid)
            .collect();
        assert!(
            listed.is_disjoint(&all_ids) || who == outsider,
            "{who}: {}",
            r.text
        );
        assert!(!listed.contains(&a_id), "{who}");
    }

    // The audit log: since the plan was made, nothing names a unit or piece of equipment of
    // the region, and the drawn assignments have no entries of their own yet.
    let log = audit(&app, w.t("admin"), "").await;
    let from = log
        .iter()
        .find(|e| e["action"] == "surprise.plan" && e["entity_id"] == plan_id.as_str())
        .unwrap()["seq"]
        .as_i64()
        .unwrap();
    let since: Vec<&Value> = log
        .iter()
        .filter(|e| e["seq"].as_i64().unwrap() >= from)
        .collect();
    assert!(since.iter().any(|e| e["action"] == "surprise.draw"));
    for e in &since {
        assert_secret_free(&e.to_string(), &secrets, "an audit entry");
        assert!(
            !all_ids.contains(e["entity_id"].as_str().unwrap()),
            "an entry about a sealed assignment: {e}"
        );
    }

    // The unit itself never sees it: not by id, not in lists, not in its pull.
    let mut shop = unit_user(&app, &w, "shop", &a_unit).await;
    let r = app
        .get(&format!("/api/v1/assignments/{a_id}"), &shop.token)
        .await;
    let g = app
        .get(&format!("/api/v1/assignments/{ghost}"), &shop.token)
        .await;
    r.expect_error(404, "not_found");
    assert_eq!(r.text, g.text);
    let r = app.get("/api/v1/assignments", &shop.token).await;
    r.expect(200);
    assert_eq!(r.body["items"], json!([]));
    let s = shop.sync(&app).await;
    assert!(
        s.puts("units").iter().any(|c| uid(c) == a_unit),
        "its own unit"
    );
    assert!(s.puts("assignments").is_empty(), "{}", s.text);
    assert_secret_free(
        &s.text,
        &all_ids.iter().cloned().collect::<Vec<_>>(),
        "the unit's pull",
    );
}

async fn dispatch_reveals_a_target_to_its_team_once(app: TestApp) {
    let mut w = world(&app).await;
    let mut b = plan_body(&app, 2, 2);
    b["reveal"] = json!("dispatch");
    let p = new_plan(&app, w.t("city"), b).await;
    assert_eq!(p["reveal"], "dispatch");
    let plan = draw(&app, w.t("city"), &uid(&p)).await;
    let ts = targets(&plan);
    assert!(ts.iter().all(|t| t["reveal_at"].is_null()), "{plan}");
    let truth = drawn(&app);
    let (a, b) = (uid(&ts[0]), uid(&ts[1]));
    let a_team = strings(&ts[0]["team"]);
    let b_team = strings(&ts[1]["team"]);
    // Two teams of two from five idle inspectors: four different people, one left over.
    assert!(a_team.iter().all(|m| !b_team.contains(m)));
    let (m1, m2) = (
        w.name_of(&a_team[0]).to_string(),
        w.name_of(&a_team[1]).to_string(),
    );
    let b1 = w.name_of(&b_team[0]).to_string();
    let outsider = INSPECTORS
        .iter()
        .find(|n| !a_team.contains(&w.id(n).to_string()) && !b_team.contains(&w.id(n).to_string()))
        .unwrap()
        .to_string();
    let a_unit = truth[&a].0.clone();
    let mut ph1 = Device::new(&app, &m1, "phone-m1").await;
    let mut ph2 = Device::new(&app, &m2, "phone-m2").await;
    let mut phb = Device::new(&app, &b1, "phone-b1").await;
    let mut pho = Device::new(&app, &outsider, "phone-outsider").await;
    for d in [&mut ph1, &mut ph2, &mut phb] {
        d.sync(&app).await;
    }
    assert_shell(ph1.row("assignments", &a).unwrap());
    assert!(ph1.row("units", &a_unit).is_none());

    // Before the window opens: refused, through REST and through push.
    dispatch(&app, w.t(&m1), &a)
        .await
        .expect_error(409, "window_not_open");
    let res = phb
        .push(&app, "assignment.dispatch", json!({"id": b}))
        .await;
    assert_eq!(res["status"], "rejected", "{res}");
    assert_eq!(res["error"]["code"], "window_not_open", "{res}");

    // Into the window. A dispatch-only plan is not revealed by the clock.
    app.clock.advance(Duration::hours(2));
    w.relogin(&app).await;
    for d in [&mut ph1, &mut ph2, &mut phb, &mut pho] {
        d.relogin(&app).await;
    }
    assert_eq!(reveal_due(&app).await, 0);
    let r = app.get(&format!("/api/v1/assignments/{a}"), w.t(&m1)).await;
    assert_shell(&r.body);
    // Off the team: not found, word for word as an unknown id. A manager is not on it either.
    let ghost = new_id();
    let r = dispatch(&app, w.t(&outsider), &a).await;
    let g = dispatch(&app, w.t(&outsider), &ghost).await;
    r.expect_error(404, "not_found");
    assert_eq!(r.text, g.text);
    dispatch(&app, w.t("city"), &a)
        .await
        .expect_error(403, "forbidden");
    assert!(reveals(&app, &w, &a).await.is_empty());

    // Both members dispatch at once: both see the target, it is revealed once.
    let (r1, r2) =
        futures_util::future::join(dispatch(&app, w.t(&m1), &a), dispatch(&app, w.t(&m2), &a))
            .await;
    for r in [&r1, &r2] {
        r.expect(200);
        assert_eq!(r.body["sealed"], false, "{}", r.text);
        assert_eq!(r.body["kind"], "surprise");
        assert_eq!(r.body["unit_id"], a_unit.as_str());
        assert_eq!(r.body["region_code"], "330105");
        assert_eq!(r.body["status"], "scheduled");
        let eq = strings(&r.body["equipment_ids"]);
        assert!(!eq.is_empty());
        assert!(
            eq.iter().all(|e| w.equipment[&a_unit].contains(e)),
            "{}",
            r.text
        );
    }
    let rv = reveals(&app, &w, &a).await;
    assert_eq!(rv.len(), 1, "{rv:?}");
    assert!(
        [w.id(&m1), w.id(&m2)].contains(&rv[0]["actor_id"].as_str().unwrap()),
        "{rv:?}"
    );
    // The entry names the team, not the target (managers read the log unaudited).
    assert_eq!(rv[0]["after"]["sealed"], false, "{rv:?}");
    assert_eq!(strings(&rv[0]["after"]["team"]), a_team);
    assert_secret_free(&rv[0].to_string(), &w.secrets(), "the reveal entry");
    // A later dispatch is harmless.
    dispatch(&app, w.t(&m1), &a).await.expect(200);
    assert_eq!(reveals(&app, &w, &a).await.len(), 1);

    // The team's phones get the assignment, the unit and its equipment on their next pull.
    for d in [&mut ph1, &mut ph2] {
        let s = d.sync(&app).await;
        let got = s.puts("assignments");
        let row = got.iter().find(|c| uid(c) == a).expect("the assignment");
        assert_eq!(row["data"]["sealed"], false);
        assert_eq!(row["data"]["unit_id"], a_unit.as_str());
        assert!(
            s.put_ids("units").contains(&a_unit),
            "{}: {}",
            d.user,
            s.text
        );
        let eq: BTreeSet<String> = w.equipment[&a_unit].iter().cloned().collect();
        assert!(
            s.put_ids("equipment").is_superset(&eq),
            "{}: {}",
            d.user,
            s.text
        );
        assert!(d.row("units", &a_unit).is_some());
    }
    // Others' phones do not.
    let s = phb.sync(&app).await;
    assert!(!s.put_ids("units").contains(&a_unit));
    assert!(phb.row("assignments", &a).is_none());
    assert_secret_free(
        &s.text,
        std::slice::from_ref(&a_unit),
        "another team's pull",
    );
    // The revealed check can be started.
    let res = ph1
        .push(
            &app,
            "inspection.start",
            json!({"id": new_id(), "assignment_id": a, "started_at": at(&app, Duration::zero())}),
        )
        .await;
    assert_eq!(res["status"], "applied", "{res}");

    // Dispatch through push: by someone off the team, not found; by a member, applied.
    let res = pho
        .push(&app, "assignment.dispatch", json!({"id": b}))
        .await;
    assert_eq!(res["status"], "rejected", "{res}");
    assert_eq!(res["error"]["code"], "not_found", "{res}");
    let res = phb
        .push(&app, "assignment.dispatch", json!({"id": b}))
        .await;
    assert_eq!(res["status"], "applied", "{res}");
    let r = app
        .get(&format!("/api/v1/assignments/{b}"), &phb.token)
        .await;
    assert_eq!(r.body["sealed"], false, "{}", r.text);
    assert_eq!(r.body["unit_id"], truth[&b].0.as_str());
    let rv = reveals(&app, &w, &b).await;
    assert_eq!(rv.len(), 1, "{rv:?}");
    assert_eq!(rv[0]["actor_id"], w.id(&b1));
    let s = phb.sync(&app).await;
    assert!(s.put_ids("units").contains(&truth[&b].0), "{}", s.text);

    // The plan now names both targets.
    let r = app
        .get(&format!("/api/v1/surprise-plans/{}", uid(&p)), w.t("city"))
        .await;
    for t in r.body["assignments"].as_array().unwrap() {
        assert_eq!(t["sealed"], false);
        assert_eq!(t["unit_id"], truth[&uid(t)].0.as_str());
        // (The first team has started its inspection.)
        let status = if uid(t) == a {
            "in_progress"
        } else {
            "scheduled"
        };
        assert_eq!(t["status"], status);
    }
    // The unit still sees nothing of it.
    let mut shop = unit_user(&app, &w, "shop", &a_unit).await;
    app.get(&format!("/api/v1/assignments/{a}"), &shop.token)
        .await
        .expect_error(404, "not_found");
    let s = shop.sync(&app).await;
    assert!(s.puts("assignments").is_empty(), "{}", s.text);
    // After the window, no dispatch.
    app.clock.advance(Duration::days(2));
    w.relogin(&app).await;
    dispatch(&app, w.t(&m1), &a)
        .await
        .expect_error(409, "window_closed");
}

async fn reveal_by_time_happens_once_across_servers(app: TestApp) {
    let mut w = world(&app).await;
    let p = new_plan(&app, w.t("city"), plan_body(&app, 3, 2)).await;
    let plan = draw(&app, w.t("city"), &uid(&p)).await;
    let ts = targets(&plan);
    let ids: Vec<String> = ts.iter().map(uid).collect();
    let truth = drawn(&app);
    let member = w.name_of(&strings(&ts[0]["team"])[0]).to_string();
    let mut phone = Device::new(&app, &member, "phone-member").await;
    phone.sync(&app).await;
    let app2 = app.spawn_beside(|_| {}).await;
    // Not before the window opens.
    assert_eq!(reveal_due(&app).await, 0);
    assert_eq!(reveal_due(&app2).await, 0);
    app.clock.advance(Duration::hours(2));
    app2.clock.advance(Duration::hours(2));
    w.relogin(&app).await;
    phone.relogin(&app).await;
    // Both servers' jobs, three runs each, at once: each target revealed exactly once.
    let now = app.clock.now();
    let runs = (0..6).map(|i| {
        let db = if i % 2 == 0 {
            app.server_db()
        } else {
            app2.server_db()
        };
        db.run(move |conn| xuncha::surprise::service::reveal_due(conn, now))
    });
    let counts: Vec<usize> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 3, "{counts:?}");
    assert_eq!(reveal_due(&app2).await, 0);
    app.settle().await;
    app2.settle().await;
    for id in &ids {
        let rv = reveals(&app, &w, id).await;
        assert_eq!(rv.len(), 1, "{id}: {rv:?}");
        assert!(
            rv[0]["actor_id"].is_null(),
            "the server revealed it: {rv:?}"
        );
    }
    let mut db = Direct::open(&app);
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM assignments WHERE kind = 'surprise' AND sealed"),
        0
    );
    // The member's phone, now pulling from the other server, gets the target in full.
    let s = phone.sync(&app2).await;
    let unit = &truth[&ids[0]].0;
    let row = s
        .puts("assignments")
        .into_iter()
        .find(|c| uid(c) == ids[0])
        .expect("the revealed assignment");
    assert_eq!(row["data"]["sealed"], false);
    assert_eq!(row["data"]["unit_id"], unit.as_str());
    assert!(s.put_ids("units").contains(unit), "{}", s.text);
    let eq: BTreeSet<String> = w.equipment[unit].iter().cloned().collect();
    assert!(s.put_ids("equipment").is_superset(&eq), "{}", s.text);
    // Either server's plan page names them now.
    let r = app2
        .get(&format!("/api/v1/surprise-plans/{}", uid(&p)), w.t("city"))
        .await;
    r.expect(200);
    for t in r.body["assignments"].as_array().unwrap() {
        assert_eq!(t["sealed"], false);
        assert_eq!(t["unit_id"], truth[&uid(t)].0.as_str());
        assert_eq!(t["reveal_at"], p["window_start"]);
    }
}

async fn reads_of_revealed_targets_are_audited(app: TestApp) {
    let mut w = world(&app).await;
    let p = new_plan(&app, w.t("city"), plan_body(&app, 2, 2)).await;
    let plan_id = uid(&p);
    let plan = draw(&app, w.t("city"), &plan_id).await;
    let ts = targets(&plan);
    let (a, b) = (uid(&ts[0]), uid(&ts[1]));
    let member = w.name_of(&strings(&ts[0]["team"])[0]).to_string();
    let m_id = w.id(&member).to_string();
    let city_id = w.id("city").to_string();
    let mut phone = Device::new(&app, &member, "phone-member").await;
    phone.sync(&app).await;
    let reads_path = format!("/api/v1/surprise-plans/{plan_id}/reads");
    // Sealed reads name nothing, and are not target reads.
    app.get(&format!("/api/v1/assignments/{a}"), w.t(&member))
        .await
        .expect(200);
    app.get(&format!("/api/v1/surprise-plans/{plan_id}"), w.t("city"))
        .await
        .expect(200);
    let r = app.get(&reads_path, w.t("city")).await;
    r.expect(200);
    assert_eq!(r.body["items"], json!([]));

    app.clock.advance(Duration::hours(2));
    w.relogin(&app).await;
    phone.relogin(&app).await;
    assert_eq!(reveal_due(&app).await, 2);
    // A pull that delivers the target, a read by id, the plan's page, a list.
    let s = phone.sync(&app).await;
    assert!(s.put_ids("assignments").contains(&a));
    app.get(&format!("/api/v1/assignments/{a}"), w.t(&member))
        .await
        .expect(200);
    app.get(&format!("/api/v1/surprise-plans/{plan_id}"), w.t("city"))
        .await
        .expect(200);
    app.get("/api/v1/assignments?kind=surprise", w.t("city"))
        .await
        .expect(200);
    let r = app.get(&reads_path, w.t("city")).await;
    r.expect(200);
    let items = r.body["items"].as_array().unwrap().clone();
    let mut got: Vec<(String, String, String)> = items
        .iter()
        .map(|e| {
            assert!(e["at"].is_string(), "{e}");
            assert!(e["device_pk"].is_string(), "{e}");
            (
                e["assignment_id"].as_str().unwrap().to_string(),
                e["user_id"].as_str().unwrap().to_string(),
                e["via"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (a.clone(), m_id.clone(), "pull".to_string()),
        (a.clone(), m_id.clone(), "assignment".to_string()),
        (a.clone(), city_id.clone(), "plan".to_string()),
        (b.clone(), city_id.clone(), "plan".to_string()),
        (a.clone(), city_id.clone(), "assignment".to_string()),
        (b.clone(), city_id.clone(), "assignment".to_string()),
    ];
    want.sort();
    assert_eq!(got, want, "{}", r.text);
    // The same reads are in the audit log.
    let log = audit(&app, w.t("city"), &format!("&entity_id={a}")).await;
    let logged: Vec<&Value> = log
        .iter()
        .filter(|e| e["action"] == "surprise.target_read")
        .collect();
    assert_eq!(logged.len(), 4);
    // Neither they nor the reveal name the target: the log is read by more than the team.
    let reveal = log
        .iter()
        .find(|e| e["action"] == "surprise.reveal")
        .unwrap();
    for e in logged.iter().copied().chain([reveal]) {
        assert_secret_free(&e.to_string(), &w.secrets(), "an audit entry of the target");
    }
    // Only the plan's managers list them.
    for who in ["mgr5", "mgr6", member.as_str(), "far"] {
        app.get(&reads_path, w.t(who))
            .await
            .expect_error(404, "not_found");
    }
    // Once the window is over, reading the target is no longer audited.
    app.clock.advance(Duration::days(2));
    w.relogin(&app).await;
    app.get(&format!("/api/v1/assignments/{a}"), w.t(&member))
        .await
        .expect(200);
    app.get(&format!("/api/v1/surprise-plans/{plan_id}"), w.t("city"))
        .await
        .expect(200);
    let r = app.get(&reads_path, w.t("city")).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 6, "{}", r.text);
}

async fn recusals_keep_inspectors_off_their_units(app: TestApp) {
    let mut w = world(&app).await;
    // Four units of 330108, each with a crane (4100): the only ones a 4100 plan draws from.
    let mut r_units = Vec::new();
    for n in 1..=4u32 {
        let u = add_unit(&app, w.t("city"), "330108", n, "industrial").await;
        add_equipment(&app, w.t("city"), &u, "4100", 300 + n).await;
        r_units.push(u);
    }
    let (r1, r2, r3, r4) = (&r_units[0], &r_units[1], &r_units[2], &r_units[3]);
    let recuse = |token: &str, body: Value| {
        let token = token.to_string();
        let app = &app;
        async move { app.post("/api/v1/recusals", &token, body).await }
    };
    // ins1 declares a conflict with every one of them.
    let r = recuse(
        w.t("ins1"),
        json!({"unit_id": r1, "reason": "declared", "note": "亲属任职"}),
    )
    .await;
    r.expect(201);
    assert_eq!(r.body["user_id"], w.id("ins1"));
    assert_eq!(r.body["unit_id"], r1.as_str());
    assert_eq!(r.body["reason"], "declared");
    assert_eq!(r.body["created_by"], w.id("ins1"));
    recuse(w.t("ins1"), json!({"unit_id": r1, "reason": "declared"}))
        .await
        .expect_error(409, "already_exists");
    for u in [r2, r3, r4] {
        recuse(
            w.t("ins1"),
            json!({"unit_id": u, "reason": "declared", "user_id": w.id("ins1")}),
        )
        .await
        .expect(201);
    }
    // Only their own.
    recuse(
        w.t("ins1"),
        json!({"unit_id": r3, "reason": "declared", "user_id": w.id("ins2")}),
    )
    .await
    .expect_error(403, "forbidden");
    recuse(w.t("ins4"), json!({"unit_id": r4, "reason": "declared"}))
        .await
        .expect(201);
    // Managers record kinship and employment for the inspectors of their region.
    let r = recuse(
        w.t("city"),
        json!({"unit_id": r2, "reason": "kinship", "user_id": w.id("ins2")}),
    )
    .await;
    r.expect(201);
    assert_eq!(r.body["created_by"], w.id("city"));
    assert_eq!(r.body["user_id"], w.id("ins2"));
    recuse(
        w.t("city"),
        json!({"unit_id": r4, "reason": "kinship", "user_id": w.id("ins2")}),
    )
    .await
    .expect(201);
    recuse(
        w.t("mgr6"),
        json!({"unit_id": r4, "reason": "employment", "user_id": w.id("ins3")}),
    )
    .await
    .expect(201);
    for (token, body, field) in [
        (
            "city",
            json!({"unit_id": r3, "reason": "kinship"}),
            "user_id",
        ),
        (
            "city",
            json!({"unit_id": r3, "reason": "grudge", "user_id": w.id("ins3")}),
            "reason",
        ),
        (
            "city",
            json!({"unit_id": new_id(), "reason": "kinship", "user_id": w.id("ins3")}),
            "unit_id",
        ),
        (
            "nbmgr",
            json!({"unit_id": r3, "reason": "kinship", "user_id": w.id("ins3")}),
            "user_id",
        ),
        (
            "city",
            json!({"unit_id": r3, "reason": "kinship", "user_id": w.id("mgr6")}),
            "user_id",
        ),
    ] {
        let r = recuse(w.t(token), body).await;
        r.expect_error(422, "validation_failed");
        assert!(r.body["error"]["fields"][field].is_string(), "{}", r.text);
    }
    let r = app.get("/api/v1/recusals", w.t("ins1")).await;
    r.expect(200);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert!(items.iter().all(|x| x["user_id"] == w.id("ins1")));
    let r = app
        .get(
            &format!("/api/v1/recusals?user_id={}", w.id("ins2")),
            w.t("city"),
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2, "{}", r.text);
    let r = app.get("/api/v1/recusals", w.t("city")).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 8, "{}", r.text);
    let r = app.get("/api/v1/recusals", w.t("nbmgr")).await;
    assert_eq!(r.body["items"], json!([]));

    // Checked recently: ins2 and ins3 were on an assignment of r1 two months ago (recused);
    // ins4 and ins5 on one of r3 fourteen months ago (outside the 12 months: not recused).
    for (unit, team, ago) in [(r1, ["ins2", "ins3"], 60), (r3, ["ins4", "ins5"], 425)] {
        app.post(
            "/api/v1/assignments",
            w.t("city"),
            json!({"kind": "routine", "unit_id": unit, "team": [w.id(team[0]), w.id(team[1])],
                   "window_start": at(&app, -Duration::days(ago)),
                   "window_end": at(&app, -Duration::days(ago - 1))}),
        )
        .await
        .expect(201);
    }

    // Who is free for what: r1 {ins4, ins5}; r2 {ins3, ins4, ins5}; r3 {ins2..ins5};
    // r4 {ins5} only, one short of a team: skipped, and the plan draws three instead of four.
    let mut b = plan_body(&app, 4, 2);
    b["criteria"] = json!({"categories": ["4100"]});
    let p = new_plan(&app, w.t("city"), b).await;
    let plan = draw(&app, w.t("city"), &uid(&p)).await;
    assert_eq!(plan["status"], "drawn");
    let ts = targets(&plan);
    assert_eq!(ts.len(), 3, "{plan}");
    let truth = drawn(&app);
    let by_unit: BTreeMap<String, BTreeSet<String>> = ts
        .iter()
        .map(|t| {
            let (unit, team) = &truth[&uid(t)];
            let names = team.iter().map(|m| w.name_of(m).to_string()).collect();
            (unit.clone(), names)
        })
        .collect();
    assert_eq!(
        by_unit.keys().collect::<BTreeSet<_>>(),
        BTreeSet::from([r1, r2, r3]),
        "{by_unit:?}"
    );
    assert!(by_unit.values().all(|t| !t.contains("ins1")), "{by_unit:?}");
    assert_eq!(
        by_unit[r1],
        BTreeSet::from(["ins4".to_string(), "ins5".to_string()])
    );
    assert!(!by_unit[r2].contains("ins2"), "{by_unit:?}");

    // The snapshot the draw read holds exactly these recusals (disclosed after the window).
    app.clock.advance(Duration::days(2));
    w.relogin(&app).await;
    let r = app
        .get(
            &format!("/api/v1/surprise-plans/{}/verification", uid(&p)),
            w.t("city"),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["matches"], true, "{}", r.text);
    let snapshot = r.body["snapshot"].as_str().unwrap();
    let mut recused: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut units_seen = BTreeSet::new();
    for line in snapshot.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        match f[0] {
            "inspector" => {
                let set = if f[3] == "-" {
                    BTreeSet::new()
                } else {
                    f[3].split(',').map(String::from).collect()
                };
                recused.insert(w.name_of(f[1]).to_string(), set);
            }
            "unit" => {
                units_seen.insert(f[1].to_string());
            }
            _ => {}
        }
    }
    assert_eq!(units_seen, r_units.iter().cloned().collect());
    let set = |us: &[&String]| {
        us.iter()
            .map(|u| u.to_string())
            .collect::<BTreeSet<String>>()
    };
    let want: BTreeMap<String, BTreeSet<String>> = [
        ("ins1", set(&[r1, r2, r3, r4])),
        ("ins2", set(&[r1, r2, r4])),
        ("ins3", set(&[r1, r4])),
        ("ins4", set(&[r4])),
        ("ins5", set(&[])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(recused, want, "{snapshot}");
    assert!(
        r.body["result"]
            .as_str()
            .unwrap()
            .starts_with("skipped 1\n"),
        "{}",
        r.text
    );
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// `xuncha surprise verify PLAN` against the test database.
fn cli_verify(app: &TestApp, plan: &str) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_xuncha"));
    for (k, _) in std::env::vars() {
        if k.starts_with("XUNCHA_") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    cmd.args(["surprise", "verify", plan, "--database-url", &app.db.url])
        .env("XUNCHA_DATA_DIR", app.db.data_dir())
        .output()
        .unwrap()
}

async fn verification_recomputes_the_draw_and_catches_tampering(app: TestApp) {
    let mut w = world(&app).await;
    // Three targets, all of them key units: exactly the three malls.
    let mut b = plan_body(&app, 3, 2);
    b["min_key_share"] = json!(100);
    let p = new_plan(&app, w.t("city"), b).await;
    let id = uid(&p);
    let plan = draw(&app, w.t("city"), &id).await;
    let undrawn = new_plan(&app, w.t("city"), plan_body(&app, 1, 2)).await;
    let vpath = format!("/api/v1/surprise-plans/{id}/verification");
    // Not before the window has closed (the seed would tell the draw).
    app.get(&vpath, w.t("city"))
        .await
        .expect_error(409, "window_open");
    app.get(&vpath, w.t("ins1"))
        .await
        .expect_error(404, "not_found");
    // The server's own command checks it whatever the window.
    let out = cli_verify(&app, &id);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("MATCHES"),
        "{out:?}"
    );

    app.clock.advance(Duration::days(2));
    w.relogin(&app).await;
    draw_req(&app, w.t("city"), &uid(&undrawn))
        .await
        .expect_error(409, "window_closed");
    app.get(
        &format!("/api/v1/surprise-plans/{}/verification", uid(&undrawn)),
        w.t("city"),
    )
    .await
    .expect_error(409, "not_drawn");
    let r = app.get(&vpath, w.t("city")).await;
    r.expect(200);
    let v = r.body.clone();
    for flag in [
        "commitment_ok",
        "pool_hash_ok",
        "result_ok",
        "assignments_ok",
        "matches",
    ] {
        assert_eq!(v[flag], true, "{flag}: {}", r.text);
    }
    assert_eq!(v["plan_id"], id.as_str());
    assert_eq!(v["algorithm"], "xuncha-draw-v1");
    assert_eq!(v["targets"], 3);
    // The published commitment is the SHA-256 of the disclosed seed; the pool hash that of the
    // snapshot.
    assert!(is_hex64(&v["seed"]), "{v}");
    let seed = hex::decode(v["seed"].as_str().unwrap()).unwrap();
    assert_eq!(seed.len(), 32);
    assert_eq!(sha256_hex(&seed), p["seed_commitment"].as_str().unwrap());
    assert_eq!(v["seed_commitment"], p["seed_commitment"]);
    let snapshot = v["snapshot"].as_str().unwrap().to_string();
    assert_eq!(
        sha256_hex(snapshot.as_bytes()),
        v["pool_hash"].as_str().unwrap()
    );
    assert_eq!(v["pool_hash"], plan["pool_hash"]);
    // The snapshot is the region's pool: its six units weighted by risk, key ones marked, the
    // five credentialed inspectors (not `rookie`, not `far`).
    let lines: Vec<&str> = snapshot.lines().collect();
    assert_eq!(lines[0], "xuncha-draw-v1");
    assert_eq!(lines[1], "params 3 2 100");
    let mut seen_units = BTreeMap::new();
    let mut seen_inspectors = BTreeSet::new();
    for line in &lines[2..] {
        let f: Vec<&str> = line.split(' ').collect();
        match f[0] {
            "unit" => {
                seen_units.insert(
                    f[1].to_string(),
                    (f[2].parse::<i64>().unwrap(), f[3] == "1"),
                );
            }
            "inspector" => {
                assert_eq!((f[2], f[3]), ("0", "-"), "{line}");
                seen_inspectors.insert(f[1].to_string());
            }
            "equipment" => {}
            other => panic!("unexpected snapshot line {other}: {line}"),
        }
    }
    assert_eq!(
        seen_inspectors,
        INSPECTORS.iter().map(|n| w.id(n).to_string()).collect()
    );
    assert_eq!(seen_units.len(), 6);
    for (n, u) in w.units.iter().enumerate() {
        let unit = app.get(&format!("/api/v1/units/{u}"), w.t("city")).await;
        let risk = unit.body["risk_score"].as_i64().unwrap();
        assert_eq!(seen_units[u], (risk + 1, n < 3), "unit {n}");
    }
    // The result: the three malls, each with one piece of every category it holds, and the
    // teams the plan shows, in draw order.
    let result = v["result"].as_str().unwrap().to_string();
    let rl: Vec<&str> = result.lines().collect();
    assert_eq!(rl[0], "skipped 0");
    assert_eq!(rl.len(), 4, "{result}");
    let ts = targets(&plan);
    let mut units = BTreeSet::new();
    for (line, t) in rl[1..].iter().zip(&ts) {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f[0], "target");
        units.insert(f[1].to_string());
        let eq: Vec<&str> = f[2].split(',').collect();
        let team: Vec<String> = f[3].split(',').map(String::from).collect();
        assert_eq!(team, strings(&t["team"]));
        assert_eq!(drawn(&app)[&uid(t)], (f[1].to_string(), team.clone()));
        if f[1] == w.units[0] {
            assert_eq!(eq.len(), 2, "an elevator and the boiler: {line}");
            assert!(eq.contains(&w.boiler.as_str()), "{line}");
        } else {
            assert_eq!(eq, [w.equipment[f[1]][0].as_str()], "{line}");
        }
    }
    assert_eq!(units, w.units[..3].iter().cloned().collect());
    // Anyone can recompute it from the seed and the snapshot.
    let snap = xuncha::surprise::draw::Snapshot::parse(&snapshot).unwrap();
    let (recomputed, skipped) = snap.draw(&seed);
    assert_eq!(
        xuncha::surprise::draw::result_text(&recomputed, skipped),
        result
    );

    // The registry changes after the draw: a new mall, an overdue boiler at an office, another
    // elevator at a target. The verification does not.
    add_unit(&app, w.t("city"), "330105", 7, "mall").await;
    let before = app
        .get(&format!("/api/v1/units/{}", w.units[3]), w.t("city"))
        .await
        .body["risk_score"]
        .clone();
    let r = app
        .post(
            "/api/v1/equipment",
            w.t("city"),
            json!({"registration_code": reg_code(400), "unit_id": w.units[3],
                   "category_code": "2100", "reg_status": "registered",
                   "last_inspection_on": "2019-01-01", "next_inspection_due": "2020-01-01"}),
        )
        .await;
    r.expect(201);
    let after = app
        .get(&format!("/api/v1/units/{}", w.units[3]), w.t("city"))
        .await
        .body["risk_score"]
        .clone();
    assert_ne!(before, after, "the office's risk changed");
    add_equipment(&app, w.t("city"), &w.units[1], "3110", 401).await;
    let r = app.get(&vpath, w.t("city")).await;
    r.expect(200);
    assert_eq!(r.body, v, "the verification is of the pool as drawn");

    // Tampering with the stored result is caught, by the endpoint and by the command.
    let mut db = Direct::open(&app);
    let tamper = |db: &mut Direct, col: &str, from: &str, to: &str| {
        db.exec(&format!(
            "UPDATE surprise_plans SET {col} = REPLACE({col}, '{from}', '{to}') WHERE id = '{id}'"
        ))
        .unwrap();
    };
    tamper(&mut db, "result", &w.units[0], &w.units[5]);
    let r = app.get(&vpath, w.t("city")).await;
    r.expect(200);
    assert_eq!(r.body["matches"], false, "{}", r.text);
    assert_eq!(r.body["result_ok"], false);
    assert_eq!(r.body["commitment_ok"], true);
    assert_eq!(r.body["pool_hash_ok"], true);
    let out = cli_verify(&app, &id);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("DOES NOT MATCH"),
        "{out:?}"
    );
    tamper(&mut db, "result", &w.units[5], &w.units[0]);
    assert_eq!(app.get(&vpath, w.t("city")).await.body, v);
    // And so is tampering with the snapshot.
    tamper(&mut db, "snapshot", "params 3 2 100", "params 3 2 -");
    let r = app.get(&vpath, w.t("city")).await;
    assert_eq!(r.body["matches"], false, "{}", r.text);
    assert_eq!(r.body["pool_hash_ok"], false);
    let out = cli_verify(&app, &id);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    tamper(&mut db, "snapshot", "params 3 2 -", "params 3 2 100");
    assert_eq!(app.get(&vpath, w.t("city")).await.body, v);
    assert_eq!(cli_verify(&app, &id).status.code(), Some(0));
}

/// A sealed assignment carries the plan's region until it is revealed: a district manager
/// who has no part in the city's plan must not learn that their district holds a target (nor
/// how many), answered exactly like a district without targets.
async fn district_managers_get_no_hint_of_a_sealed_target(app: TestApp) {
    let mut w = world(&app).await;
    // All six units of 330105 drawn.
    let p = new_plan(&app, w.t("city"), plan_body(&app, 6, 2)).await;
    let plan = draw(&app, w.t("city"), &uid(&p)).await;
    let ts = targets(&plan);
    assert_eq!(ts.len(), 6);
    let a = uid(&ts[0]);
    // What a district manager can tell about the plan's targets: (assignments listed, the
    // answer to the first one's id, assignments in a fresh sync, a dispatch of it).
    async fn observe(app: &TestApp, w: &World, who: &str, a: &str) -> (usize, u16, usize, u16) {
        let r = app.get("/api/v1/assignments?kind=surprise", w.t(who)).await;
        let listed = r.body["items"].as_array().unwrap().len();
        let by_id = app
            .get(&format!("/api/v1/assignments/{a}"), w.t(who))
            .await
            .status;
        let mut d = Device::new(app, who, &format!("phone-{who}")).await;
        let pulled = d.sync(app).await.puts("assignments").len();
        let disp = dispatch(app, w.t(who), a).await.status;
        (listed, by_id, pulled, disp)
    }
    let holds_targets = observe(&app, &w, "mgr5", &a).await;
    let holds_none = observe(&app, &w, "mgr6", &a).await;
    assert_eq!(
        holds_none,
        (0, 404, 0, 404),
        "the manager of a district without targets sees nothing"
    );
    assert_eq!(
        holds_targets, holds_none,
        "the manager of the targets' district (not a manager of the plan) must not be able to \
         tell that their district holds sealed targets"
    );
    // Once revealed, the check is the district's business: its manager's next pull brings it
    // in full, and the other district still sees nothing.
    let mut d5 = Device::new(&app, "mgr5", "phone-mgr5-late").await;
    d5.sync(&app).await;
    app.clock.advance(Duration::hours(2));
    w.relogin(&app).await;
    assert_eq!(reveal_due(&app).await, 6);
    d5.relogin(&app).await;
    let got = d5.sync(&app).await;
    assert_eq!(got.puts("assignments").len(), 6);
    app.get(&format!("/api/v1/assignments/{a}"), w.t("mgr5"))
        .await
        .expect(200);
    app.get(&format!("/api/v1/assignments/{a}"), w.t("mgr6"))
        .await
        .expect_error(404, "not_found");
}

/// A drawn target belongs to its plan's verifiable record: deleting it, even once revealed and
/// still `scheduled`, is refused as a conflict and the plan still verifies.
async fn a_drawn_target_cannot_be_deleted_from_its_plan(app: TestApp) {
    let mut w = world(&app).await;
    let p = new_plan(&app, w.t("city"), plan_body(&app, 2, 2)).await;
    let plan = draw(&app, w.t("city"), &uid(&p)).await;
    let a = uid(&targets(&plan)[0]);
    app.clock.advance(Duration::hours(2));
    w.relogin(&app).await;
    assert_eq!(reveal_due(&app).await, 2);
    let r = app
        .get(&format!("/api/v1/assignments/{a}"), w.t("city"))
        .await;
    assert_eq!(
        (r.body["sealed"].clone(), r.body["status"].clone()),
        (json!(false), json!("scheduled"))
    );
    let r = app
        .req(
            Method::DELETE,
            &format!("/api/v1/assignments/{a}"),
            Some(w.t("city")),
            None,
        )
        .await;
    assert_ne!(r.status, 500, "deleting a drawn target: {}", r.text);
    r.expect_error(409, "drawn");
    // Nor are its drawn team or window changed by hand (its notes may be).
    let team = strings(&targets(&plan)[0]["team"]);
    app.patch(
        &format!("/api/v1/assignments/{a}"),
        w.t("city"),
        json!({"team": [team[0]]}),
    )
    .await
    .expect_error(409, "drawn");
    app.patch(
        &format!("/api/v1/assignments/{a}"),
        w.t("city"),
        json!({"notes": "带上测距仪"}),
    )
    .await
    .expect(200);
    // A member, of another district than the unit, reads the revealed unit over REST too.
    let unit = app
        .get(
            &format!("/api/v1/assignments/{a}"),
            w.t(w.name_of(&team[0])),
        )
        .await;
    unit.expect(200);
    let unit_id = unit.body["unit_id"].as_str().unwrap().to_string();
    app.get(
        &format!("/api/v1/units/{unit_id}"),
        w.t(w.name_of(&team[0])),
    )
    .await
    .expect(200);
    app.get(&format!("/api/v1/assignments/{a}"), w.t("city"))
        .await
        .expect(200);
    app.clock.advance(Duration::days(2));
    w.relogin(&app).await;
    let r = app
        .get(
            &format!("/api/v1/surprise-plans/{}/verification", uid(&p)),
            w.t("city"),
        )
        .await;
    assert_eq!(r.body["matches"], true, "{}", r.text);
}
