//! The hazard lifecycle to verified closure, inspection records and the audit chain, through
//! REST and through push, on SQLite and PostgreSQL.

use serde_json::{Value, json};

use crate::common::{Backend, Direct, PASSWORD, TestApp};
use crate::registry::uscc;

crate::both_backends!(
    a_minor_hazard_fixed_on_site_is_rechecked_and_closed,
    a_general_hazard_closes_through_rest_after_a_failed_recheck,
    a_major_hazard_closes_through_push,
    every_forbidden_transition_names_the_allowed_action,
    duties_are_separated,
    inspection_records_are_read_only_once_submitted,
    inspections_sync_to_the_team_and_reach_the_unit_when_submitted,
    the_audit_chain_detects_tampering,
    reports_stay_in_their_region_and_lists_leave_out_fixed_minor_hazards,
    enforcement_actions_carry_document_numbers_and_states,
    campaigns_have_phases_a_task_map_and_progress,
    records_and_rechecks_stay_with_the_right_people,
    a_push_batch_keeps_the_audit_chain_whole,
);

crate::both_backends_raw!(overdue_hazards_escalate_once);

/// Every lifecycle action of the contract table.
const ACTIONS: [&str; 6] = [
    "classify",
    "plan",
    "submit_rectification",
    "verify",
    "close",
    "reopen",
];
const DEADLINE: &str = "2030-06-30T00:00:00Z";
const PHOTO_SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

struct World {
    mgr: String,
    mgr_id: String,
    other_mgr: String,
    ins1: String,
    ins1_id: String,
    ins2: String,
    ins3: String,
    unit_user: String,
    unit: String,
    equipment: String,
    assignment: String,
}

fn uid(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A district manager (330106) and one of 330105; inspectors ins1, ins2 (330106) and ins3
/// (330105); a unit in 330106 with an elevator and its unit user; an assignment of ins1 and
/// ins2 to the unit.
async fn world(app: &TestApp) -> World {
    let admin = app.admin_token().await;
    let mgr_user = app.create_user(&admin, "mgr", "manager", "330106").await;
    app.create_user(&admin, "mgr5", "manager", "330105").await;
    let mgr = app.token("mgr", PASSWORD).await;
    let other_mgr = app.token("mgr5", PASSWORD).await;
    let mut ids = Vec::new();
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
        ids.push(uid(&r.body));
    }
    let r = app
        .post(
            "/api/v1/units",
            &mgr,
            json!({"uscc": uscc("330106", 1), "name": "商场", "address": "路",
                   "region_code": "330106", "place_type": "mall"}),
        )
        .await;
    r.expect(201);
    let unit = uid(&r.body);
    let r = app
        .post(
            "/api/v1/equipment",
            &mgr,
            json!({"registration_code": crate::registry::reg_code(1), "unit_id": unit,
                   "category_code": "3110", "reg_status": "registered"}),
        )
        .await;
    r.expect(201);
    let equipment = uid(&r.body);
    app.post(
        "/api/v1/users",
        &admin,
        json!({"username": "unituser", "password": PASSWORD, "display_name": "单位",
               "role": "unit", "region_code": "330106", "unit_id": unit}),
    )
    .await
    .expect(201);
    let r = app
        .post(
            "/api/v1/assignments",
            &mgr,
            json!({"kind": "routine", "unit_id": unit, "equipment_ids": [equipment],
                   "team": [ids[0], ids[1]],
                   "window_start": "2026-12-01T00:00:00Z", "window_end": "2026-12-02T00:00:00Z"}),
        )
        .await;
    r.expect(201);
    World {
        mgr,
        mgr_id: uid(&mgr_user),
        other_mgr,
        ins1: app.token("ins1", PASSWORD).await,
        ins1_id: ids[0].clone(),
        ins2: app.token("ins2", PASSWORD).await,
        ins3: app.token("ins3", PASSWORD).await,
        unit_user: app.token("unituser", PASSWORD).await,
        unit,
        equipment,
        assignment: uid(&r.body),
    }
}

async fn act(
    app: &TestApp,
    token: &str,
    id: &str,
    action: &str,
    body: Value,
) -> crate::common::Resp {
    app.post(&format!("/api/v1/hazards/{id}/{action}"), token, body)
        .await
}

async fn act_ok(app: &TestApp, token: &str, id: &str, action: &str, body: Value) -> Value {
    let r = act(app, token, id, action, body).await;
    r.expect(200);
    r.body
}

/// Attaches a photo record (its bytes may follow later) and answers its id.
async fn photo(app: &TestApp, token: &str, hazard: &str, kind: &str) -> String {
    let id = new_id();
    app.post(
        "/api/v1/evidence",
        token,
        json!({"id": id, "sha256": PHOTO_SHA, "hazard_id": hazard, "kind": kind}),
    )
    .await
    .expect(201);
    id
}

/// A device of `username` pushing mutations with contiguous seqs from 1.
struct Phone {
    token: String,
    device: String,
    seq: i64,
}

impl Phone {
    async fn new(app: &TestApp, username: &str) -> Phone {
        let device = format!("phone-{username}");
        let pair = app.login_ok(username, PASSWORD, &device).await;
        Phone {
            token: pair["access_token"].as_str().unwrap().to_string(),
            device,
            seq: 0,
        }
    }

    /// Pushes one mutation; answers its result.
    async fn push(&mut self, app: &TestApp, name: &str, args: Value) -> Value {
        self.seq += 1;
        app.push_one(&self.token, &self.device, self.seq, name, args)
            .await
    }

    async fn applied(&mut self, app: &TestApp, name: &str, args: Value) {
        let r = self.push(app, name, args).await;
        assert_eq!(r["status"], "applied", "{name}: {r}");
    }
}

async fn hazard(app: &TestApp, token: &str, id: &str) -> Value {
    let r = app.get(&format!("/api/v1/hazards/{id}"), token).await;
    r.expect(200);
    r.body
}

async fn a_minor_hazard_fixed_on_site_is_rechecked_and_closed(app: TestApp) {
    let w = world(&app).await;
    let mut p1 = Phone::new(&app, "ins1").await;
    let id = new_id();
    p1.applied(
        &app,
        "hazard.report",
        json!({"id": id, "unit_id": w.unit, "description": "警示标识脱落，已当场补贴",
               "level": "minor", "fixed_on_site": true}),
    )
    .await;
    assert_eq!(hazard(&app, &w.mgr, &id).await["state"], "fixed_on_site");
    // The reporter does not re-check their own finding.
    let own = photo(&app, &w.ins1, &id, "verification").await;
    act(
        &app,
        &w.ins1,
        &id,
        "verify",
        json!({"outcome": "pass", "evidence_ids": [own]}),
    )
    .await
    .expect_error(403, "forbidden");
    // A team-mate re-checks with their own new photo.
    let theirs = photo(&app, &w.ins2, &id, "verification").await;
    let mut p2 = Phone::new(&app, "ins2").await;
    let r = p2
        .push(
            &app,
            "hazard.verify",
            json!({"id": id, "outcome": "pass", "evidence_ids": [own]}),
        )
        .await;
    assert_eq!(r["status"], "rejected", "someone else's photo: {r}");
    p2.applied(
        &app,
        "hazard.verify",
        json!({"id": id, "outcome": "pass", "evidence_ids": [theirs]}),
    )
    .await;
    let h = act_ok(&app, &w.mgr, &id, "close", json!({})).await;
    assert_eq!(h["state"], "closed");
    assert_eq!(h["level"], "minor");
    assert_eq!(h["closed_by"], w.mgr_id);
    assert!(h["closed_at"].is_string());
}

