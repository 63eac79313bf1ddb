//! Delta sync through the HTTP API, on SQLite and PostgreSQL: the cursor under concurrent
//! writers, paging, convergence of a paged initial sync under changes, cursor stability and
//! resets, tombstones, scope entry and exit on reassignment, idempotent ordered push.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, Direct, PASSWORD, Resp, TestApp};
use crate::registry::{UNIT_HEADER, import, uscc};

crate::both_backends!(
    a_writer_that_commits_late_is_never_skipped,
    one_transaction_larger_than_a_page_arrives_once,
    a_paged_initial_sync_under_changes_converges,
    cursors_are_stable_signed_and_reset_when_foreign_or_stale,
    deletes_reach_devices_as_tombstones_but_not_initial_syncs,
    reassignment_evicts_from_one_device_and_fills_the_other,
    pushes_apply_once_in_order,
    rejected_mutations_do_not_block_the_queue,
    last_mutation_seq_matches_the_data,
    scope_by_role,
    a_unit_moving_district_moves_between_devices,
    checksums_prove_a_copy_complete,
    concurrent_edits_merge_by_field_and_log_conflicts,
    a_randomized_fleet_converges,
    a_row_entering_scope_mid_walk_is_not_lost,
    team_mates_arrive_and_leave_with_the_team,
    a_removed_team_mate_is_evicted,
    a_deleted_assignment_takes_what_it_brought,
    pruned_history_resets_devices_older_than_it,
    a_failure_inside_a_mutation_leaves_nothing_behind,
    hazard_lists_follow_the_sync_scope,
    a_second_server_learns_changes_and_revocations_when_it_polls,
    rows_served_from_the_row_cache_are_never_stale,
    rows_stored_at_write_time_equal_rows_rendered_from_their_columns,
    read_ahead_pages_go_out_only_while_nothing_was_committed,
    a_big_page_reads_its_stored_rows_on_two_connections,
);

/// A device's copy, kept the way a phone keeps it.
#[derive(Default)]
struct Device {
    token: String,
    device_id: String,
    cursor: Option<String>,
    rows: BTreeMap<(String, String), (i64, Value)>,
    pages: usize,
    seen: Vec<(String, String, String)>,
}

impl Device {
    async fn new(app: &TestApp, username: &str, device_id: &str) -> Device {
        let pair = app.login_ok(username, PASSWORD, device_id).await;
        Device {
            token: pair["access_token"].as_str().unwrap().to_string(),
            device_id: device_id.to_string(),
            ..Default::default()
        }
    }

    async fn pull_page(&mut self, app: &TestApp, limit: i64) -> Resp {
        let mut path = format!("/api/v1/sync/pull?limit={limit}");
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
            let table = c["table"].as_str().unwrap().to_string();
            let id = c["id"].as_str().unwrap().to_string();
            let op = c["op"].as_str().unwrap().to_string();
            self.seen.push((table.clone(), id.clone(), op.clone()));
            match op.as_str() {
                "put" => {
                    self.rows.insert(
                        (table, id),
                        (c["version"].as_i64().unwrap(), c["data"].clone()),
                    );
                }
                "delete" | "evict" => {
                    self.rows.remove(&(table, id));
                }
                other => panic!("unknown op {other}"),
            }
        }
        self.cursor = Some(r.body["cursor"].as_str().unwrap().to_string());
        self.pages += 1;
        r
    }

    /// Pulls until nothing more is pending; returns the changes seen in this sync.
    async fn sync(&mut self, app: &TestApp, limit: i64) -> Vec<(String, String, String)> {
        self.seen.clear();
        loop {
            let r = self.pull_page(app, limit).await;
            if !r.body["has_more"].as_bool().unwrap() {
                return std::mem::take(&mut self.seen);
            }
        }
    }

    fn ids(&self, table: &str) -> BTreeSet<String> {
        self.rows
            .keys()
            .filter(|(t, _)| t == table)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// (table, id, version) of the whole copy.
    fn state(&self) -> BTreeSet<(String, String, i64)> {
        self.rows
            .iter()
            .map(|((t, id), (v, _))| (t.clone(), id.clone(), *v))
            .collect()
    }

    async fn push(&self, app: &TestApp, mutations: Value) -> Resp {
        app.post(
            "/api/v1/sync/push",
            &self.token,
            json!({"device_id": self.device_id, "mutations": mutations}),
        )
        .await
    }
}

/// What the server says the scope holds now: a fresh initial sync.
async fn server_state(app: &TestApp, username: &str) -> BTreeSet<(String, String, i64)> {
    let mut d = Device::new(app, username, "fresh-reference-device").await;
    d.sync(app, 5000).await;
    d.state()
}

/// The device's copy equals what a fresh initial sync of `user` gets now.
async fn assert_converged(app: &TestApp, dev: &Device, user: &str, what: &str) {
    let (mine, server) = (dev.state(), server_state(app, user).await);
    let missing: Vec<_> = server.difference(&mine).collect();
    let extra: Vec<_> = mine.difference(&server).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {user}'s device lacks {missing:?}, has extra {extra:?}"
    );
}

struct World {
    city: String,
    mgr: String,
    unit_a: String,
    unit_b: String,
    insp: Vec<Value>,
}