async fn a_general_hazard_closes_through_rest_after_a_failed_recheck(app: TestApp) {
    let w = world(&app).await;
    // The unit reports its own hazard (自查自报) over REST; the server makes the id.
    let r = app
        .post(
            "/api/v1/hazards",
            &w.unit_user,
            json!({"unit_id": w.unit, "equipment_id": w.equipment,
                   "description": "轿厢照明不足", "level": "general"}),
        )
        .await;
    r.expect(201);
    let id = uid(&r.body);
    assert_eq!(r.body["state"], "reported");
    assert_eq!(r.body["proposed_level"], "general");
    // Classification: managers only, with a future deadline.
    act(
        &app,
        &w.unit_user,
        &id,
        "classify",
        json!({"level": "general", "deadline": DEADLINE}),
    )
    .await
    .expect_error(403, "forbidden");
    act(
        &app,
        &w.mgr,
        &id,
        "classify",
        json!({"level": "general", "deadline": "2020-01-01T00:00:00Z"}),
    )
    .await
    .expect_error(422, "validation_failed");
    let h = act_ok(
        &app,
        &w.mgr,
        &id,
        "classify",
        json!({"level": "general", "deadline": DEADLINE}),
    )
    .await;
    assert_eq!(h["state"], "classified");
    assert_eq!(
        h["equipment_stopped"], false,
        "only major hazards stop the equipment"
    );
    // A general plan needs measures and a deadline, not all five.
    let r = act(
        &app,
        &w.unit_user,
        &id,
        "plan",
        json!({"commitments": {"measures": "更换灯具"}}),
    )
    .await;
    r.expect(422);
    assert!(
        r.body["error"]["fields"]["commitments.deadline"].is_string(),
        "{}",
        r.text
    );
    let h = act_ok(
        &app,
        &w.unit_user,
        &id,
        "plan",
        json!({"commitments": {"measures": "更换灯具", "deadline": "2030-01-15T00:00:00Z"}}),
    )
    .await;
    assert_eq!(h["state"], "rectifying");
    assert_eq!(h["commitments"]["measures"], "更换灯具");
    // Rectification needs rectification photos of this hazard.
    let r = act(
        &app,
        &w.unit_user,
        &id,
        "submit_rectification",
        json!({"note": "已更换", "evidence_ids": []}),
    )
    .await;
    r.expect(422);
    assert!(r.body["error"]["fields"]["evidence_ids"].is_string());
    let fix = photo(&app, &w.unit_user, &id, "rectification").await;
    let h = act_ok(
        &app,
        &w.unit_user,
        &id,
        "submit_rectification",
        json!({"note": "已更换", "evidence_ids": [fix]}),
    )
    .await;
    assert_eq!(h["state"], "rectification_submitted");
    assert_eq!(h["rectification_note"], "已更换");
    // The re-check fails: back to rectifying, and round again.
    let h = act_ok(
        &app,
        &w.ins1,
        &id,
        "verify",
        json!({"outcome": "fail", "note": "仍不足"}),
    )
    .await;
    assert_eq!(h["state"], "rectifying");
    act_ok(
        &app,
        &w.unit_user,
        &id,
        "submit_rectification",
        json!({"note": "再次更换", "evidence_ids": [fix]}),
    )
    .await;
    // A pass needs verification photos.
    act(
        &app,
        &w.ins1,
        &id,
        "verify",
        json!({"outcome": "pass", "evidence_ids": [fix]}),
    )
    .await
    .expect(422);
    let check = photo(&app, &w.ins1, &id, "verification").await;
    let h = act_ok(
        &app,
        &w.ins1,
        &id,
        "verify",
        json!({"outcome": "pass", "evidence_ids": [check]}),
    )
    .await;
    assert_eq!(h["state"], "verified");
    assert_eq!(h["verified_by"], w.ins1_id);
    act(&app, &w.unit_user, &id, "close", json!({}))
        .await
        .expect_error(403, "forbidden");
    let h = act_ok(&app, &w.mgr, &id, "close", json!({"note": "销号"})).await;
    assert_eq!(h["state"], "closed");
    // Reopening: not by a plain inspector, by a manager with a reason.
    act(&app, &w.ins2, &id, "reopen", json!({"reason": "复发"}))
        .await
        .expect_error(403, "forbidden");
    act(&app, &w.mgr, &id, "reopen", json!({}))
        .await
        .expect(422);
    let h = act_ok(
        &app,
        &w.mgr,
        &id,
        "reopen",
        json!({"reason": "回头看发现复发"}),
    )
    .await;
    assert_eq!(h["state"], "rectifying");
    assert_eq!(h["reopen_count"], 1);
    assert!(h["closed_at"].is_null());
    // The audit trail holds every step and who attached which photo.
    let r = app
        .get(&format!("/api/v1/audit?entity_id={id}"), &w.mgr)
        .await;
    let actions: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "hazard.report",
            "hazard.classify",
            "hazard.plan",
            "hazard.submit_rectification",
            "hazard.verify",
            "hazard.submit_rectification",
            "hazard.verify",
            "hazard.close",
            "hazard.reopen"
        ]
    );
    let r = app.get("/api/v1/audit?entity_table=evidence", &w.mgr).await;
    let photos = r.body["items"].as_array().unwrap();
    assert_eq!(photos.len(), 2);
    assert!(
        photos
            .iter()
            .any(|e| e["entity_id"] == check.as_str() && e["actor_id"] == w.ins1_id)
    );
}

async fn a_major_hazard_closes_through_push(app: TestApp) {
    let w = world(&app).await;
    let mut p1 = Phone::new(&app, "ins1").await;
    let mut p2 = Phone::new(&app, "ins2").await;
    let insp = new_id();
    p1.applied(
        &app,
        "inspection.start",
        json!({"id": insp, "assignment_id": w.assignment, "started_at": "2026-12-01T09:00:00Z",
               "lat": 30.27, "lng": 120.15}),
    )
    .await;
    // 3000-03 maps to a GB 45067 clause and is checked per elevator.
    p1.applied(
        &app,
        "inspection.record_item",
        json!({"inspection_id": insp, "item_code": "3000-03", "equipment_id": w.equipment,
               "outcome": "fail", "note": "门锁回路短接"}),
    )
    .await;
    let id = new_id();
    p1.applied(
        &app,
        "hazard.report",
        json!({"id": id, "inspection_id": insp, "item_code": "3000-03", "unit_id": w.unit,
               "equipment_id": w.equipment, "description": "门锁回路短接", "level": "general"}),
    )
    .await;
    let h = hazard(&app, &w.mgr, &id).await;
    assert_eq!(h["level"], "major", "a failed GB 45067 item proposes major");
    assert_eq!(h["proposed_level"], "major");
    // Major: a notice number (listed supervision) is required; the elevator is stopped.
    let r = act(
        &app,
        &w.mgr,
        &id,
        "classify",
        json!({"level": "major", "deadline": DEADLINE}),
    )
    .await;
    r.expect(422);
    assert!(r.body["error"]["fields"]["notice_no"].is_string());
    let h = act_ok(
        &app,
        &w.mgr,
        &id,
        "classify",
        json!({"level": "major", "deadline": DEADLINE, "notice_no": "杭市监督〔2026〕12号"}),
    )
    .await;
    assert_eq!(h["equipment_stopped"], true);
    assert_eq!(h["notice_no"], "杭市监督〔2026〕12号");
    // All five commitments for a major hazard.
    let r = p1
        .push(
            &app,
            "hazard.plan",
            json!({"id": id, "commitments": {"measures": "更换门锁", "deadline": "2030-01-01T00:00:00Z"}}),
        )
        .await;
    assert_eq!(r["status"], "rejected");
    assert!(
        r["error"]["fields"]["commitments.responsible_person"].is_string(),
        "{r}"
    );
    p1.applied(
        &app,
        "hazard.plan",
        json!({"id": id, "commitments": {"responsible_person": "张三", "measures": "更换门锁",
               "funds": "2万元", "deadline": "2030-01-01T00:00:00Z", "contingency_plan": "停梯并张贴告示"}}),
    )
    .await;
    let fix = photo(&app, &w.ins1, &id, "rectification").await;
    p1.applied(
        &app,
        "hazard.submit_rectification",
        json!({"id": id, "note": "门锁已更换", "evidence_ids": [fix]}),
    )
    .await;
    let check = photo(&app, &w.ins2, &id, "verification").await;
    p2.applied(
        &app,
        "hazard.verify",
        json!({"id": id, "outcome": "pass", "evidence_ids": [check]}),
    )
    .await;
    // The close (销号) is a manager's; the inspectors cannot push it.
    let r = p1.push(&app, "hazard.close", json!({"id": id})).await;
    assert_eq!(r["status"], "rejected");
    assert_eq!(r["error"]["code"], "forbidden");
    let h = act_ok(&app, &w.mgr, &id, "close", json!({})).await;
    assert_eq!(h["state"], "closed");
    assert_eq!(h["equipment_stopped"], false);
    p1.applied(
        &app,
        "inspection.submit",
        json!({"id": insp, "finished_at": "2026-12-01T11:00:00Z", "signatory_name": "李四"}),
    )
    .await;
    let a = app
        .get(&format!("/api/v1/assignments/{}", w.assignment), &w.mgr)
        .await;
    assert_eq!(a.body["status"], "submitted");
}

/// From each state, every other action is 409 `invalid_transition` naming the allowed one.
async fn every_forbidden_transition_names_the_allowed_action(app: TestApp) {
    let w = world(&app).await;
    async fn only(app: &TestApp, token: &str, id: &str, state: &str, allowed: &str) {
        let h = hazard(app, token, id).await;
        assert_eq!(h["state"], state);
        for action in ACTIONS {
            if action == allowed {
                continue;
            }
            let r = act(app, token, id, action, json!({})).await;
            r.expect_error(409, "invalid_transition");
            assert_eq!(
                r.body["error"]["allowed"],
                json!([allowed]),
                "{state}/{action}"
            );
        }
    }
    let mut p1 = Phone::new(&app, "ins1").await;
    // fixed_on_site: only verify.
    let minor = new_id();
    p1.applied(
        &app,
        "hazard.report",
        json!({"id": minor, "unit_id": w.unit, "description": "小问题", "level": "minor", "fixed_on_site": true}),
    )
    .await;
    only(&app, &w.mgr, &minor, "fixed_on_site", "verify").await;
    // The walk of a general hazard through every state.
    let id = new_id();
    p1.applied(
        &app,
        "hazard.report",
        json!({"id": id, "unit_id": w.unit, "description": "问题", "level": "general"}),
    )
    .await;
    only(&app, &w.mgr, &id, "reported", "classify").await;
    act_ok(
        &app,
        &w.mgr,
        &id,
        "classify",
        json!({"level": "general", "deadline": DEADLINE}),
    )
    .await;
    only(&app, &w.mgr, &id, "classified", "plan").await;
    act_ok(
        &app,
        &w.unit_user,
        &id,
        "plan",
        json!({"commitments": {"measures": "m", "deadline": DEADLINE}}),
    )
    .await;
    only(&app, &w.mgr, &id, "rectifying", "submit_rectification").await;
    let fix = photo(&app, &w.unit_user, &id, "rectification").await;
    act_ok(
        &app,
        &w.unit_user,
        &id,
        "submit_rectification",
        json!({"note": "n", "evidence_ids": [fix]}),
    )
    .await;
    only(&app, &w.mgr, &id, "rectification_submitted", "verify").await;
    let check = photo(&app, &w.ins2, &id, "verification").await;
    act_ok(
        &app,
        &w.ins2,
        &id,
        "verify",
        json!({"outcome": "pass", "evidence_ids": [check]}),
    )
    .await;
    only(&app, &w.mgr, &id, "verified", "close").await;
    act_ok(&app, &w.mgr, &id, "close", json!({})).await;
    only(&app, &w.mgr, &id, "closed", "reopen").await;
    // Through push the same: rejected with the same error, the queue moves on.
    let r = p1.push(&app, "hazard.close", json!({"id": id})).await;
    assert_eq!(r["status"], "rejected");
    assert_eq!(r["error"]["code"], "invalid_transition");
    assert_eq!(r["error"]["allowed"], json!(["reopen"]));
    // An unknown action is not a route.
    act(&app, &w.mgr, &id, "approve", json!({}))
        .await
        .expect(404);
}

async fn duties_are_separated(app: TestApp) {
    let w = world(&app).await;
    let r = app
        .post(
            "/api/v1/hazards",
            &w.mgr,
            json!({"unit_id": w.unit, "description": "经理发现", "level": "general"}),
        )
        .await;
    r.expect(201);
    let id = uid(&r.body);
    // Other roles do not classify; a manager of another district does not see it at all.
    for t in [&w.ins1, &w.unit_user] {
        act(
            &app,
            t,
            &id,
            "classify",
            json!({"level": "general", "deadline": DEADLINE}),
        )
        .await
        .expect_error(403, "forbidden");
    }
    act(
        &app,
        &w.other_mgr,
        &id,
        "classify",
        json!({"level": "general", "deadline": DEADLINE}),
    )
    .await
    .expect(404);
    act(
        &app,
        &w.ins3,
        &id,
        "classify",
        json!({"level": "general", "deadline": DEADLINE}),
    )
    .await
    .expect(404);
    act_ok(
        &app,
        &w.mgr,
        &id,
        "classify",
        json!({"level": "general", "deadline": DEADLINE}),
    )
    .await;
    // Managers do not write the unit's plan.
    act(
        &app,
        &w.mgr,
        &id,
        "plan",
        json!({"commitments": {"measures": "m", "deadline": DEADLINE}}),
    )
    .await
    .expect_error(403, "forbidden");
    act_ok(
        &app,
        &w.ins1,
        &id,
        "plan",
        json!({"commitments": {"measures": "m", "deadline": DEADLINE}}),
    )
    .await;
    let fix = photo(&app, &w.unit_user, &id, "rectification").await;
    act_ok(
        &app,
        &w.unit_user,
        &id,
        "submit_rectification",
        json!({"note": "n", "evidence_ids": [fix]}),
    )
    .await;
    // Unit users do not verify their own rectification; managers do not re-check on site.
    for t in [&w.unit_user, &w.mgr] {
        act(&app, t, &id, "verify", json!({"outcome": "fail"}))
            .await
            .expect_error(403, "forbidden");
    }
    let check = photo(&app, &w.ins2, &id, "verification").await;
    act_ok(
        &app,
        &w.ins2,
        &id,
        "verify",
        json!({"outcome": "pass", "evidence_ids": [check]}),
    )
    .await;
    // The manager who reported it cannot close it; another manager of the region can.
    act(&app, &w.mgr, &id, "close", json!({}))
        .await
        .expect_error(403, "forbidden");
    let admin = app.admin_token().await;
    app.create_user(&admin, "mgr2", "manager", "330106").await;
    let mgr2 = app.token("mgr2", PASSWORD).await;
    act_ok(&app, &mgr2, &id, "close", json!({})).await;
    // A look-back assignment lets its inspector reopen.
    act(&app, &w.ins1, &id, "reopen", json!({"reason": "r"}))
        .await
        .expect_error(403, "forbidden");
    app.post(
        "/api/v1/assignments",
        &w.mgr,
        json!({"kind": "lookback", "unit_id": w.unit, "team": [w.ins1_id],
               "window_start": "2026-12-10T00:00:00Z", "window_end": "2026-12-11T00:00:00Z"}),
    )
    .await
    .expect(201);
    let h = act_ok(
        &app,
        &w.ins1,
        &id,
        "reopen",
        json!({"reason": "回头看复发"}),
    )
    .await;
    assert_eq!(h["state"], "rectifying");
}