/// A city manager; a district manager of 330106; units in 330106 and 330105 (one with two
/// pieces of equipment); inspectors ins1, ins2 (330106), ins3 (330105), with credentials.
async fn world(app: &TestApp) -> World {
    let admin = app.admin_token().await;
    app.create_user(&admin, "city", "manager", "330100").await;
    app.create_user(&admin, "mgr", "manager", "330106").await;
    let city = app.token("city", PASSWORD).await;
    let mgr = app.token("mgr", PASSWORD).await;
    let mut insp = Vec::new();
    for (name, region) in [("ins1", "330106"), ("ins2", "330106"), ("ins3", "330105")] {
        let r = app
            .post(
                "/api/v1/users",
                &admin,
                json!({"username": name, "password": PASSWORD, "display_name": name,
                       "role": "inspector", "region_code": region, "credential_no": format!("ZJ-{name}")}),
            )
            .await;
        r.expect(201);
        insp.push(r.body);
    }
    let mut ids = Vec::new();
    for (n, region) in [(1, "330106"), (2, "330105")] {
        let r = app
            .post(
                "/api/v1/units",
                &city,
                json!({"uscc": uscc(region, n), "name": format!("单位{n}"), "address": "路",
                       "region_code": region, "place_type": "mall"}),
            )
            .await;
        r.expect(201);
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    for n in 1..=2 {
        app.post(
            "/api/v1/equipment",
            &city,
            json!({"registration_code": crate::registry::reg_code(n), "unit_id": ids[1],
                   "category_code": "3110", "reg_status": "registered"}),
        )
        .await
        .expect(201);
    }
    World {
        city,
        mgr,
        unit_a: ids[0].clone(),
        unit_b: ids[1].clone(),
        insp,
    }
}

fn uid(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn assign(app: &TestApp, token: &str, unit: &str, team: &[String]) -> Value {
    let r = app
        .post(
            "/api/v1/assignments",
            token,
            json!({"kind": "routine", "unit_id": unit, "team": team,
                   "window_start": "2026-12-01T00:00:00Z", "window_end": "2026-12-02T00:00:00Z"}),
        )
        .await;
    r.expect(201);
    r.body
}

async fn delete_assignment(app: &TestApp, token: &str, id: &str) {
    app.req(
        Method::DELETE,
        &format!("/api/v1/assignments/{id}"),
        Some(token),
        None,
    )
    .await
    .expect(204);
}

fn hazard(id: &str, unit: &str, level: &str) -> Value {
    json!({"id": id, "unit_id": unit, "description": "门锁回路短接", "level": level, "fixed_on_site": false})
}

/// Holds a sync transaction open on a direct connection (as `db::sync_tx` would: clock
/// bumped, a row written with the new version) until `commit`.
struct OpenTx {
    db: Direct,
}

impl OpenTx {
    fn begin(app: &TestApp, unit: &str, reporter: &str, hazard_id: &str) -> OpenTx {
        let mut db = Direct::open(app);
        let (begin, t, f) = match app.backend {
            Backend::Sqlite => ("BEGIN IMMEDIATE", "1", "0"),
            Backend::Postgres => ("BEGIN", "TRUE", "FALSE"),
        };
        db.exec(begin).unwrap();
        db.exec(&format!(
            "UPDATE sync_clock SET seq = seq + 1, writing = {t} WHERE id = 1"
        ))
        .unwrap();
        db.exec(&format!(
            "INSERT INTO hazards (id, unit_id, region_code, description, level, state, fixed_on_site, \
             reported_by, reported_at, created_at, updated_at, version) VALUES ('{hazard_id}', '{unit}', \
             '330106', 'slow writer', 'general', 'reported', {f}, '{reporter}', '2026-01-01 00:00:00', \
             '2026-01-01 00:00:00', '2026-01-01 00:00:00', (SELECT seq FROM sync_clock WHERE id = 1))"
        ))
        .unwrap();
        db.exec(&format!("UPDATE sync_clock SET writing = {f} WHERE id = 1"))
            .unwrap();
        OpenTx { db }
    }

    fn commit(mut self) {
        self.db.exec("COMMIT").unwrap();
    }
}

async fn a_writer_that_commits_late_is_never_skipped(app: TestApp) {
    let w = world(&app).await;
    let mut dev = Device::new(&app, "mgr", "phone-1").await;
    dev.sync(&app, 100).await;
    let slow = uuid::Uuid::new_v4().to_string();
    let fast = uuid::Uuid::new_v4().to_string();
    let mgr_dev = Device::new(&app, "mgr", "phone-2").await;
    // T1 takes version N and stays open.
    let t1 = OpenTx::begin(&app, &w.unit_a, &uid(&w.insp[0]), &slow);
    // T2 starts after it: it must wait for T1 (it needs the clock) and so commits after it.
    let push = {
        let app_base = app.base.clone();
        let token = mgr_dev.token.clone();
        let body = json!({"device_id": "phone-2", "mutations": [{"seq": 1, "name": "hazard.report", "args": hazard(&fast, &w.unit_a, "general")}]});
        actix_rt::spawn(async move {
            crate::common::client()
                .post(format!("{app_base}/api/v1/sync/push"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    // A pull meanwhile sees neither (T1 is not committed; T2 cannot have committed).
    let seen = dev.sync(&app, 100).await;
    assert!(
        !seen.iter().any(|(t, _, _)| t == "hazards"),
        "uncommitted rows must not be pulled: {seen:?}"
    );
    t1.commit();
    assert_eq!(push.await.unwrap(), 200);
    // The next pull from the same cursor has both.
    dev.sync(&app, 100).await;
    let hz = dev.ids("hazards");
    assert!(
        hz.contains(&slow),
        "the late-committing writer's row arrives"
    );
    assert!(hz.contains(&fast));
    assert_eq!(dev.state(), server_state(&app, "mgr").await);
}

async fn one_transaction_larger_than_a_page_arrives_once(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_user(&admin, "mgr", "manager", "330106").await;
    let m = app.token("mgr", PASSWORD).await;
    let mut dev = Device::new(&app, "mgr", "phone").await;
    dev.sync(&app, 50).await;
    let lines: Vec<String> = (1..=37)
        .map(|n| format!("{},单位{n},路,330106,office,,", uscc("330106", n)))
        .collect();
    import(
        &app,
        &m,
        "units",
        format!("{UNIT_HEADER}\n{}\n", lines.join("\n")),
    )
    .await
    .expect(200);
    dev.pages = 0;
    let seen = dev.sync(&app, 5).await;
    let units: Vec<_> = seen.iter().filter(|(t, _, _)| t == "units").collect();
    assert_eq!(units.len(), 37, "every row of the one transaction, once");
    let unique: BTreeSet<_> = units.iter().map(|(_, id, _)| id.clone()).collect();
    assert_eq!(unique.len(), 37);
    assert!(dev.pages >= 8, "paged: {}", dev.pages);
    assert_eq!(dev.state(), server_state(&app, "mgr").await);
}

async fn a_paged_initial_sync_under_changes_converges(app: TestApp) {
    let w = world(&app).await;
    let mut units = Vec::new();
    for n in 10..30 {
        let r = app
            .post(
                "/api/v1/units",
                &w.mgr,
                json!({"uscc": uscc("330106", n), "name": format!("单位{n}"), "address": "路",
                       "region_code": "330106", "place_type": "office"}),
            )
            .await;
        units.push(uid(&r.body));
    }
    let team = vec![uid(&w.insp[0])];
    let a1 = assign(&app, &w.mgr, &w.unit_a, &team).await;
    let a2 = assign(&app, &w.mgr, &w.unit_a, &team).await;
    let mut dev = Device::new(&app, "mgr", "phone").await;
    let mut step = 0;
    loop {
        let r = dev.pull_page(&app, 4).await;
        // Between pages: updates, inserts and deletes.
        step += 1;
        match step {
            1 => {
                app.patch(
                    &format!("/api/v1/units/{}", units[15]),
                    &w.mgr,
                    json!({"name": "改名"}),
                )
                .await
                .expect(200);
            }
            2 => {
                delete_assignment(&app, &w.mgr, &uid(&a1)).await;
            }
            3 => {
                app.post(
                    "/api/v1/units",
                    &w.mgr,
                    json!({"uscc": uscc("330106", 99), "name": "新单位", "address": "路",
                           "region_code": "330106", "place_type": "park"}),
                )
                .await
                .expect(201);
            }
            4 => {
                app.patch(
                    &format!("/api/v1/units/{}", units[0]),
                    &w.mgr,
                    json!({"name": "首个改名"}),
                )
                .await
                .expect(200);
                app.patch(
                    &format!("/api/v1/assignments/{}", uid(&a2)),
                    &w.mgr,
                    json!({"notes": "改"}),
                )
                .await
                .expect(200);
            }
            _ => {}
        }
        if !r.body["has_more"].as_bool().unwrap() && step > 4 {
            break;
        }
    }
    assert!(
        !dev.ids("assignments").contains(&uid(&a1)),
        "the deleted row is gone"
    );
    assert_eq!(dev.state(), server_state(&app, "mgr").await);
}

fn cursor_key(app: &TestApp) -> Vec<u8> {
    #[derive(diesel::QueryableByName)]
    struct V {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    use diesel::RunQueryDsl;
    let sql = "SELECT value FROM server_meta WHERE key = 'cursor_signing_key'";
    let rows: Vec<V> = match Direct::open(app) {
        Direct::Sqlite(mut c) => diesel::sql_query(sql).load(&mut c).unwrap(),
        Direct::Pg(mut c) => diesel::sql_query(sql).load(&mut c).unwrap(),
    };
    rows[0].value.clone().into_bytes()
}

async fn cursors_are_stable_signed_and_reset_when_foreign_or_stale(app: TestApp) {
    let w = world(&app).await;
    let mut dev = Device::new(&app, "mgr", "phone").await;
    dev.pull_page(&app, 3).await;
    let cursor = dev.cursor.clone().unwrap();
    let a = app
        .get(
            &format!("/api/v1/sync/pull?limit=3&cursor={cursor}"),
            &dev.token,
        )
        .await;
    let b = app
        .get(
            &format!("/api/v1/sync/pull?limit=3&cursor={cursor}"),
            &dev.token,
        )
        .await;
    assert_eq!(a.body, b.body, "same cursor, same answer");
    // Forged: any change to the text.
    let mut forged = cursor.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    app.get(&format!("/api/v1/sync/pull?cursor={forged}"), &dev.token)
        .await
        .expect_error(400, "invalid_cursor");
    app.get("/api/v1/sync/pull?cursor=hello", &dev.token)
        .await
        .expect_error(400, "invalid_cursor");
    // Properly signed but from another database, or ahead of this one's head.
    let key = cursor_key(&app);
    let mut c = xuncha::sync::cursor::Cursor::decode(&cursor, &key).unwrap();
    let mut other_db = c.clone();
    other_db.db = "another-database".into();
    let r = app
        .get(
            &format!("/api/v1/sync/pull?cursor={}", other_db.encode(&key)),
            &dev.token,
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["reset"], true, "{}", r.text);
    c.pos = xuncha::sync::cursor::Pos::through(c.base + 1_000_000);
    let r = app
        .get(
            &format!("/api/v1/sync/pull?cursor={}", c.encode(&key)),
            &dev.token,
        )
        .await;
    assert_eq!(r.body["reset"], true, "{}", r.text);
    // Another user's cursor is not yours.
    let mut city = Device::new(&app, "city", "city-phone").await;
    let r = app
        .get(&format!("/api/v1/sync/pull?cursor={cursor}"), &city.token)
        .await;
    assert_eq!(r.body["reset"], true, "{}", r.text);
    city.sync(&app, 100).await;
    // Older than the tombstones kept.
    dev.sync(&app, 100).await;
    // (Pruning runs through versions before the head; move the head past the cursor first.)
    let mut db = Direct::open(&app);
    db.exec("UPDATE sync_clock SET seq = seq + 1 WHERE id = 1")
        .unwrap();
    db.exec(
        "UPDATE server_meta SET value = (SELECT CAST(seq AS TEXT) FROM sync_clock WHERE id = 1) \
         WHERE key = 'tombstones_pruned_through'",
    )
    .unwrap();
    app.settle().await;
    let r = app
        .get(
            &format!("/api/v1/sync/pull?cursor={}", dev.cursor.clone().unwrap()),
            &dev.token,
        )
        .await;
    assert_eq!(r.body["reset"], true, "{}", r.text);
    // Protocol versions.
    let rb = app
        .client
        .get(format!("{}/api/v1/sync/pull", app.base))
        .bearer_auth(&dev.token)
        .header("x-sync-protocol", "2");
    app.send(Method::GET, "/api/v1/sync/pull", rb)
        .await
        .expect_error(426, "protocol_unsupported");
    let rb = app
        .client
        .get(format!("{}/api/v1/sync/pull", app.base))
        .bearer_auth(&dev.token)
        .header("x-sync-protocol", "1");
    app.send(Method::GET, "/api/v1/sync/pull", rb)
        .await
        .expect(200);
    app.get("/api/v1/sync/pull?limit=0", &dev.token)
        .await
        .expect_error(422, "validation_failed");
    let _ = w.city;
}

async fn deletes_reach_devices_as_tombstones_but_not_initial_syncs(app: TestApp) {
    let w = world(&app).await;
    let a = assign(&app, &w.mgr, &w.unit_a, &[uid(&w.insp[0])]).await;
    let mut mgr = Device::new(&app, "mgr", "m-phone").await;
    let mut ins = Device::new(&app, "ins1", "i-phone").await;
    let mut other = Device::new(&app, "ins2", "o-phone").await;
    mgr.sync(&app, 100).await;
    ins.sync(&app, 100).await;
    other.sync(&app, 100).await;
    assert!(ins.ids("assignments").contains(&uid(&a)));
    assert!(!other.ids("assignments").contains(&uid(&a)));
    delete_assignment(&app, &w.mgr, &uid(&a)).await;
    let del = ("assignments".to_string(), uid(&a), "delete".to_string());
    assert!(mgr.sync(&app, 100).await.contains(&del));
    assert!(ins.sync(&app, 100).await.contains(&del));
    assert!(
        !other
            .sync(&app, 100)
            .await
            .iter()
            .any(|(_, id, _)| *id == uid(&a)),
        "a device that never held it is not told"
    );
    let mut fresh = Device::new(&app, "mgr", "new-phone").await;
    let seen = fresh.sync(&app, 100).await;
    assert!(
        seen.iter().all(|(_, _, op)| op == "put"),
        "an initial sync is puts only"
    );
    assert_eq!(mgr.state(), fresh.state());
}

async fn reassignment_evicts_from_one_device_and_fills_the_other(app: TestApp) {
    let w = world(&app).await;
    // Cross-district enforcement: inspectors of 330106 on a unit of 330105.
    let (a, b) = (uid(&w.insp[0]), uid(&w.insp[1]));
    let asg = assign(&app, &w.city, &w.unit_b, std::slice::from_ref(&a)).await;
    let mut reporter = Device::new(&app, "city", "city-phone").await;
    let hz = uuid::Uuid::new_v4().to_string();
    let r = reporter
        .push(
            &app,
            json!([{"seq": 1, "name": "hazard.report", "args": hazard(&hz, &w.unit_b, "major")}]),
        )
        .await;
    assert_eq!(r.body["results"][0]["status"], "applied", "{}", r.text);
    reporter.sync(&app, 100).await;

    let mut dev_a = Device::new(&app, "ins1", "a-phone").await;
    let mut dev_b = Device::new(&app, "ins2", "b-phone").await;
    dev_a.sync(&app, 100).await;
    dev_b.sync(&app, 100).await;
    assert!(
        dev_a.ids("units").contains(&w.unit_b),
        "the assignment brings its unit"
    );
    assert_eq!(dev_a.ids("equipment").len(), 2);
    assert!(dev_a.ids("hazards").contains(&hz));
    assert!(!dev_b.ids("units").contains(&w.unit_b));

    // Reassign A -> B.
    app.patch(
        &format!("/api/v1/assignments/{}", uid(&asg)),
        &w.city,
        json!({"team": [b.clone()]}),
    )
    .await
    .expect(200);
    let seen_a = dev_a.sync(&app, 100).await;
    let evicted: BTreeSet<_> = seen_a
        .iter()
        .filter(|(_, _, op)| op == "evict")
        .map(|(t, id, _)| (t.clone(), id.clone()))
        .collect();
    assert!(evicted.contains(&("assignments".into(), uid(&asg))));
    assert!(evicted.contains(&("units".into(), w.unit_b.clone())));
    assert!(evicted.contains(&("hazards".into(), hz.clone())));
    assert!(!dev_a.ids("units").contains(&w.unit_b));
    assert!(
        dev_a.ids("equipment").is_empty(),
        "the unit's equipment went with it"
    );
    dev_b.sync(&app, 2).await; // small pages: the arrivals span several
    assert!(dev_b.ids("assignments").contains(&uid(&asg)));
    assert!(
        dev_b.ids("units").contains(&w.unit_b),
        "older than B's cursor, still sent"
    );
    assert_eq!(dev_b.ids("equipment").len(), 2);
    assert!(dev_b.ids("hazards").contains(&hz));
    assert_eq!(dev_a.state(), server_state(&app, "ins1").await);
    assert_eq!(dev_b.state(), server_state(&app, "ins2").await);

    // And back.
    app.patch(
        &format!("/api/v1/assignments/{}", uid(&asg)),
        &w.city,
        json!({"team": [a.clone()]}),
    )
    .await
    .expect(200);
    dev_a.sync(&app, 100).await;
    dev_b.sync(&app, 100).await;
    assert!(dev_a.ids("units").contains(&w.unit_b));
    assert!(!dev_b.ids("units").contains(&w.unit_b));
    assert_eq!(dev_a.state(), server_state(&app, "ins1").await);
    assert_eq!(dev_b.state(), server_state(&app, "ins2").await);
}

async fn pushes_apply_once_in_order(app: TestApp) {
    let w = world(&app).await;
    let dev = Device::new(&app, "ins1", "phone").await;
    let (h1, h2) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    let batch = json!([
        {"seq": 1, "name": "hazard.report", "args": hazard(&h1, &w.unit_a, "general")},
        {"seq": 2, "name": "hazard.report", "args": hazard(&h2, &w.unit_a, "minor")},
    ]);
    let first = dev.push(&app, batch.clone()).await;
    first.expect(200);
    assert_eq!(first.body["results"][0]["status"], "applied");
    assert_eq!(first.body["results"][1]["status"], "applied");
    // The response was lost; the device sends the batch again.
    let again = dev.push(&app, batch.clone()).await;
    assert_eq!(again.body, first.body, "identical results, effects once");
    let count = |app: &TestApp| {
        let mut db = Direct::open(app);
        db.count("SELECT COUNT(*) AS n FROM hazards")
    };
    assert_eq!(count(&app), 2);
    // Two identical pushes in parallel: applied once.
    let h3 = uuid::Uuid::new_v4().to_string();
    let batch3 = json!({"device_id": "phone", "mutations": [{"seq": 3, "name": "hazard.report", "args": hazard(&h3, &w.unit_a, "general")}]});
    let send = || {
        let url = format!("{}/api/v1/sync/push", app.base);
        let token = dev.token.clone();
        let body = batch3.clone();
        actix_rt::spawn(async move {
            let r = crate::common::client()
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()
        })
    };
    let (x, y) = (send(), send());
    let (x, y) = (x.await.unwrap(), y.await.unwrap());
    assert_eq!(x, y);
    assert_eq!(x["results"][0]["status"], "applied");
    assert_eq!(count(&app), 3);
    // A gap: 409 naming the expected seq; nothing applied.
    let r = dev
        .push(&app, json!([{"seq": 5, "name": "hazard.report", "args": hazard(&uuid::Uuid::new_v4().to_string(), &w.unit_a, "general")}]))
        .await;
    r.expect_error(409, "seq_gap");
    assert_eq!(r.body["error"]["expected_seq"], 4);
    assert_eq!(count(&app), 3);
    // Not this session's device.
    app.post(
        "/api/v1/sync/push",
        &dev.token,
        json!({"device_id": "someone-else", "mutations": []}),
    )
    .await
    .expect_error(422, "validation_failed");
    // Seqs within a batch must be consecutive.
    dev.push(
        &app,
        json!([{"seq": 4, "name": "x"}, {"seq": 6, "name": "x"}]),
    )
    .await
    .expect_error(422, "validation_failed");
}

async fn rejected_mutations_do_not_block_the_queue(app: TestApp) {
    let w = world(&app).await;
    let dev = Device::new(&app, "ins1", "phone").await;
    let ok = uuid::Uuid::new_v4().to_string();
    let r = dev
        .push(
            &app,
            json!([
                {"seq": 1, "name": "hazard.report", "args": hazard(&uuid::Uuid::new_v4().to_string(), &w.unit_a, "catastrophic")},
                // An unknown name, with a NUL PostgreSQL cannot store (it was a 500 there).
                {"seq": 2, "name": "hazard.teleport\u{0}", "args": {}},
                // ins1 (330106) may not report on a unit of 330105 it has no assignment for.
                {"seq": 3, "name": "hazard.report", "args": hazard(&uuid::Uuid::new_v4().to_string(), &w.unit_b, "general")},
                {"seq": 4, "name": "hazard.report", "args": {"id": "x"}},
                {"seq": 5, "name": "hazard.report", "args": hazard(&ok, &w.unit_a, "general")},
            ]),
        )
        .await;
    r.expect(200);
    let res = r.body["results"].as_array().unwrap();
    let status: Vec<_> = res.iter().map(|x| x["status"].as_str().unwrap()).collect();
    assert_eq!(
        status,
        ["rejected", "rejected", "rejected", "rejected", "applied"]
    );
    assert_eq!(res[0]["error"]["code"], "validation_failed");
    assert!(res[0]["error"]["fields"]["level"].is_string());
    assert_eq!(res[1]["error"]["code"], "unknown_mutation");
    assert_eq!(res[2]["error"]["code"], "validation_failed");
    assert_eq!(res[3]["error"]["code"], "validation_failed");
    assert!(res[4]["version"].is_i64());
    let mut db = Direct::open(&app);
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM hazards"), 1);
    // The unit's risk facts counted the hazard in the same transaction.
    let u = app
        .get(&format!("/api/v1/units/{}", w.unit_a), &w.mgr)
        .await;
    assert_eq!(u.body["open_hazards"], 1);
}

async fn last_mutation_seq_matches_the_data(app: TestApp) {
    let w = world(&app).await;
    let mut dev = Device::new(&app, "mgr", "phone").await;
    dev.sync(&app, 100).await;
    let r = dev.pull_page(&app, 100).await;
    assert_eq!(r.body["last_mutation_seq"], 0);
    let h = uuid::Uuid::new_v4().to_string();
    dev.push(
        &app,
        json!([{"seq": 1, "name": "hazard.report", "args": hazard(&h, &w.unit_a, "general")}]),
    )
    .await
    .expect(200);
    // Units changed after the push too (its risk facts): the hazard and the unit come in
    // one version; with one change a page, the first page cannot claim the mutation yet.
    let first = dev.pull_page(&app, 1).await;
    assert_eq!(first.body["has_more"], true);
    assert_eq!(first.body["last_mutation_seq"], 0);
    let mut last = first;
    while last.body["has_more"] == true {
        last = dev.pull_page(&app, 1).await;
    }
    assert_eq!(last.body["last_mutation_seq"], 1);
    assert!(dev.ids("hazards").contains(&h));
}

async fn scope_by_role(app: TestApp) {
    let w = world(&app).await;
    let admin = app.admin_token().await;
    app.post(
        "/api/v1/users",
        &admin,
        json!({"username": "unit1", "password": PASSWORD, "display_name": "单位用户",
               "role": "unit", "region_code": "330106", "unit_id": w.unit_a}),
    )
    .await
    .expect(201);
    let asg = assign(&app, &w.mgr, &w.unit_a, &[uid(&w.insp[0])]).await;
    let mut unit = Device::new(&app, "unit1", "u-phone").await;
    unit.sync(&app, 100).await;
    assert_eq!(unit.ids("units"), BTreeSet::from([w.unit_a.clone()]));
    assert!(
        unit.ids("assignments").is_empty(),
        "unit users never see assignments"
    );
    assert_eq!(unit.ids("users").len(), 1);
    assert!(
        unit.ids("codes").len() > 80,
        "everyone gets the code tables"
    );
    assert_eq!(unit.ids("checklist_templates").len(), 9);
    let mut mgr = Device::new(&app, "mgr", "m-phone").await;
    mgr.sync(&app, 100).await;
    assert_eq!(
        mgr.ids("units"),
        BTreeSet::from([w.unit_a.clone()]),
        "district only"
    );
    assert!(mgr.ids("assignments").contains(&uid(&asg)));
    let mut city = Device::new(&app, "city", "c-phone").await;
    city.sync(&app, 100).await;
    assert_eq!(city.ids("units").len(), 2);
    assert_eq!(city.ids("equipment").len(), 2);
    let mut ins3 = Device::new(&app, "ins3", "i3-phone").await;
    ins3.sync(&app, 100).await;
    assert_eq!(ins3.ids("units"), BTreeSet::from([w.unit_b.clone()]));
    assert!(ins3.ids("assignments").is_empty());
    // Colleagues: inspectors and managers of the region, not of others.
    let names: BTreeSet<String> = ins3
        .rows
        .iter()
        .filter(|((t, _), _)| t == "users")
        .map(|(_, (_, d))| d["display_name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains("ins3"));
    assert!(!names.contains("ins1"));
    // REST agrees.
    let r = app.get("/api/v1/assignments", &unit.token).await;
    assert_eq!(r.body["items"], json!([]));
    app.get(&format!("/api/v1/assignments/{}", uid(&asg)), &unit.token)
        .await
        .expect_error(404, "not_found");
    let r = app.get("/api/v1/assignments", &ins3.token).await;
    assert_eq!(r.body["items"], json!([]));
    app.get(&format!("/api/v1/assignments/{}", uid(&asg)), &ins3.token)
        .await
        .expect_error(404, "not_found");
}

async fn a_unit_moving_district_moves_between_devices(app: TestApp) {
    let w = world(&app).await;
    let admin = app.admin_token().await;
    app.create_user(&admin, "mgr5", "manager", "330105").await;
    let mut m6 = Device::new(&app, "mgr", "m6").await;
    let mut m5 = Device::new(&app, "mgr5", "m5").await;
    let mut city = Device::new(&app, "city", "city").await;
    let e = app
        .post(
            "/api/v1/equipment",
            &w.mgr,
            json!({"registration_code": crate::registry::reg_code(50), "unit_id": w.unit_a,
                   "category_code": "4100", "reg_status": "registered"}),
        )
        .await;
    let eid = uid(&e.body);
    let h = uuid::Uuid::new_v4().to_string();
    city.push(
        &app,
        json!([{"seq": 1, "name": "hazard.report", "args": hazard(&h, &w.unit_a, "general")}]),
    )
    .await
    .expect(200);
    m6.sync(&app, 100).await;
    m5.sync(&app, 100).await;
    city.sync(&app, 100).await;
    assert!(m6.ids("units").contains(&w.unit_a));
    assert!(!m5.ids("units").contains(&w.unit_a));

    app.patch(
        &format!("/api/v1/units/{}", w.unit_a),
        &w.city,
        json!({"region_code": "330105"}),
    )
    .await
    .expect(200);
    let seen = m6.sync(&app, 100).await;
    for (t, id) in [("units", &w.unit_a), ("equipment", &eid), ("hazards", &h)] {
        assert!(
            seen.contains(&(t.to_string(), id.clone(), "evict".to_string())),
            "{t} evicted: {seen:?}"
        );
    }
    m5.sync(&app, 100).await;
    assert!(m5.ids("units").contains(&w.unit_a));
    assert!(m5.ids("equipment").contains(&eid));
    assert!(m5.ids("hazards").contains(&h));
    let seen = city.sync(&app, 100).await;
    assert!(
        seen.iter().all(|(_, _, op)| op == "put"),
        "still in the city's scope: {seen:?}"
    );
    for (dev, who) in [(&m6, "mgr"), (&m5, "mgr5"), (&city, "city")] {
        assert_eq!(dev.state(), server_state(&app, who).await, "{who}");
    }
}

/// The checksum function as the spec documents it, computed over the device's copy.
fn local_sums(dev: &Device) -> BTreeMap<String, (u64, String)> {
    use sha2::Digest;
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for ((table, id), (version, _)) in &dev.rows {
        let d = sha2::Sha256::digest(format!("{id}:{version}").as_bytes());
        let n = u64::from_be_bytes(d[..8].try_into().unwrap());
        let e = out.entry(table.clone()).or_default();
        e.0 += 1;
        e.1 = e.1.wrapping_add(n);
    }
    out.into_iter()
        .map(|(t, (c, s))| (t, (c, format!("{s:016x}"))))
        .collect()
}

fn server_sums(body: &Value) -> BTreeMap<String, (u64, String)> {
    body["tables"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v["count"].as_u64().unwrap() > 0)
        .map(|(t, v)| {
            (
                t.clone(),
                (
                    v["count"].as_u64().unwrap(),
                    v["checksum"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

async fn checksums_prove_a_copy_complete(app: TestApp) {
    let w = world(&app).await;
    assign(&app, &w.mgr, &w.unit_a, &[uid(&w.insp[0])]).await;
    let mut dev = Device::new(&app, "ins1", "phone").await;
    dev.sync(&app, 7).await;
    let path = |d: &Device| format!("/api/v1/sync/checksum?cursor={}", d.cursor.clone().unwrap());
    let r = app.get(&path(&dev), &dev.token).await;
    r.expect(200);
    assert_eq!(server_sums(&r.body), local_sums(&dev), "{}", r.text);
    // Something changed since: stale until the device pulls.
    dev.push(&app, json!([{"seq": 1, "name": "hazard.report", "args": hazard(&uuid::Uuid::new_v4().to_string(), &w.unit_a, "general")}]))
        .await
        .expect(200);
    let r = app.get(&path(&dev), &dev.token).await;
    assert_eq!(r.body["stale"], true, "{}", r.text);
    dev.sync(&app, 7).await;
    let r = app.get(&path(&dev), &dev.token).await;
    assert_eq!(server_sums(&r.body), local_sums(&dev));
    // A damaged copy sees the mismatch: a lost row, or a stale version.
    let mut damaged = Device {
        rows: dev.rows.clone(),
        ..Default::default()
    };
    let key = damaged
        .rows
        .keys()
        .find(|(t, _)| t == "units")
        .unwrap()
        .clone();
    damaged.rows.remove(&key);
    assert_ne!(
        server_sums(&r.body).get("units"),
        local_sums(&damaged).get("units")
    );
    let mut damaged = Device {
        rows: dev.rows.clone(),
        ..Default::default()
    };
    let key = damaged
        .rows
        .keys()
        .find(|(t, _)| t == "hazards")
        .unwrap()
        .clone();
    damaged.rows.get_mut(&key).unwrap().0 -= 1;
    assert_ne!(
        server_sums(&r.body).get("hazards"),
        local_sums(&damaged).get("hazards")
    );
    app.get("/api/v1/sync/checksum", &dev.token)
        .await
        .expect_error(422, "validation_failed");
    app.get("/api/v1/sync/checksum?cursor=forged", &dev.token)
        .await
        .expect_error(400, "invalid_cursor");
}

async fn concurrent_edits_merge_by_field_and_log_conflicts(app: TestApp) {
    let w = world(&app).await;
    let ins = Device::new(&app, "ins1", "ins-phone").await;
    let mgr = Device::new(&app, "mgr", "mgr-phone").await;
    let h = uuid::Uuid::new_v4().to_string();
    ins.push(
        &app,
        json!([{"seq": 1, "name": "hazard.report", "args": hazard(&h, &w.unit_a, "general")}]),
    )
    .await
    .expect(200);
    async fn fetch(app: &TestApp, token: &str, id: &str) -> Value {
        app.get(&format!("/api/v1/hazards/{id}"), token).await.body
    }
    let v0 = fetch(&app, &w.mgr, &h).await["version"].as_i64().unwrap();
    let update = |seq: i64, base: i64, fields: Value| json!([{"seq": seq, "name": "hazard.update", "args": {"id": h, "base_version": base, "fields": fields}}]);
    // Both edit from v0, different fields: both kept.
    let r = mgr
        .push(&app, update(1, v0, json!({"level": "major"})))
        .await;
    assert_eq!(r.body["results"][0]["status"], "applied", "{}", r.text);
    let r = ins
        .push(&app, update(2, v0, json!({"item_code": "3000-03"})))
        .await;
    assert_eq!(r.body["results"][0]["status"], "merged", "{}", r.text);
    let now = fetch(&app, &w.mgr, &h).await;
    assert_eq!(now["level"], "major");
    assert_eq!(now["item_code"], "3000-03");
    let v1 = now["version"].as_i64().unwrap();
    // Same content field from the same base: the last received wins, the loser is logged.
    let r = mgr
        .push(
            &app,
            update(2, v1, json!({"description": "经理的描述\n第二行"})),
        )
        .await;
    assert_eq!(r.body["results"][0]["status"], "applied");
    let r = ins
        .push(&app, update(3, v1, json!({"description": "检查员的描述"})))
        .await;
    assert_eq!(r.body["results"][0]["status"], "conflict", "{}", r.text);
    assert_eq!(fetch(&app, &w.mgr, &h).await["description"], "检查员的描述");
    let r = ins
        .push(&app, update(4, v1, json!({"description": "bell\u{0007}"})))
        .await;
    assert_eq!(r.body["results"][0]["status"], "rejected", "{}", r.text);
    // A managers' field: the server's value stays.
    let admin = app.admin_token().await;
    app.create_user(&admin, "mgr-b", "manager", "330106").await;
    let mgr_b = Device::new(&app, "mgr-b", "b-phone").await;
    let v2 = fetch(&app, &w.mgr, &h).await["version"].as_i64().unwrap();
    mgr.push(&app, update(3, v2, json!({"level": "general"})))
        .await
        .expect(200);
    let r = mgr_b
        .push(
            &app,
            update(
                1,
                v2,
                json!({"level": "minor", "deadline": "2027-01-31T00:00:00Z"}),
            ),
        )
        .await;
    assert_eq!(r.body["results"][0]["status"], "conflict", "{}", r.text);
    let now = fetch(&app, &w.mgr, &h).await;
    assert_eq!(now["level"], "general", "server wins on a managers' field");
    assert_eq!(
        now["deadline"], "2027-01-31T00:00:00Z",
        "the untouched field merged"
    );
    // Inspectors may not set managers' fields; unknown or foreign rows are not created.
    let r = ins
        .push(&app, update(5, v2, json!({"level": "minor"})))
        .await;
    assert_eq!(r.body["results"][0]["status"], "rejected");
    assert_eq!(r.body["results"][0]["error"]["code"], "forbidden");
    let ghost = uuid::Uuid::new_v4().to_string();
    let r = ins
        .push(&app, json!([{"seq": 6, "name": "hazard.update", "args": {"id": ghost, "base_version": 1, "fields": {"description": "x"}}}]))
        .await;
    assert_eq!(r.body["results"][0]["status"], "rejected");
    assert_eq!(r.body["results"][0]["error"]["code"], "not_found");
    app.get(&format!("/api/v1/hazards/{ghost}"), &w.mgr)
        .await
        .expect_error(404, "not_found");
    // Managers review the conflicts of their region.
    let r = app.get("/api/v1/sync/conflicts", &w.mgr).await;
    r.expect(200);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", r.text);
    let desc = items.iter().find(|c| c["field"] == "description").unwrap();
    assert_eq!(
        desc["lost_value"], "经理的描述\n第二行",
        "line breaks are kept"
    );
    assert_eq!(desc["kept_value"], "检查员的描述");
    assert_eq!(desc["winner"], "device");
    let level = items.iter().find(|c| c["field"] == "level").unwrap();
    assert_eq!(level["lost_value"], "minor");
    assert_eq!(level["winner"], "server");
    app.get("/api/v1/sync/conflicts", &ins.token)
        .await
        .expect_error(403, "forbidden");
    let far = app
        .create_user(&admin, "mgr-far", "manager", "330105")
        .await;
    let _ = far;
    let far = app.token("mgr-far", PASSWORD).await;
    let r = app.get("/api/v1/sync/conflicts", &far).await;
    assert_eq!(r.body["items"], json!([]));
}

/// A small deterministic generator (the simulation must be repeatable).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// A phone with a queue of mutations not yet acknowledged.
struct Phone {
    dev: Device,
    user: String,
    queue: Vec<Value>,
    next_seq: i64,
    acked: Vec<Value>,
}

async fn a_randomized_fleet_converges(app: TestApp) {
    let w = world(&app).await;
    let team_a = vec![uid(&w.insp[0])];
    let asg = assign(&app, &w.city, &w.unit_b, &team_a).await;
    let mut phones = Vec::new();
    for (user, dev) in [
        ("ins1", "p1"),
        ("ins2", "p2"),
        ("mgr", "p3"),
        ("city", "p4"),
    ] {
        phones.push(Phone {
            dev: Device::new(&app, user, dev).await,
            user: user.to_string(),
            queue: Vec::new(),
            next_seq: 1,
            acked: Vec::new(),
        });
    }
    let units = [w.unit_a.clone(), w.unit_b.clone()];
    let mut rng = Lcg(20261125);
    let mut reported = Vec::new();
    for step in 0..120 {
        let i = rng.next(phones.len() as u64) as usize;
        match rng.next(10) {
            // Work offline: queue a report (sometimes on a unit out of reach: rejected).
            0..=3 => {
                let p = &mut phones[i];
                let id = uuid::Uuid::new_v4().to_string();
                let unit = &units[rng.next(2) as usize];
                p.queue.push(json!({"seq": p.next_seq, "name": "hazard.report", "args": hazard(&id, unit, "general")}));
                p.next_seq += 1;
                reported.push(id);
            }
            // Sync the queue; sometimes the response is lost on the way back.
            4..=5 => {
                let p = &mut phones[i];
                if p.queue.is_empty() {
                    continue;
                }
                let r = p.dev.push(&app, Value::Array(p.queue.clone())).await;
                r.expect(200);
                if rng.next(3) == 0 {
                    continue; // lost: the phone keeps its queue and will send it again
                }
                for res in r.body["results"].as_array().unwrap() {
                    p.acked.push(res.clone());
                }
                p.queue.clear();
            }
            // Pull a page; sometimes the response is lost (cursor not advanced).
            6..=7 => {
                let p = &mut phones[i];
                if rng.next(4) == 0 {
                    let mut path = "/api/v1/sync/pull?limit=3".to_string();
                    if let Some(c) = &p.dev.cursor {
                        path.push_str(&format!("&cursor={c}"));
                    }
                    app.get(&path, &p.dev.token).await.expect(200);
                } else {
                    p.dev.pull_page(&app, 3).await;
                }
            }
            // Managers change things meanwhile.
            _ => match rng.next(3) {
                0 => {
                    let team = if rng.next(2) == 0 {
                        uid(&w.insp[0])
                    } else {
                        uid(&w.insp[1])
                    };
                    app.patch(
                        &format!("/api/v1/assignments/{}", uid(&asg)),
                        &w.city,
                        json!({"team": [team]}),
                    )
                    .await
                    .expect(200);
                }
                1 => {
                    app.patch(
                        &format!("/api/v1/units/{}", units[rng.next(2) as usize]),
                        &w.city,
                        json!({"contact_name": format!("联系人{step}")}),
                    )
                    .await
                    .expect(200);
                }
                _ => {
                    app.post(
                        "/api/v1/units",
                        &w.city,
                        json!({"uscc": uscc("330106", 1000 + step), "name": format!("新{step}"),
                               "address": "路", "region_code": if step % 2 == 0 { "330106" } else { "330105" },
                               "place_type": "office"}),
                    )
                    .await
                    .expect(201);
                }
            },
        }
    }
    // Everyone reconnects for good: push everything, then pull to the end.
    for p in phones.iter_mut() {
        if !p.queue.is_empty() {
            let r = p.dev.push(&app, Value::Array(p.queue.clone())).await;
            r.expect(200);
            for res in r.body["results"].as_array().unwrap() {
                p.acked.push(res.clone());
            }
            p.queue.clear();
        }
    }
    for p in phones.iter_mut() {
        p.dev.sync(&app, 7).await;
    }
    let mut applied = 0;
    for p in &phones {
        // Every mutation acknowledged, once, in order, with a final status.
        let seqs: Vec<i64> = p.acked.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, (1..p.next_seq).collect::<Vec<_>>(), "{}", p.user);
        for r in &p.acked {
            let s = r["status"].as_str().unwrap();
            assert!(
                ["applied", "merged", "conflict", "rejected"].contains(&s),
                "{r}"
            );
            applied += usize::from(s == "applied");
        }
        assert_converged(&app, &p.dev, &p.user, "after the simulation").await;
    }
    let mut db = Direct::open(&app);
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM hazards") as usize,
        applied,
        "every applied report exists once; nothing rejected was written"
    );
    assert!(applied > 5, "the simulation did some work: {applied}");
    let _ = reported;
}

async fn a_row_entering_scope_mid_walk_is_not_lost(app: TestApp) {
    let w = world(&app).await;
    let a = uid(&w.insp[0]); // ins1, 330106; unit_b is in 330105
    let mut dev = Device::new(&app, "ins1", "a-phone").await;
    dev.sync(&app, 100).await;
    assert!(!dev.ids("units").contains(&w.unit_b));
    // unit_b changes after the device's cursor (out of its scope for now).
    app.patch(
        &format!("/api/v1/units/{}", w.unit_b),
        &w.city,
        json!({"name": "改名B"}),
    )
    .await
    .expect(200);
    // Changes in scope after that, enough for several pages.
    for n in 10..14 {
        app.post(
            "/api/v1/units",
            &w.city,
            json!({"uscc": uscc("330106", n), "name": format!("单位{n}"), "address": "路",
                   "region_code": "330106", "place_type": "mall"}),
        )
        .await
        .expect(201);
    }
    // First page of the walk: its position passes unit_b's version.
    let r = dev.pull_page(&app, 2).await;
    assert!(r.body["has_more"].as_bool().unwrap());
    // Mid-walk, ins1 is given an assignment on unit_b.
    assign(&app, &w.city, &w.unit_b, std::slice::from_ref(&a)).await;
    dev.sync(&app, 2).await;
    assert_converged(&app, &dev, "ins1", "entered mid-walk").await;
}

async fn team_mates_arrive_and_leave_with_the_team(app: TestApp) {
    let w = world(&app).await;
    let (a, c) = (uid(&w.insp[0]), uid(&w.insp[2])); // ins1 330106, ins3 330105
    let asg = assign(&app, &w.city, &w.unit_a, std::slice::from_ref(&a)).await;
    let mut dev = Device::new(&app, "ins1", "a-phone").await;
    dev.sync(&app, 100).await;
    assert!(!dev.ids("users").contains(&c));
    app.patch(
        &format!("/api/v1/assignments/{}", uid(&asg)),
        &w.city,
        json!({"team": [a.clone(), c.clone()]}),
    )
    .await
    .expect(200);
    dev.sync(&app, 100).await;
    assert_converged(&app, &dev, "ins1", "added").await;
    assert!(dev.ids("users").contains(&c), "the new team-mate arrived");
    app.patch(
        &format!("/api/v1/assignments/{}", uid(&asg)),
        &w.city,
        json!({"team": [a.clone()]}),
    )
    .await
    .expect(200);
    dev.sync(&app, 100).await;
    assert_converged(&app, &dev, "ins1", "removed").await;
}

async fn a_removed_team_mate_is_evicted(app: TestApp) {
    let w = world(&app).await;
    let (a, c) = (uid(&w.insp[0]), uid(&w.insp[2])); // ins1 330106, ins3 330105
    let asg = assign(&app, &w.city, &w.unit_a, &[a.clone(), c.clone()]).await;
    let mut dev = Device::new(&app, "ins1", "a-phone").await;
    dev.sync(&app, 100).await;
    assert!(
        dev.ids("users").contains(&c),
        "the initial sync holds the team-mate"
    );
    app.patch(
        &format!("/api/v1/assignments/{}", uid(&asg)),
        &w.city,
        json!({"team": [a.clone()]}),
    )
    .await
    .expect(200);
    dev.sync(&app, 100).await;
    assert_converged(&app, &dev, "ins1", "removed").await;
}

async fn a_deleted_assignment_takes_what_it_brought(app: TestApp) {
    let w = world(&app).await;
    let a = uid(&w.insp[0]); // ins1 330106; unit_b in 330105
    let asg = assign(&app, &w.city, &w.unit_b, std::slice::from_ref(&a)).await;
    let mut dev = Device::new(&app, "ins1", "a-phone").await;
    dev.sync(&app, 100).await;
    assert!(dev.ids("units").contains(&w.unit_b));
    delete_assignment(&app, &w.city, &uid(&asg)).await;
    dev.sync(&app, 100).await;
    assert_converged(&app, &dev, "ins1", "deleted").await;
}

async fn pruned_history_resets_devices_older_than_it(app: TestApp) {
    let w = world(&app).await;
    let a = assign(&app, &w.mgr, &w.unit_a, &[uid(&w.insp[0])]).await;
    let mut old = Device::new(&app, "mgr", "old-phone").await;
    old.sync(&app, 100).await;
    delete_assignment(&app, &w.mgr, &uid(&a)).await;
    // Half a year later the sync log is pruned: the delete is forgotten.
    app.clock.advance(chrono::Duration::days(181));
    let cfg = crate::common::test_config(&app.db);
    let db = xuncha::db::Db::open(&cfg.db_target().unwrap(), cfg.pool_options()).unwrap();
    let mut conn = db.get().unwrap();
    let now = app.clock.now();
    let p = xuncha::sync::prune::prune_job(&mut conn, now, 180, 3600)
        .unwrap()
        .expect("this server's turn");
    assert!(p.tombstones >= 1 && p.through > 0, "{p:?}");
    assert!(
        xuncha::sync::prune::prune_job(&mut conn, now, 180, 3600)
            .unwrap()
            .is_none(),
        "one server per interval"
    );
    assert_eq!(
        xuncha::sync::prune::prune(&mut conn, now, 180)
            .unwrap()
            .tombstones,
        0,
        "idempotent"
    );
    // The device that slept through it must start over; it cannot miss the delete.
    let token = app.token("mgr", PASSWORD).await;
    let r = app
        .get(
            &format!("/api/v1/sync/pull?cursor={}", old.cursor.clone().unwrap()),
            &token,
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["reset"], true, "{}", r.text);
    let mut fresh = Device::new(&app, "mgr", "new-phone").await;
    fresh.sync(&app, 100).await;
    assert!(!fresh.ids("assignments").contains(&uid(&a)));
    // A device that synced after the pruned history is unaffected.
    let r = app
        .get(
            &format!("/api/v1/sync/pull?cursor={}", fresh.cursor.clone().unwrap()),
            &fresh.token,
        )
        .await;
    assert_eq!(r.body["changes"], json!([]), "{}", r.text);
}

async fn a_failure_inside_a_mutation_leaves_nothing_behind(app: TestApp) {
    let w = world(&app).await;
    let dev = Device::new(&app, "ins1", "phone").await;
    // Make the database fail the mutation's last write (its unit's risk facts), after the
    // hazard row itself was written.
    app.patch(
        &format!("/api/v1/units/{}", w.unit_a),
        &w.mgr,
        json!({"contact_name": "boom"}),
    )
    .await
    .expect(200);
    let mut db = Direct::open(&app);
    match app.backend {
        Backend::Sqlite => db
            .exec(
                "CREATE TRIGGER boom BEFORE UPDATE ON units WHEN NEW.contact_name = 'boom' \
                 AND NEW.open_hazards > 0 BEGIN SELECT RAISE(ABORT, 'boom'); END",
            )
            .unwrap(),
        Backend::Postgres => {
            db.exec(
                "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN \
                 IF NEW.contact_name = 'boom' AND NEW.open_hazards > 0 THEN \
                 RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END; $$ LANGUAGE plpgsql",
            )
            .unwrap();
            db.exec(
                "CREATE TRIGGER boom BEFORE UPDATE ON units FOR EACH ROW EXECUTE FUNCTION boom()",
            )
            .unwrap()
        }
    };
    let version_before = db.count("SELECT seq AS n FROM sync_clock WHERE id = 1");
    let h = uuid::Uuid::new_v4().to_string();
    // seq 1 is rejected (a unit outside ins1's district), seq 2 fails in storage.
    let outside = uuid::Uuid::new_v4().to_string();
    let batch = json!([
        {"seq": 1, "name": "hazard.report", "args": hazard(&outside, &w.unit_b, "general")},
        {"seq": 2, "name": "hazard.report", "args": hazard(&h, &w.unit_a, "general")},
    ]);
    let r = dev.push(&app, batch.clone()).await;
    assert_eq!(
        r.status, 500,
        "a storage failure stops the batch: {}",
        r.text
    );
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM hazards"),
        0,
        "no partial effects"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM sync_mutations WHERE seq = 2"),
        0,
        "the sequence did not advance past the failed mutation"
    );
    assert_eq!(
        db.count("SELECT seq AS n FROM sync_clock WHERE id = 1"),
        version_before + 1,
        "only the mutation before it took a version; the failed one's bump was rolled back"
    );
    // Once the fault is gone, the device's retry applies it; seq 1 answers from the log.
    db.exec("DROP TRIGGER boom ON units")
        .or_else(|_| db.exec("DROP TRIGGER boom"))
        .unwrap();
    let r = dev.push(&app, batch).await;
    assert_eq!(r.body["results"][0]["status"], "rejected", "{}", r.text);
    assert_eq!(r.body["results"][1]["status"], "applied", "{}", r.text);
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM hazards"), 1);
}

async fn hazard_lists_follow_the_sync_scope(app: TestApp) {
    let w = world(&app).await;
    let admin = app.admin_token().await;
    app.post(
        "/api/v1/users",
        &admin,
        json!({"username": "unit1", "password": PASSWORD, "display_name": "单位用户",
               "role": "unit", "region_code": "330106", "unit_id": w.unit_a}),
    )
    .await
    .expect(201);
    let city = Device::new(&app, "city", "city-phone").await;
    let (ha, hb) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    city.push(
        &app,
        json!([
            {"seq": 1, "name": "hazard.report", "args": hazard(&ha, &w.unit_a, "general")},
            {"seq": 2, "name": "hazard.report", "args": hazard(&hb, &w.unit_b, "major")},
        ]),
    )
    .await
    .expect(200);
    let ids = |r: &Resp| -> BTreeSet<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect()
    };
    let list = |token: String| {
        let app = &app;
        async move { app.get("/api/v1/hazards", &token).await }
    };
    assert_eq!(
        ids(&list(w.city.clone()).await),
        BTreeSet::from([ha.clone(), hb.clone()])
    );
    assert_eq!(
        ids(&list(w.mgr.clone()).await),
        BTreeSet::from([ha.clone()])
    );
    let unit = app.token("unit1", PASSWORD).await;
    assert_eq!(ids(&list(unit).await), BTreeSet::from([ha.clone()]));
    // An inspector of 330106 sees their district, and unit_b once assigned to it.
    let ins1 = app.token("ins1", PASSWORD).await;
    assert_eq!(ids(&list(ins1.clone()).await), BTreeSet::from([ha.clone()]));
    app.get(&format!("/api/v1/hazards/{hb}"), &ins1)
        .await
        .expect_error(404, "not_found");
    assign(&app, &w.city, &w.unit_b, &[uid(&w.insp[0])]).await;
    assert_eq!(
        ids(&list(ins1.clone()).await),
        BTreeSet::from([ha.clone(), hb.clone()])
    );
    app.get(&format!("/api/v1/hazards/{hb}"), &ins1)
        .await
        .expect(200);
    // Filters and pages.
    let r = app.get("/api/v1/hazards?level=major", &w.city).await;
    assert_eq!(ids(&r), BTreeSet::from([hb.clone()]));
    let r = app
        .get(&format!("/api/v1/hazards?unit_id={}", w.unit_a), &w.city)
        .await;
    assert_eq!(ids(&r), BTreeSet::from([ha.clone()]));
    let first = app.get("/api/v1/hazards?limit=1", &w.city).await;
    let next = first.body["next"].as_str().unwrap().to_string();
    let second = app
        .get(&format!("/api/v1/hazards?limit=1&after={next}"), &w.city)
        .await;
    assert_eq!(
        ids(&first).union(&ids(&second)).count(),
        2,
        "two pages, each hazard once"
    );
}

/// Two app servers on one database. B answers caught-up pulls and known sessions from memory
/// (it never polls in this test, so what it knows is exactly what the test made it read);
/// what A writes reaches B's devices, and what A revokes ends on B, once B polls.
async fn a_second_server_learns_changes_and_revocations_when_it_polls(app: TestApp) {
    let w = world(&app).await;
    let b = app
        .spawn_beside(|c| {
            c.cluster_poll_ms = 0;
            c.auth_cache_secs = 3600;
        })
        .await;
    let mut dev = Device::new(&app, "mgr", "phone").await;
    dev.sync(&b, 100).await;
    let caught_up = dev.cursor.clone().unwrap();
    assert!(b.get("/api/v1/me", &dev.token).await.status == 200);

    // A writes. B's caught-up devices hear "nothing new" until B polls (never a false
    // "nothing" on the server that wrote: other tests pull right after their pushes).
    let writer = Device::new(&app, "mgr", "phone-2").await;
    let id = uuid::Uuid::new_v4().to_string();
    writer
        .push(
            &app,
            json!([{"seq": 1, "name": "hazard.report", "args": hazard(&id, &w.unit_a, "general")}]),
        )
        .await
        .expect(200);
    let r = b
        .get(&format!("/api/v1/sync/pull?cursor={caught_up}"), &dev.token)
        .await;
    assert_eq!(r.body["changes"], json!([]), "{}", r.text);
    assert_eq!(r.body["cursor"], caught_up.as_str());
    b.settle().await;
    let seen = dev.sync(&b, 100).await;
    assert!(
        seen.contains(&("hazards".into(), id.clone(), "put".into())),
        "{seen:?}"
    );
    assert_eq!(dev.state(), server_state(&app, "mgr").await);

    // A ends the session; B still trusts its cached copy until it polls, then refuses it.
    app.req(Method::POST, "/api/v1/auth/logout", Some(&dev.token), None)
        .await
        .expect(204);
    app.get("/api/v1/me", &dev.token)
        .await
        .expect_error(401, "session_revoked");
    b.get("/api/v1/me", &dev.token).await.expect(200);
    b.settle().await;
    b.get("/api/v1/me", &dev.token)
        .await
        .expect_error(401, "session_revoked");
    let r = b
        .get(
            &format!("/api/v1/sync/pull?cursor={}", dev.cursor.clone().unwrap()),
            &dev.token,
        )
        .await;
    r.expect_error(401, "session_revoked");
}

/// The second device of a district gets rows from the row cache; a change is a new version,
/// so every device gets the new content, never the cached old one.
async fn rows_served_from_the_row_cache_are_never_stale(app: TestApp) {
    let w = world(&app).await;
    let mut first = Device::new(&app, "mgr", "phone-first").await;
    first.sync(&app, 3).await;
    let mut second = Device::new(&app, "mgr", "phone-second").await;
    second.sync(&app, 3).await;
    assert_eq!(first.rows, second.rows, "the same rows, data included");
    let key = ("units".to_string(), w.unit_a.clone());
    assert_eq!(second.rows[&key].1["name"], "单位1");
    app.patch(
        &format!("/api/v1/units/{}", w.unit_a),
        &w.mgr,
        json!({"name": "改名后的单位"}),
    )
    .await
    .expect(200);
    first.sync(&app, 3).await;
    let mut third = Device::new(&app, "mgr", "phone-third").await;
    third.sync(&app, 3).await;
    for d in [&first, &third] {
        assert_eq!(d.rows[&key].1["name"], "改名后的单位");
    }
    assert_eq!(first.rows, third.rows);
}

/// Entries of `sync_row_json` whose version is the row's, for each of `tables`; and all rows.
fn stored_and_all(db: &mut Direct, tables: &[&str]) -> Vec<(String, i64, i64)> {
    tables
        .iter()
        .map(|t| {
            let stored = db.count(&format!(
                "SELECT COUNT(*) AS n FROM {t} r JOIN sync_row_json j \
                 ON j.tbl = '{t}' AND j.id = r.id AND j.version = r.version"
            ));
            let all = db.count(&format!("SELECT COUNT(*) AS n FROM {t}"));
            (t.to_string(), stored, all)
        })
        .collect()
}

/// Pages are filled from the JSON stored when each row was written (see src/sync/stored.rs):
/// every row written through the API has its entry, a deleted row loses it, and a device
/// gets exactly the rows it would get if every row were rendered from its columns.
async fn rows_stored_at_write_time_equal_rows_rendered_from_their_columns(app: TestApp) {
    let w = world(&app).await;
    let a = uid(&w.insp[0]);
    let asg = assign(&app, &w.city, &w.unit_b, std::slice::from_ref(&a)).await;
    let gone = assign(&app, &w.city, &w.unit_a, std::slice::from_ref(&a)).await;
    let city = Device::new(&app, "city", "city-phone").await;
    let (hz, other) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    // Two mutations of one push: one write transaction, two versions, stored together.
    let r = city
        .push(
            &app,
            json!([
                {"seq": 1, "name": "hazard.report", "args": hazard(&hz, &w.unit_b, "general")},
                {"seq": 2, "name": "hazard.report", "args": hazard(&other, &w.unit_a, "major")},
            ]),
        )
        .await;
    r.expect(200);
    let update = |seq: i64, base: i64, text: &str| {
        json!([{"seq": seq, "name": "hazard.update",
                "args": {"id": hz, "base_version": base, "fields": {"description": text}}}])
    };
    let v = r.body["results"][0]["version"].as_i64().unwrap();
    let r = city.push(&app, update(3, v, "门锁回路已短接，停梯")).await;
    r.expect(200);
    assert_eq!(r.body["results"][0]["status"], "applied", "{}", r.text);
    let v = r.body["results"][0]["version"].as_i64().unwrap();
    delete_assignment(&app, &w.city, &uid(&gone)).await;
    // A server without a row cache: every page reads the database.
    let plain = app.spawn_beside(|c| c.sync_row_cache_mb = 0).await;
    let mut db = Direct::open(&app);
    let tables = ["units", "equipment", "hazards", "assignments", "users"];
    for (t, stored, all) in stored_and_all(&mut db, &tables) {
        assert!(all > 0, "{t} has rows");
        assert_eq!(
            stored, all,
            "every {t} row has its JSON stored at its version"
        );
    }
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) AS n FROM sync_row_json WHERE id = '{}'",
            uid(&gone)
        )),
        0,
        "a deleted row's entry goes with it"
    );
    let mut stored = Device::new(&plain, "ins1", "stored-phone").await;
    stored.sync(&plain, 4).await;
    let mut manager = Device::new(&plain, "city", "stored-city").await;
    manager.sync(&plain, 4).await;
    assert!(stored.ids("assignments").contains(&uid(&asg)));
    assert!(manager.ids("hazards").contains(&hz) && manager.ids("hazards").contains(&other));
    // Without the entries every row is rendered from its columns: the same copies.
    db.exec("DELETE FROM sync_row_json").unwrap();
    let mut rendered = Device::new(&plain, "ins1", "rendered-phone").await;
    rendered.sync(&plain, 4).await;
    assert_eq!(
        stored.rows, rendered.rows,
        "ins1: the same rows, data included"
    );
    let mut rendered_city = Device::new(&plain, "city", "rendered-city").await;
    rendered_city.sync(&plain, 4).await;
    assert_eq!(
        manager.rows, rendered_city.rows,
        "city: the same rows, data included"
    );
    let key = ("hazards".to_string(), hz.clone());
    assert_eq!(
        rendered_city.rows[&key].1["description"],
        "门锁回路已短接，停梯"
    );
    // The next write of a row stores it again, and a device sees the write.
    let r = city.push(&app, update(4, v, "已停梯")).await;
    assert_eq!(r.body["results"][0]["status"], "applied", "{}", r.text);
    assert_eq!(stored_and_all(&mut db, &["hazards"])[0].1, 1);
    plain.settle().await; // the write went through the other server
    manager.sync(&plain, 4).await;
    assert_eq!(manager.rows[&key].1["description"], "已停梯");
    let mut fresh = Device::new(&plain, "city", "fresh-city").await;
    fresh.sync(&plain, 4).await;
    assert_eq!(manager.rows, fresh.rows);
}

/// The next page of a paged pull is read ahead (see `sync::prefetch`): it goes out when the
/// device asks for it and nothing was committed since, byte for byte what a server without
/// read-ahead answers; after a commit the page is read again. `app.prefetch.settle()` waits
/// for the read-ahead, so that it was surely read before the write that follows.
async fn read_ahead_pages_go_out_only_while_nothing_was_committed(app: TestApp) {
    let w = world(&app).await;
    let plain = app.spawn_beside(|c| c.sync_prefetch_pages = 0).await;
    let rows = server_state(&app, "mgr").await.len() as i64;
    assert!(rows > 4, "the scope spans pages: {rows}");
    let login = |a: &TestApp, dev: &str| {
        let (a, dev) = (a.base.clone(), dev.to_string());
        async move {
            let pair = crate::common::client()
                .post(format!("{a}/api/v1/auth/login"))
                .json(&json!({"username": "mgr", "password": PASSWORD, "device_id": dev}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap();
            pair["access_token"].as_str().unwrap().to_string()
        }
    };
    let raw = |a: &TestApp, token: &str, limit: i64, cursor: Option<&str>| {
        let mut url = format!("{}/api/v1/sync/pull?limit={limit}", a.base);
        if let Some(c) = cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let req = crate::common::client()
            .get(url)
            .bearer_auth(token.to_string());
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let cursor_of = |text: &str| -> (String, bool) {
        let v: Value = serde_json::from_str(text).unwrap();
        (
            v["cursor"].as_str().unwrap().to_string(),
            v["has_more"].as_bool().unwrap(),
        )
    };

    // Nothing changes: every page after the first comes from the read-ahead, and the pages
    // are the very bytes of a server that reads each page when asked.
    let (t_ahead, t_plain) = (
        login(&app, "phone-ahead").await,
        login(&plain, "phone-plain").await,
    );
    let (mut c_ahead, mut c_plain): (Option<String>, Option<String>) = (None, None);
    let mut pages = 0;
    loop {
        let a = raw(&app, &t_ahead, 2, c_ahead.as_deref()).await;
        let p = raw(&plain, &t_plain, 2, c_plain.as_deref()).await;
        assert_eq!(a, p, "page {pages}");
        pages += 1;
        app.prefetch.settle().await;
        let (next, more) = cursor_of(&a);
        if !more {
            break;
        }
        c_ahead = Some(next.clone());
        c_plain = Some(next);
    }
    assert!(pages >= 3);
    assert_eq!(
        app.prefetch.served(),
        pages - 1,
        "each later page was read ahead"
    );
    assert_eq!(plain.prefetch.served(), 0);
    assert!(app.prefetch.is_empty(), "the last page reads nothing ahead");

    // A commit after the next page was read ahead: the device gets the page as it is now.
    // The first page leaves one row, so the read-ahead one is the last (`has_more: false`):
    // had it gone out, the device would think itself caught up without the rename.
    let token = login(&app, "phone-2").await;
    let first = raw(&app, &token, rows - 1, None).await;
    let (cursor, more) = cursor_of(&first);
    assert!(more);
    app.prefetch.settle().await;
    assert_eq!(app.prefetch.len(), 1, "the next page was read ahead");
    let served = app.prefetch.served();
    app.patch(
        &format!("/api/v1/units/{}", w.unit_a),
        &w.mgr,
        json!({"name": "读后改名"}),
    )
    .await
    .expect(200);
    let second = raw(&app, &token, rows - 1, Some(&cursor)).await;
    assert_eq!(
        app.prefetch.served(),
        served,
        "the stale read-ahead was not used"
    );
    let v: Value = serde_json::from_str(&second).unwrap();
    assert!(
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == w.unit_a.as_str() && c["data"]["name"] == "读后改名"),
        "the rename is in the page: {second}"
    );
}

/// On PostgreSQL, a page with many rows to fill from the stored JSON reads them on two
/// connections at once (`sync_page_connections`, default 2): the same bytes as a server that
/// reads them on one, whichever connection read an entry; entries missing or of another
/// version are rendered from the rows in the page's snapshot. SQLite reads on one.
async fn a_big_page_reads_its_stored_rows_on_two_connections(app: TestApp) {
    let m = app.user_with_token("mgr", "manager", "330106").await.1;
    let mut csv = String::from(UNIT_HEADER);
    for n in 1..=1600 {
        csv.push_str(&format!(
            "\n{},分单位{n},分路{n}号,330106,residential,,",
            uscc("330106", n)
        ));
    }
    crate::registry::import(&app, &m, "units", csv)
        .await
        .expect(200);
    // No row cache and no read-ahead: every page fills itself from the database.
    let beside = |conns: u64| {
        app.spawn_beside(move |c| {
            c.sync_row_cache_mb = 0;
            c.sync_prefetch_pages = 0;
            c.sync_page_connections = conns;
            c.db_pool_size = 8;
        })
    };
    let (split, single) = (beside(2).await, beside(1).await);
    let raw = |a: &TestApp, dev: &str| {
        let (a, dev) = (a.base.clone(), dev.to_string());
        async move {
            let c = crate::common::client();
            let login: Value = c
                .post(format!("{a}/api/v1/auth/login"))
                .json(&json!({"username": "mgr", "password": PASSWORD, "device_id": dev}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let token = login["access_token"].as_str().unwrap().to_string();
            c.get(format!("{a}/api/v1/sync/pull?limit=5000"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let before = split.server_db().asides_taken();
    let asides = u64::from(app.backend == Backend::Postgres);
    let one = raw(&single, "one-connection").await;
    let two = raw(&split, "two-connections").await;
    assert_eq!(one, two, "the same page");
    assert_eq!(single.server_db().asides_taken(), 0);
    assert_eq!(
        split.server_db().asides_taken(),
        before + asides,
        "a second connection on PostgreSQL"
    );
    let page: Value = serde_json::from_str(&two).unwrap();
    let mut units: Vec<String> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["table"] == "units")
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(units.len(), 1600);
    units.sort();

    // Entries marked (as stored, so sent as stored), dropped or of another version (both
    // rendered from the rows), spread over both connections' share.
    let list = |k: usize, r: usize| {
        units
            .iter()
            .enumerate()
            .filter(|(n, _)| n % k == r)
            .map(|(_, id)| format!("'{id}'"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut db = Direct::open(&app);
    db.exec(&format!(
        "UPDATE sync_row_json SET json = '{{\"marked\":true}}' WHERE tbl = 'units' AND id IN ({})",
        list(7, 0)
    ))
    .unwrap();
    db.exec(&format!(
        "DELETE FROM sync_row_json WHERE tbl = 'units' AND id IN ({})",
        list(7, 1)
    ))
    .unwrap();
    db.exec(&format!(
        "UPDATE sync_row_json SET version = version - 1 WHERE tbl = 'units' AND id IN ({})",
        list(7, 2)
    ))
    .unwrap();
    let one = raw(&single, "one-connection-2").await;
    let two = raw(&split, "two-connections-2").await;
    assert_eq!(one, two, "the same page after the entries changed");
    assert_eq!(split.server_db().asides_taken(), before + 2 * asides);
    let page: Value = serde_json::from_str(&two).unwrap();
    let data: BTreeMap<&str, &Value> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), &c["data"]))
        .collect();
    for (n, id) in units.iter().enumerate() {
        let marked = data[id.as_str()].get("marked").is_some();
        assert_eq!(marked, n % 7 == 0, "unit {n}: {}", data[id.as_str()]);
        if n % 7 != 0 {
            assert!(data[id.as_str()]["name"].is_string(), "unit {n} rendered");
        }
    }
}