async fn inspection_records_are_read_only_once_submitted(app: TestApp) {
    let w = world(&app).await;
    // Only the team starts a record, over REST as over push.
    app.post(
        "/api/v1/inspections",
        &w.ins3,
        json!({"assignment_id": w.assignment, "started_at": "2026-12-01T09:00:00Z"}),
    )
    .await
    .expect(422);
    let r = app
        .post(
            "/api/v1/inspections",
            &w.ins1,
            json!({"assignment_id": w.assignment, "started_at": "2026-12-01T09:00:00Z", "lat": 30.2, "lng": 120.1}),
        )
        .await;
    r.expect(201);
    let id = uid(&r.body);
    assert_eq!(r.body["status"], "in_progress");
    assert_eq!(r.body["team"].as_array().unwrap().len(), 2);
    let a = app
        .get(&format!("/api/v1/assignments/{}", w.assignment), &w.mgr)
        .await;
    assert_eq!(a.body["status"], "in_progress");
    let items = format!("/api/v1/inspections/{id}/items");
    // Per-equipment items name the equipment; unit-level ones do not.
    app.post(
        &items,
        &w.ins1,
        json!({"item_code": "3000-03", "outcome": "pass"}),
    )
    .await
    .expect(422);
    app.post(
        &items,
        &w.ins1,
        json!({"item_code": "U-01", "equipment_id": w.equipment, "outcome": "pass"}),
    )
    .await
    .expect(422);
    app.post(
        &items,
        &w.ins1,
        json!({"item_code": "NOPE", "outcome": "pass"}),
    )
    .await
    .expect(422);
    app.post(
        &items,
        &w.ins1,
        json!({"item_code": "U-01", "outcome": "maybe"}),
    )
    .await
    .expect(422);
    app.post(
        &items,
        &w.ins1,
        json!({"item_code": "U-01", "outcome": "fail"}),
    )
    .await
    .expect(200);
    // A team-mate records another item, and the same item again replaces the result.
    app.post(
        &items,
        &w.ins2,
        json!({"item_code": "3000-03", "equipment_id": w.equipment, "outcome": "pass"}),
    )
    .await
    .expect(200);
    let r = app
        .post(
            &items,
            &w.ins1,
            json!({"item_code": "U-01", "outcome": "pass", "note": "已整改"}),
        )
        .await;
    r.expect(200);
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    let u01 = results.iter().find(|x| x["item_code"] == "U-01").unwrap();
    assert_eq!(u01["outcome"], "pass");
    let e = results
        .iter()
        .find(|x| x["item_code"] == "3000-03")
        .unwrap();
    assert!(e["major_clause"].is_string());
    // Submitting needs a signatory or a recorded refusal.
    let submit = format!("/api/v1/inspections/{id}/submit");
    app.post(
        &submit,
        &w.ins1,
        json!({"finished_at": "2026-12-01T10:00:00Z"}),
    )
    .await
    .expect(422);
    app.post(
        &submit,
        &w.ins1,
        json!({"finished_at": "2026-12-01T08:00:00Z", "refused_to_sign": true}),
    )
    .await
    .expect(422);
    let r = app
        .post(
            &submit,
            &w.ins1,
            json!({"finished_at": "2026-12-01T10:00:00Z", "refused_to_sign": true}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["status"], "submitted");
    assert_eq!(r.body["refused_to_sign"], true);
    // Read-only now.
    app.post(
        &items,
        &w.ins1,
        json!({"item_code": "U-02", "outcome": "pass"}),
    )
    .await
    .expect_error(409, "inspection_submitted");
    app.post(
        &submit,
        &w.ins1,
        json!({"finished_at": "2026-12-01T10:00:00Z", "signatory_name": "王五"}),
    )
    .await
    .expect_error(409, "inspection_submitted");
    // A correction is a new record naming the old one.
    let r = app
        .post(
            "/api/v1/inspections",
            &w.ins2,
            json!({"assignment_id": w.assignment, "started_at": "2026-12-02T09:00:00Z", "corrects_id": id}),
        )
        .await;
    r.expect(201);
    assert_eq!(r.body["corrects_id"], id.as_str());
    let list = app
        .get(
            &format!("/api/v1/inspections?assignment_id={}", w.assignment),
            &w.mgr,
        )
        .await;
    list.expect(200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
    // Another district's manager sees none of it.
    app.get(&format!("/api/v1/inspections/{id}"), &w.other_mgr)
        .await
        .expect(404);
    let list = app.get("/api/v1/inspections", &w.other_mgr).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 0);
}

async fn inspections_sync_to_the_team_and_reach_the_unit_when_submitted(app: TestApp) {
    let w = world(&app).await;
    let mut p1 = Phone::new(&app, "ins1").await;
    let insp = new_id();
    p1.applied(
        &app,
        "inspection.start",
        json!({"id": insp, "assignment_id": w.assignment, "started_at": "2026-12-01T09:00:00Z"}),
    )
    .await;
    async fn pulled(app: &TestApp, token: &str, id: &str) -> Option<Value> {
        let r = app.get("/api/v1/sync/pull?limit=5000", token).await;
        r.expect(200);
        r.body["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["table"] == "inspections" && c["id"] == id)
            .cloned()
    }
    let seen = pulled(&app, &w.ins2, &insp)
        .await
        .expect("team-mate gets the record");
    assert_eq!(seen["data"]["status"], "in_progress");
    assert!(
        pulled(&app, &w.unit_user, &insp).await.is_none(),
        "the unit never sees a visit under way"
    );
    app.get(&format!("/api/v1/inspections/{insp}"), &w.unit_user)
        .await
        .expect(404);
    p1.applied(
        &app,
        "inspection.submit",
        json!({"id": insp, "finished_at": "2026-12-01T10:00:00Z", "signatory_name": "李四"}),
    )
    .await;
    let seen = pulled(&app, &w.unit_user, &insp)
        .await
        .expect("the unit gets the submitted record");
    assert_eq!(seen["data"]["signatory_name"], "李四");
    // The checksum counts the records in scope.
    let r = app.get("/api/v1/sync/pull?limit=5000", &w.ins2).await;
    let cursor = r.body["cursor"].as_str().unwrap().to_string();
    let r = app
        .get(&format!("/api/v1/sync/checksum?cursor={cursor}"), &w.ins2)
        .await;
    r.expect(200);
    assert_eq!(r.body["tables"]["inspections"]["count"], 1, "{}", r.text);
}

async fn the_audit_chain_detects_tampering(app: TestApp) {
    let w = world(&app).await;
    let r = app
        .post(
            "/api/v1/hazards",
            &w.ins1,
            json!({"unit_id": w.unit, "description": "审计", "level": "general"}),
        )
        .await;
    let id = uid(&r.body);
    act_ok(
        &app,
        &w.mgr,
        &id,
        "classify",
        json!({"level": "major", "deadline": DEADLINE, "notice_no": "N-1"}),
    )
    .await;
    // Every change is in the log, with who and before/after.
    let r = app
        .get(
            &format!("/api/v1/audit?entity_table=hazards&entity_id={id}"),
            &w.mgr,
        )
        .await;
    r.expect(200);
    let entries = r.body["items"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["hazard.report", "hazard.classify"]);
    assert_eq!(entries[1]["before"]["level"], "general");
    assert_eq!(entries[1]["after"]["level"], "major");
    assert_eq!(entries[1]["actor_id"], w.mgr_id);
    // Region-bound, and not for inspectors.
    let r = app
        .get("/api/v1/audit?entity_table=hazards", &w.other_mgr)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);
    app.get("/api/v1/audit/verify", &w.ins1).await.expect(403);
    let r = app.get("/api/v1/audit/verify", &w.mgr).await;
    r.expect(200);
    assert_eq!(r.body["ok"], true, "{}", r.text);
    let total = r.body["entries"].as_i64().unwrap();
    assert!(total >= 3, "assignment, report, classify: {total}");
    let seq = entries[1]["seq"].as_i64().unwrap();
    // The log refuses edits through SQL; someone who drops that guard is still caught.
    let mut db = Direct::open(&app);
    assert!(
        db.exec(&format!(
            "UPDATE audit_log SET after = '{{}}' WHERE seq = {seq}"
        ))
        .is_err()
    );
    assert!(db.exec("DELETE FROM audit_log").is_err());
    match app.backend {
        Backend::Sqlite => {
            db.exec("DROP TRIGGER audit_log_no_update").unwrap();
            db.exec("DROP TRIGGER audit_log_no_delete").unwrap();
        }
        Backend::Postgres => {
            db.exec("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
                .unwrap();
        }
    }
    let original: String = {
        let r = app
            .get(&format!("/api/v1/audit?entity_id={id}"), &w.mgr)
            .await;
        r.body["items"][1]["after"].to_string()
    };
    let forged = original.replace("\"major\"", "\"general\"");
    db.exec(&format!(
        "UPDATE audit_log SET after = '{}' WHERE seq = {seq}",
        forged.replace('\'', "''")
    ))
    .unwrap();
    let r = app.get("/api/v1/audit/verify", &w.mgr).await;
    assert_eq!(r.body["ok"], false);
    assert_eq!(r.body["broken_at"], seq);
    // Put it back: whole again. Then cut the newest entry off: caught by the head.
    db.exec(&format!(
        "UPDATE audit_log SET after = '{}' WHERE seq = {seq}",
        original.replace('\'', "''")
    ))
    .unwrap();
    let r = app.get("/api/v1/audit/verify", &w.mgr).await;
    assert_eq!(r.body["ok"], true, "{}", r.text);
    db.exec(&format!("DELETE FROM audit_log WHERE seq = {total}"))
        .unwrap();
    let r = app.get("/api/v1/audit/verify", &w.mgr).await;
    assert_eq!(r.body["ok"], false);
    assert_eq!(r.body["broken_at"], total);
    // A hole in the middle.
    db.exec("DELETE FROM audit_log WHERE seq = 1").unwrap();
    let r = app.get("/api/v1/audit/verify", &w.mgr).await;
    assert_eq!(r.body["ok"], false);
    assert_eq!(r.body["broken_at"], 1);
    // The command says the same and fails.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_xuncha"));
    for (k, _) in std::env::vars() {
        if k.starts_with("XUNCHA_") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .args(["audit", "verify", "--database-url", &app.db.url])
        .env("XUNCHA_DATA_DIR", app.db.data_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("BROKEN"),
        "{out:?}"
    );
}

/// Polls `f` until it answers `Some`, for at most 20 s (a background job's effect).
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn overdue_hazards_escalate_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.overdue_check_interval_secs = 1).await;
    let mut w = world(&app).await;
    let mut ids = Vec::new();
    for n in 0..2 {
        let r = app
            .post(
                "/api/v1/hazards",
                &w.ins1,
                json!({"unit_id": w.unit, "description": format!("逾期{n}"), "level": "general"}),
            )
            .await;
        ids.push(uid(&r.body));
    }
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    for id in &ids {
        act_ok(
            &app,
            &w.mgr,
            id,
            "classify",
            json!({"level": "general", "deadline": soon}),
        )
        .await;
    }
    let r = app.get("/api/v1/hazards?overdue=true", &w.mgr).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);
    // Two hours later both are overdue; the running server's job escalates them.
    app.clock.advance(chrono::Duration::hours(2));
    // (Tokens have expired meanwhile.)
    w.mgr = app.token("mgr", PASSWORD).await;
    w.ins1 = app.token("ins1", PASSWORD).await;
    let r = app.get("/api/v1/hazards?overdue=true", &w.mgr).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let r = app.get("/api/v1/hazards?overdue=false", &w.mgr).await;
    assert!(
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| !ids.contains(&uid(h)))
    );
    let h = eventually("the escalation job", || async {
        let h = hazard(&app, &w.mgr, &ids[0]).await;
        (!h["escalated_at"].is_null()).then_some(h)
    })
    .await;
    assert_eq!(h["state"], "classified");
    let unit = eventually("the unit's overdue count", || async {
        let u = app.get(&format!("/api/v1/units/{}", w.unit), &w.mgr).await;
        (u.body["overdue_hazards"] == 2).then_some(u.body)
    })
    .await;
    assert!(
        unit["risk_flags"]
            .as_array()
            .unwrap()
            .contains(&json!("overdue_hazards"))
    );
    // A third hazard falls overdue; two servers' jobs racing escalate it exactly once.
    let r = app
        .post(
            "/api/v1/hazards",
            &w.ins1,
            json!({"unit_id": w.unit, "description": "逾期2", "level": "general"}),
        )
        .await;
    let third = uid(&r.body);
    let soon = (app.clock.now_utc() + chrono::Duration::hours(1)).to_rfc3339();
    act_ok(
        &app,
        &w.mgr,
        &third,
        "classify",
        json!({"level": "general", "deadline": soon}),
    )
    .await;
    let later = app.clock.now() + chrono::Duration::hours(2);
    let rules =
        xuncha::registry::risk::RiskRules::from_config(&xuncha::config::Config::default()).unwrap();
    let runs = (0..4).map(|_| {
        let rules = rules.clone();
        app.server_db()
            .run(move |conn| xuncha::work::escalation::escalate_overdue(conn, later, &rules))
    });
    let counts: Vec<usize> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 1, "{counts:?}");
    let r = app
        .get(&format!("/api/v1/audit?entity_id={third}"), &w.mgr)
        .await;
    let escalations = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "hazard.escalate")
        .count();
    assert_eq!(escalations, 1);
    // A manager's new deadline makes it not overdue (and not escalated) again.
    let h = hazard(&app, &w.mgr, &third).await;
    let far = (app.clock.now_utc() + chrono::Duration::days(30)).to_rfc3339();
    let mut admin_phone = Phone::new(&app, "mgr").await;
    admin_phone
        .applied(
            &app,
            "hazard.update",
            json!({"id": third, "base_version": h["version"], "fields": {"deadline": far}}),
        )
        .await;
    let h = hazard(&app, &w.mgr, &third).await;
    assert!(h["escalated_at"].is_null());
}

async fn reports_stay_in_their_region_and_lists_leave_out_fixed_minor_hazards(app: TestApp) {
    let w = world(&app).await;
    let mut p1 = Phone::new(&app, "ins1").await;
    let minor = new_id();
    p1.applied(
        &app,
        "hazard.report",
        json!({"id": minor, "unit_id": w.unit, "description": "小问题已改", "level": "minor", "fixed_on_site": true}),
    )
    .await;
    // A general hazard with a formula-like description, planned; a major one, closed.
    let general = new_id();
    p1.applied(
        &app,
        "hazard.report",
        json!({"id": general, "unit_id": w.unit, "description": "=HYPERLINK(\"x\")", "level": "general"}),
    )
    .await;
    act_ok(
        &app,
        &w.mgr,
        &general,
        "classify",
        json!({"level": "general", "deadline": DEADLINE}),
    )
    .await;
    act_ok(
        &app,
        &w.unit_user,
        &general,
        "plan",
        json!({"commitments": {"measures": "更换, 加固", "deadline": DEADLINE, "responsible_person": "张三"}}),
    )
    .await;
    let major = new_id();
    p1.applied(
        &app,
        "hazard.report",
        json!({"id": major, "unit_id": w.unit, "equipment_id": w.equipment, "description": "制动器失效", "level": "major"}),
    )
    .await;
    act_ok(
        &app,
        &w.mgr,
        &major,
        "classify",
        json!({"level": "major", "deadline": DEADLINE, "notice_no": "N-9"}),
    )
    .await;
    // The numbers.
    let r = app.get("/api/v1/reports/hazards", &w.mgr).await;
    r.expect(200);
    assert_eq!(r.body["total"], 3);
    assert_eq!(r.body["closed"], 0);
    assert_eq!(r.body["open_major"], 1);
    assert_eq!(r.body["overdue"], 0);
    let cells = r.body["by_district"].as_array().unwrap();
    let count = |level: &str, state: &str| {
        cells
            .iter()
            .find(|c| c["level"] == level && c["state"] == state && c["region_code"] == "330106")
            .map(|c| c["count"].as_i64().unwrap())
            .unwrap_or(0)
    };
    assert_eq!(count("minor", "fixed_on_site"), 1);
    assert_eq!(count("general", "rectifying"), 1);
    assert_eq!(count("major", "classified"), 1);
    let planned = r.body["assignments"][0].clone();
    assert_eq!(planned["planned"], 1);
    assert_eq!(planned["done"], 0);
    // Another district's manager sees none of it, and cannot ask for this district.
    let r = app.get("/api/v1/reports/hazards", &w.other_mgr).await;
    assert_eq!(r.body["total"], 0);
    app.get("/api/v1/reports/hazards?region=330106", &w.other_mgr)
        .await
        .expect(404);
    app.get("/api/v1/reports/hazards", &w.ins1)
        .await
        .expect(403);
    // The problem-and-hazard list: no fixed minor hazard; formulas defused.
    let r = app.get("/api/v1/reports/lists/hazards.csv", &w.mgr).await;
    r.expect(200);
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    let text = r.text.trim_start_matches('\u{feff}').to_string();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let head = rdr.headers().unwrap().clone();
    let idx = |name: &str| head.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    let ids: Vec<&str> = rows.iter().map(|r| &r[idx("hazard_id")]).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(!ids.contains(&minor.as_str()));
    let g = rows
        .iter()
        .find(|r| &r[idx("hazard_id")] == general.as_str())
        .unwrap();
    assert_eq!(&g[idx("description")], "'=HYPERLINK(\"x\")");
    let m = rows
        .iter()
        .find(|r| &r[idx("hazard_id")] == major.as_str())
        .unwrap();
    assert_eq!(&m[idx("notice_no")], "N-9");
    assert_eq!(&m[idx("equipment_stopped")], "true");
    assert_eq!(&m[idx("registration_code")], crate::registry::reg_code(1));
    // The rules-and-measures list: the planned hazard's commitments.
    let r = app.get("/api/v1/reports/lists/measures.csv", &w.mgr).await;
    r.expect(200);
    let text = r.text.trim_start_matches('\u{feff}').to_string();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert_eq!(&rows[0][0], general.as_str());
    assert!(rows[0].iter().any(|c| c == "更换, 加固"));
    assert!(rows[0].iter().any(|c| c == "张三"));
    let r = app
        .get("/api/v1/reports/lists/hazards.csv", &w.other_mgr)
        .await;
    r.expect(200);
    assert_eq!(
        r.text.trim_start_matches('\u{feff}').lines().count(),
        1,
        "header only"
    );
}

async fn enforcement_actions_carry_document_numbers_and_states(app: TestApp) {
    let w = world(&app).await;
    // An inspector on site issues a directive through push; the unit sees it.
    let mut p1 = Phone::new(&app, "ins1").await;
    let d1 = new_id();
    p1.applied(
        &app,
        "directive.issue",
        json!({"id": d1, "kind": "directive", "doc_no": "杭市监特指〔2026〕001号", "unit_id": w.unit,
               "equipment_id": w.equipment, "content": "限期更换门锁", "deadline": DEADLINE}),
    )
    .await;
    let r = app
        .get(&format!("/api/v1/directives/{d1}"), &w.unit_user)
        .await;
    r.expect(200);
    assert_eq!(r.body["state"], "issued");
    assert_eq!(r.body["doc_no"], "杭市监特指〔2026〕001号");
    // Document numbers are unique; fines need their article and amount; units do not issue.
    let issue = |body: Value| {
        let mut b = body;
        b["unit_id"] = json!(w.unit);
        b
    };
    app.post(
        "/api/v1/directives",
        &w.mgr,
        issue(json!({"kind": "interview", "doc_no": "杭市监特指〔2026〕001号", "content": "约谈"})),
    )
    .await
    .expect_error(409, "doc_no_taken");
    let r = app
        .post(
            "/api/v1/directives",
            &w.mgr,
            issue(json!({"kind": "fine", "doc_no": "罚-1", "content": "罚款"})),
        )
        .await;
    r.expect(422);
    assert!(r.body["error"]["fields"]["article"].is_string());
    app.post("/api/v1/directives", &w.mgr, issue(json!({"kind": "fine", "doc_no": "罚-1", "content": "罚款", "article": "特种设备安全法第八十四条"})))
        .await
        .expect(422);
    let r = app
        .post(
            "/api/v1/directives",
            &w.mgr,
            issue(json!({"kind": "fine", "doc_no": "罚-1", "content": "罚款",
                         "article": "特种设备安全法第八十四条", "amount_yuan": 30000})),
        )
        .await;
    r.expect(201);
    assert_eq!(r.body["amount_yuan"], 30000);
    let fine = uid(&r.body);
    app.post(
        "/api/v1/directives",
        &w.unit_user,
        issue(json!({"kind": "interview", "doc_no": "X", "content": "c"})),
    )
    .await
    .expect_error(403, "forbidden");
    app.post(
        "/api/v1/directives",
        &w.other_mgr,
        issue(json!({"kind": "interview", "doc_no": "Y", "content": "c"})),
    )
    .await
    .expect(422);
    // A blacklisting flags the unit until it is revoked.
    let r = app
        .post(
            "/api/v1/directives",
            &w.mgr,
            issue(json!({"kind": "blacklist", "doc_no": "黑-1", "content": "列入黑名单", "until_on": "2030-12-31"})),
        )
        .await;
    r.expect(201);
    let black = uid(&r.body);
    let unit = app.get(&format!("/api/v1/units/{}", w.unit), &w.mgr).await;
    assert!(
        unit.body["risk_flags"]
            .as_array()
            .unwrap()
            .contains(&json!("blacklisted"))
    );
    // States: managers record compliance or revoke (with a reason), once.
    app.post(
        &format!("/api/v1/directives/{fine}/comply"),
        &w.ins1,
        json!({}),
    )
    .await
    .expect_error(403, "forbidden");
    let r = app
        .post(
            &format!("/api/v1/directives/{fine}/comply"),
            &w.mgr,
            json!({"note": "已缴纳"}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["state"], "complied");
    app.post(
        &format!("/api/v1/directives/{fine}/revoke"),
        &w.mgr,
        json!({"note": "x"}),
    )
    .await
    .expect_error(409, "invalid_transition");
    app.post(
        &format!("/api/v1/directives/{black}/revoke"),
        &w.mgr,
        json!({}),
    )
    .await
    .expect(422);
    let r = app
        .post(
            &format!("/api/v1/directives/{black}/revoke"),
            &w.mgr,
            json!({"note": "复议撤销"}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["state"], "revoked");
    let unit = app.get(&format!("/api/v1/units/{}", w.unit), &w.mgr).await;
    assert!(
        !unit.body["risk_flags"]
            .as_array()
            .unwrap()
            .contains(&json!("blacklisted"))
    );
    // Lists and sync follow the unit's scope.
    let r = app.get("/api/v1/directives?kind=fine", &w.unit_user).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = app.get("/api/v1/directives", &w.other_mgr).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);
    app.get(&format!("/api/v1/directives/{d1}"), &w.ins3)
        .await
        .expect(404);
    let r = app.get("/api/v1/sync/pull?limit=5000", &w.unit_user).await;
    let synced = r.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["table"] == "directives")
        .count();
    assert_eq!(synced, 3);
    let r = app
        .get("/api/v1/audit?entity_table=directives", &w.mgr)
        .await;
    assert_eq!(
        r.body["items"].as_array().unwrap().len(),
        5,
        "3 issued, 1 complied, 1 revoked"
    );
}

async fn campaigns_have_phases_a_task_map_and_progress(app: TestApp) {
    let w = world(&app).await;
    let today = app.clock.now().date();
    let d = |days: i64| (today + chrono::Duration::days(days)).to_string();
    // Phases lie within the campaign, in order, named from the three.
    let body = |phases: Value| json!({"title": "电梯安全专项行动", "starts_on": d(-10), "ends_on": d(80), "phases": phases});
    app.post(
        "/api/v1/campaigns",
        &w.mgr,
        body(json!([{"name": "investigation", "starts_on": d(-20), "ends_on": d(5)}])),
    )
    .await
    .expect(422);
    app.post(
        "/api/v1/campaigns",
        &w.mgr,
        body(json!([{"name": "party", "starts_on": d(-10), "ends_on": d(5)}])),
    )
    .await
    .expect(422);
    app.post(
        "/api/v1/campaigns",
        &w.mgr,
        body(
            json!([{"name": "investigation", "starts_on": d(-10), "ends_on": d(20)},
                    {"name": "joint_enforcement", "starts_on": d(10), "ends_on": d(50)}]),
        ),
    )
    .await
    .expect(422);
    app.post(
        "/api/v1/campaigns",
        &w.mgr,
        body(
            json!([{"name": "summary", "starts_on": d(-10), "ends_on": d(20)},
                    {"name": "investigation", "starts_on": d(21), "ends_on": d(50)}]),
        ),
    )
    .await
    .expect(422);
    app.post("/api/v1/campaigns", &w.ins1, body(json!([])))
        .await
        .expect(403);
    let r = app
        .post(
            "/api/v1/campaigns",
            &w.mgr,
            body(
                json!([{"name": "investigation", "starts_on": d(-10), "ends_on": d(20)},
                        {"name": "joint_enforcement", "starts_on": d(21), "ends_on": d(50)},
                        {"name": "summary", "starts_on": d(51), "ends_on": d(80)}]),
            ),
        )
        .await;
    r.expect(201);
    let c = uid(&r.body);
    assert_eq!(r.body["current_phase"], "investigation");
    assert_eq!(r.body["region_code"], "330106");
    // Assignments and hazards belong to it; a campaign elsewhere cannot be named.
    let r = app
        .post(
            "/api/v1/campaigns",
            &w.other_mgr,
            json!({"title": "别区", "starts_on": d(0), "ends_on": d(10)}),
        )
        .await;
    let elsewhere = uid(&r.body);
    let assign = |campaign: &str| {
        json!({"kind": "campaign", "unit_id": w.unit, "team": [w.ins1_id], "campaign_id": campaign,
               "window_start": "2026-12-01T00:00:00Z", "window_end": "2026-12-02T00:00:00Z"})
    };
    app.post("/api/v1/assignments", &w.mgr, assign(&elsewhere))
        .await
        .expect(422);
    app.post("/api/v1/assignments", &w.mgr, assign(&c))
        .await
        .expect(201);
    let r = app
        .post(
            "/api/v1/hazards",
            &w.ins1,
            json!({"unit_id": w.unit, "description": "专项发现", "level": "general", "campaign_id": c}),
        )
        .await;
    r.expect(201);
    assert_eq!(r.body["campaign_id"], c.as_str());
    // The task map: lead and cooperating departments, milestones, progress; computed flags.
    let tasks = format!("/api/v1/campaigns/{c}/tasks");
    let r = app
        .post(
            &tasks,
            &w.mgr,
            json!({"title": "老旧电梯排查", "lead_department": "特种设备安全监察科",
                   "cooperating_departments": ["住建局", "街道"], "target": "排查全部老旧电梯",
                   "milestones": [{"title": "摸底", "due_on": d(-1)}], "deadline": d(30)}),
        )
        .await;
    r.expect(201);
    let t1 = uid(&r.body);
    assert_eq!(r.body["at_risk"], true, "a milestone is past due");
    assert_eq!(r.body["overdue"], false);
    let r = app
        .patch(
            &format!("{tasks}/{t1}"),
            &w.mgr,
            json!({"milestones": [{"title": "摸底", "due_on": d(-1), "done_on": d(-1)}], "progress": 40}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["at_risk"], false);
    app.patch(&format!("{tasks}/{t1}"), &w.mgr, json!({"progress": 140}))
        .await
        .expect(422);
    let r = app
        .post(
            &tasks,
            &w.mgr,
            json!({"title": "联合执法", "lead_department": "执法队", "target": "十家", "deadline": d(-2)}),
        )
        .await;
    assert_eq!(r.body["overdue"], true);
    let t2 = uid(&r.body);
    let r = app
        .patch(&format!("{tasks}/{t2}"), &w.mgr, json!({"progress": 100}))
        .await;
    assert_eq!(r.body["overdue"], false);
    assert_eq!(r.body["done_on"], today.to_string());
    // A task's dates lie within the campaign.
    app.post(
        &tasks,
        &w.mgr,
        json!({"title": "x", "lead_department": "y", "target": "z", "deadline": d(200)}),
    )
    .await
    .expect(422);
    app.post(
        &tasks,
        &w.ins1,
        json!({"title": "x", "lead_department": "y", "target": "z", "deadline": d(3)}),
    )
    .await
    .expect(403);
    // Progress: assignments planned/done, hazards found/closed, tasks.
    let r = app.get(&format!("/api/v1/campaigns/{c}"), &w.ins1).await;
    r.expect(200);
    let p = &r.body["progress"];
    assert_eq!(p["assignments_planned"], 1);
    assert_eq!(p["assignments_done"], 0);
    assert_eq!(p["hazards_found"], 1);
    assert_eq!(p["tasks"], 2);
    assert_eq!(p["tasks_done"], 1);
    assert_eq!(p["tasks_overdue"], 0);
    let r = app.get(&tasks, &w.mgr).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    // Region-bound: the other district neither sees nor changes it; unit users see none.
    app.get(&format!("/api/v1/campaigns/{c}"), &w.other_mgr)
        .await
        .expect(404);
    app.patch(
        &format!("/api/v1/campaigns/{c}"),
        &w.other_mgr,
        json!({"title": "x"}),
    )
    .await
    .expect(404);
    let r = app.get("/api/v1/campaigns", &w.mgr).await;
    let ids: Vec<String> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(uid)
        .collect();
    assert_eq!(ids, vec![c.clone()]);
    app.get("/api/v1/campaigns", &w.unit_user).await.expect(403);
    let r = app
        .patch(
            &format!("/api/v1/campaigns/{c}"),
            &w.mgr,
            json!({"title": "电梯专项（延期）", "ends_on": d(90)}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["ends_on"], d(90));
    let r = app
        .get(&format!("/api/v1/audit?entity_id={c}"), &w.mgr)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
}

/// Who may still write after the facts change: a team-mate taken off the team, the person
/// who submitted a rectification, a reporter once the hazard is classified, an inspector
/// asked for a fine; and a failed on-the-spot fix becomes a hazard with a deadline.
async fn records_and_rechecks_stay_with_the_right_people(app: TestApp) {
    let w = world(&app).await;
    let r = app
        .post(
            "/api/v1/inspections",
            &w.ins1,
            json!({"assignment_id": w.assignment, "started_at": "2026-12-01T09:00:00Z"}),
        )
        .await;
    let insp = uid(&r.body);
    let items = format!("/api/v1/inspections/{insp}/items");
    app.post(
        &items,
        &w.ins1,
        json!({"item_code": "U-01", "outcome": "fail"}),
    )
    .await
    .expect(200);
    // ins1 is taken off the team: the record is no longer theirs to write; a team-mate's
    // overwrite of a result is in the audit log.
    let ins2_id = {
        let r = app
            .get(&format!("/api/v1/assignments/{}", w.assignment), &w.mgr)
            .await;
        r.body["team"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .find(|u| *u != w.ins1_id)
            .unwrap()
    };
    app.patch(
        &format!("/api/v1/assignments/{}", w.assignment),
        &w.mgr,
        json!({"team": [ins2_id]}),
    )
    .await
    .expect(200);
    let a = app
        .get(&format!("/api/v1/assignments/{}", w.assignment), &w.mgr)
        .await;
    assert_eq!(
        a.body["status"], "in_progress",
        "a team change keeps the status"
    );
    app.post(
        &items,
        &w.ins1,
        json!({"item_code": "U-02", "outcome": "pass"}),
    )
    .await
    .expect(403);
    app.post(
        &items,
        &w.ins2,
        json!({"item_code": "U-01", "outcome": "pass"}),
    )
    .await
    .expect(200);
    let r = app
        .get(&format!("/api/v1/audit?entity_id={insp}"), &w.mgr)
        .await;
    let overwrite = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|e| e["action"] == "inspection.record_item")
        .cloned()
        .unwrap();
    assert_eq!(overwrite["before"]["outcome"], "fail");
    assert_eq!(overwrite["after"]["outcome"], "pass");
    // Whoever submitted the rectification does not re-check it.
    let r = app
        .post(
            "/api/v1/hazards",
            &w.mgr,
            json!({"unit_id": w.unit, "description": "d", "level": "general"}),
        )
        .await;
    let h = uid(&r.body);
    act_ok(
        &app,
        &w.mgr,
        &h,
        "classify",
        json!({"level": "general", "deadline": DEADLINE}),
    )
    .await;
    act_ok(
        &app,
        &w.ins2,
        &h,
        "plan",
        json!({"commitments": {"measures": "m", "deadline": DEADLINE}}),
    )
    .await;
    let fix = photo(&app, &w.ins2, &h, "rectification").await;
    act_ok(
        &app,
        &w.ins2,
        &h,
        "submit_rectification",
        json!({"note": "n", "evidence_ids": [fix]}),
    )
    .await;
    let check = photo(&app, &w.ins2, &h, "verification").await;
    act(
        &app,
        &w.ins2,
        &h,
        "verify",
        json!({"outcome": "pass", "evidence_ids": [check]}),
    )
    .await
    .expect_error(403, "forbidden");
    // A reporter no longer rewrites a classified hazard; managers keep notice and order in step.
    let r = app
        .post(
            "/api/v1/hazards",
            &w.ins1,
            json!({"unit_id": w.unit, "equipment_id": w.equipment, "description": "d", "level": "major"}),
        )
        .await;
    let m = uid(&r.body);
    act_ok(
        &app,
        &w.mgr,
        &m,
        "classify",
        json!({"level": "major", "deadline": DEADLINE, "notice_no": "N-7"}),
    )
    .await;
    let mut p1 = Phone::new(&app, "ins1").await;
    let v = hazard(&app, &w.mgr, &m).await["version"].clone();
    let r = p1
        .push(
            &app,
            "hazard.update",
            json!({"id": m, "base_version": v, "fields": {"equipment_id": null}}),
        )
        .await;
    assert_eq!(r["status"], "rejected");
    assert_eq!(r["error"]["code"], "hazard_classified");
    let mut pm = Phone::new(&app, "mgr").await;
    let r = pm
        .push(
            &app,
            "hazard.update",
            json!({"id": m, "base_version": v, "fields": {"notice_no": null}}),
        )
        .await;
    assert_eq!(
        r["status"], "rejected",
        "a major hazard keeps its notice number"
    );
    let r = pm
        .push(
            &app,
            "hazard.update",
            json!({"id": m, "base_version": v, "fields": {"level": "general"}}),
        )
        .await;
    assert_eq!(r["status"], "applied", "{r}");
    let after = hazard(&app, &w.mgr, &m).await;
    assert!(after["notice_no"].is_null(), "delisted");
    assert_eq!(after["equipment_stopped"], false);
    // Inspectors issue on-site orders, not fines.
    app.post(
        "/api/v1/directives",
        &w.ins2,
        json!({"kind": "fine", "doc_no": "F-1", "unit_id": w.unit, "content": "c",
               "article": "a", "amount_yuan": 1000}),
    )
    .await
    .expect_error(403, "forbidden");
    app.post(
        "/api/v1/directives",
        &w.ins2,
        json!({"kind": "stop_use", "doc_no": "S-1", "unit_id": w.unit, "equipment_id": w.equipment,
               "content": "停止使用"}),
    )
    .await
    .expect(201);
    // A failed re-check of an on-the-spot fix: a deadline, and the hazard joins the lists.
    let r = app
        .post(
            "/api/v1/hazards",
            &w.ins1,
            json!({"unit_id": w.unit, "description": "d", "level": "minor", "fixed_on_site": true}),
        )
        .await;
    let f = uid(&r.body);
    act(&app, &w.ins2, &f, "verify", json!({"outcome": "fail"}))
        .await
        .expect(422);
    let h = act_ok(
        &app,
        &w.ins2,
        &f,
        "verify",
        json!({"outcome": "fail", "deadline": DEADLINE}),
    )
    .await;
    assert_eq!(h["state"], "rectifying");
    assert_eq!(h["fixed_on_site"], false);
    let csv = app.get("/api/v1/reports/lists/hazards.csv", &w.mgr).await;
    assert!(csv.text.contains(&f));
}

/// Mutations of one push share a commit; their audit entries chain one after another, a
/// rejected one leaves no entry, and the recorded head is the last entry.
async fn a_push_batch_keeps_the_audit_chain_whole(app: TestApp) {
    let w = world(&app).await;
    let p1 = Phone::new(&app, "ins1").await;
    let report = |seq: i64, id: &str, level: &str| {
        json!({"seq": seq, "name": "hazard.report", "args": {"id": id, "unit_id": w.unit,
               "description": "批量", "level": level, "fixed_on_site": false}})
    };
    let ids: Vec<String> = (0..4).map(|_| new_id()).collect();
    let r = app
        .post(
            "/api/v1/sync/push",
            &p1.token,
            json!({"device_id": p1.device, "mutations": [
                report(1, &ids[0], "general"),
                report(2, &ids[1], "catastrophic"),
                report(3, &ids[2], "general"),
                {"seq": 4, "name": "hazard.classify", "args": {"id": ids[0], "level": "general", "deadline": DEADLINE}},
                report(5, &ids[3], "major"),
            ]}),
        )
        .await;
    r.expect(200);
    let statuses: Vec<&str> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["applied", "rejected", "applied", "rejected", "applied"]
    );
    let v = app.get("/api/v1/audit/verify", &w.mgr).await;
    assert_eq!(v.body["ok"], true, "{}", v.text);
    let r = app.get("/api/v1/audit?entity_table=hazards", &w.mgr).await;
    let entries = r.body["items"].as_array().unwrap();
    let reported: Vec<&str> = entries
        .iter()
        .map(|e| e["entity_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        reported,
        [ids[0].as_str(), ids[2].as_str(), ids[3].as_str()]
    );
    assert_eq!(v.body["head_seq"], entries[2]["seq"]);
    assert_eq!(v.body["head_hash"], entries[2]["hash"]);
}
