//! The registry through the HTTP API: CSV import (happy path, every kind of bad row,
//! re-import, region checks), units and equipment REST with region scoping, risk facts,
//! keyset pagination under inserts, code tables and checklist templates.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use xuncha::registry::ids::uscc_with_check;

use crate::common::{Direct, PASSWORD, Resp, TestApp};

crate::both_backends!(
    import_happy_path_with_bom_and_risk_facts,
    bad_rows_are_reported_with_lines_and_nothing_is_imported,
    bad_files_are_refused_whole,
    reimport_is_idempotent_and_updates_changed_rows,
    district_managers_import_and_see_only_their_district,
    units_and_equipment_rest_with_validation_and_conflicts,
    unit_users_and_inspectors_see_what_is_theirs,
    risk_facts_follow_changes_and_hazards,
    list_filters_and_text_search,
    pagination_walks_every_unit_once_while_rows_are_added,
    large_imports_stream_in_batches,
    code_tables_with_labels_and_etag,
    checklist_templates_are_data_admins_edit,
    date_driven_facts_are_refreshed_by_one_server_per_interval,
);

/// A valid USCC for district `region` and serial `n`.
pub fn uscc(region: &str, n: u32) -> String {
    uscc_with_check(&format!("91{region}{n:09}")).expect("uscc")
}

/// A 20-digit registration code.
pub fn reg_code(n: u32) -> String {
    format!("3110330106{n:010}")
}

pub const UNIT_HEADER: &str = "uscc,name,address,region_code,place_type,contact_name,contact_phone";
pub const EQUIPMENT_HEADER: &str = "registration_code,unit_uscc,category_code,reg_cert_no,reg_status,commissioned_on,last_inspection_on,next_inspection_due,inspection_conclusion,location,brake_type,fault_count_12m,hazchem";

pub async fn import(app: &TestApp, token: &str, what: &str, csv: impl Into<Vec<u8>>) -> Resp {
    let path = format!("/api/v1/imports/{what}");
    let rb = app
        .client
        .post(format!("{}{}", app.base, path))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv.into());
    app.send(Method::POST, &path, rb).await
}

fn unit_line(region: &str, n: u32, place: &str) -> String {
    format!(
        "{},示范单位{n},示范路{n}号,{region},{place},张三,0571-8800{n:04}",
        uscc(region, n)
    )
}

async fn manager(app: &TestApp, name: &str, region: &str) -> String {
    app.user_with_token(name, "manager", region).await.1
}

async fn all_units(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let r = app
            .get(
                &format!("/api/v1/units?limit=500{query}&after={after}"),
                token,
            )
            .await;
        r.expect(200);
        out.extend(r.body["items"].as_array().unwrap().iter().cloned());
        match r.body["next"].as_str() {
            Some(n) => after = n.to_string(),
            None => return out,
        }
    }
}

fn flags(v: &Value) -> Vec<&str> {
    v["risk_flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect()
}

async fn import_happy_path_with_bom_and_risk_facts(app: TestApp) {
    let m = manager(&app, "mgr", "330106").await;
    let mut csv = String::from("\u{feff}");
    csv.push_str(UNIT_HEADER);
    csv.push('\n');
    csv.push_str(&unit_line("330106", 1, "school"));
    csv.push_str("\r\n");
    csv.push_str(&unit_line("330106", 2, "industrial"));
    // Quoted field with a comma and a quote; no trailing newline.
    csv.push_str(&format!(
        "\n{},\"华联商厦, \"\"北区\"\"\",延安路1号,330106,mall,,\n",
        uscc("330106", 3)
    ));
    let r = import(&app, &m, "units", csv).await;
    r.expect(200);
    assert_eq!(r.body, json!({"created": 3, "updated": 0, "unchanged": 0}));

    let units = all_units(&app, &m, "").await;
    assert_eq!(units.len(), 3);
    let mall = units.iter().find(|u| u["place_type"] == "mall").unwrap();
    assert_eq!(mall["name"], "华联商厦, \"北区\"");
    assert_eq!(mall["public_gathering"], true);
    assert_eq!(flags(mall), ["public_gathering"]);
    let school = units.iter().find(|u| u["place_type"] == "school").unwrap();
    assert_eq!(school["uscc"], uscc("330106", 1));
    assert_eq!(school["region_code"], "330106");

    let today = chrono::Utc::now().date_naive();
    let past = (today - chrono::Duration::days(30)).format("%Y-%m-%d");
    let future = (today + chrono::Duration::days(200)).format("%Y-%m-%d");
    let csv = format!(
        "{EQUIPMENT_HEADER}\n\
         {},{},3110,梯11浙A0001,registered,2005-03-01,2024-01-10,{past},pass,1号楼,arm_drum,2,false\n\
         {},{},8300,,unregistered,2019-01-01,,,,,,0,true\n\
         {},{},4100,起11浙A0002,registered,2020-01-01,2025-06-01,{future},pass,车间,,0,FALSE\n",
        reg_code(1),
        uscc("330106", 1),
        reg_code(2),
        uscc("330106", 2),
        reg_code(3),
        uscc("330106", 2),
    );
    let r = import(&app, &m, "equipment", csv).await;
    r.expect(200);
    assert_eq!(r.body, json!({"created": 3, "updated": 0, "unchanged": 0}));

    let r = app.get("/api/v1/equipment?limit=10", &m).await;
    r.expect(200);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let elevator = items.iter().find(|e| e["category_code"] == "3110").unwrap();
    assert_eq!(
        flags(elevator),
        [
            "overdue_inspection",
            "public_gathering",
            "old_elevator",
            "arm_drum_brake"
        ]
    );
    assert_eq!(elevator["risk_score"], 30 + 15 + 10 + 15);
    assert_eq!(elevator["next_inspection_due"], past.to_string());
    assert_eq!(elevator["unit_id"], school["id"]);
    let pipe = items.iter().find(|e| e["category_code"] == "8300").unwrap();
    assert_eq!(
        flags(pipe),
        [
            "unregistered",
            "hazchem_pipeline_unregistered",
            "hazchem_pipeline_uninspected"
        ]
    );
    let crane = items.iter().find(|e| e["category_code"] == "4100").unwrap();
    assert!(flags(crane).is_empty());
    assert_eq!(crane["risk_score"], 0);

    // Units carry their equipment's flags.
    let school = app
        .get(
            &format!("/api/v1/units/{}", school["id"].as_str().unwrap()),
            &m,
        )
        .await;
    school.expect(200);
    assert_eq!(
        flags(&school.body),
        [
            "overdue_inspection",
            "public_gathering",
            "old_elevator",
            "arm_drum_brake"
        ]
    );
    let plant = units
        .iter()
        .find(|u| u["place_type"] == "industrial")
        .unwrap();
    let plant = app
        .get(
            &format!("/api/v1/units/{}", plant["id"].as_str().unwrap()),
            &m,
        )
        .await;
    assert_eq!(plant.body["risk_score"], 30 + 40 + 30);
}

fn row_errors(r: &Resp) -> Vec<(u64, String)> {
    r.body["error"]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows: {}", r.text))
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn bad_rows_are_reported_with_lines_and_nothing_is_imported(app: TestApp) {
    let m = manager(&app, "mgr", "330106").await;
    let good = unit_line("330106", 1, "school");
    let mut bad_check = uscc("330106", 2);
    bad_check.replace_range(17..18, if bad_check.ends_with('0') { "1" } else { "0" });
    let csv = [
        UNIT_HEADER.to_string(),                                         // 1
        good.clone(),                                                    // 2
        format!("{bad_check},单位,路,330106,school,,"),                  // 3 uscc
        format!("{},单位,路,330105,school,,", uscc("330105", 3)),        // 4 region outside
        format!("{},单位,路,330106,castle,,", uscc("330106", 4)),        // 5 place_type
        format!("{},,路,330106,school,,", uscc("330106", 5)),            // 6 name
        good.clone(),                                                    // 7 duplicate
        format!("{},单位,路,330106", uscc("330106", 6)),                 // 8 field count
        format!("{},单位,路,330100,school,,", uscc("330106", 7)),        // 9 city code
        format!("{},单位,路,330106,school,,call me", uscc("330106", 8)), // 10 phone
        String::new(),                                                   // 11 blank: skipped
    ]
    .join("\n");
    let r = import(&app, &m, "units", csv).await;
    r.expect_error(422, "import_rejected");
    assert_eq!(
        row_errors(&r),
        [
            (3, "uscc".to_string()),
            (4, "region_code".into()),
            (5, "place_type".into()),
            (6, "name".into()),
            (7, "uscc".into()),
            (8, "".into()),
            (9, "region_code".into()),
            (10, "contact_phone".into()),
        ]
    );
    assert_eq!(r.body["error"]["truncated"], false);
    let msgs = r.text.clone();
    assert!(msgs.contains("same USCC as line 2"), "{msgs}");
    assert!(msgs.contains("check digit"), "{msgs}");
    assert!(all_units(&app, &m, "").await.is_empty(), "nothing imported");

    // Equipment: every kind of bad field.
    import(&app, &m, "units", format!("{UNIT_HEADER}\n{good}\n"))
        .await
        .expect(200);
    let u = uscc("330106", 1);
    let csv = [
        EQUIPMENT_HEADER.to_string(),
        format!("{},{u},3110,,registered,,,,,,,0,false", reg_code(1)), // 2 ok
        format!("1234,{u},3110,,registered,,,,,,,0,false"),            // 3 registration_code
        format!(
            "{},{},3110,,registered,,,,,,,0,false",
            reg_code(3),
            uscc("330106", 99)
        ), // 4 unit
        format!("{},{u},7000,,registered,,,,,,,0,false", reg_code(4)), // 5 category
        format!("{},{u},3110,,lost,,,,,,,0,false", reg_code(5)),       // 6 reg_status
        format!(
            "{},{u},3110,,registered,2020-13-01,,,,,,0,false",
            reg_code(6)
        ), // 7 date
        format!("{},{u},3110,,registered,,,,maybe,,,0,false", reg_code(7)), // 8 conclusion
        format!("{},{u},3110,,registered,,,,,,,-1,false", reg_code(8)), // 9 fault count
        format!("{},{u},3110,,registered,,,,,,,0,perhaps", reg_code(9)), // 10 hazchem
        format!("{},{u},3110,,registered,,,,,,,0,false", reg_code(1)), // 11 duplicate
        format!(
            "{},{u},3110,,registered,,2025-01-01,2024-01-01,,,,0,false",
            reg_code(10)
        ), // 12 due < last
    ]
    .join("\n");
    let r = import(&app, &m, "equipment", csv).await;
    r.expect_error(422, "import_rejected");
    assert_eq!(
        row_errors(&r),
        [
            (3, "registration_code".to_string()),
            (4, "unit_uscc".into()),
            (5, "category_code".into()),
            (6, "reg_status".into()),
            (7, "commissioned_on".into()),
            (8, "inspection_conclusion".into()),
            (9, "fault_count_12m".into()),
            (10, "hazchem".into()),
            (11, "registration_code".into()),
            (12, "next_inspection_due".into()),
        ]
    );
    let r = app.get("/api/v1/equipment", &m).await;
    assert_eq!(r.body["items"], json!([]), "nothing imported");
}

async fn bad_files_are_refused_whole(app: TestApp) {
    let m = manager(&app, "mgr", "330106").await;
    // Header problems.
    let r = import(
        &app,
        &m,
        "units",
        "uscc,name,address,region_code,place_type,contact_name,colour\n",
    )
    .await;
    r.expect_error(422, "import_rejected");
    assert_eq!(
        row_errors(&r),
        [(1, "colour".to_string()), (1, "contact_phone".into())]
    );
    // Columns in another order are fine.
    let r = import(
        &app,
        &m,
        "units",
        format!(
            "name,uscc,address,region_code,place_type,contact_name,contact_phone\n单位,{},路,330106,park,,\n",
            uscc("330106", 1)
        ),
    )
    .await;
    r.expect(200);
    // Not UTF-8 (GBK bytes for 单位).
    let mut body = format!("{UNIT_HEADER}\n{},", uscc("330106", 2)).into_bytes();
    body.extend_from_slice(&[0xb5, 0xa5, 0xce, 0xbb]);
    body.extend_from_slice(b",road,330106,park,,\n");
    let r = import(&app, &m, "units", body).await;
    r.expect_error(422, "import_rejected");
    assert_eq!(row_errors(&r), [(2, "name".to_string())]);
    assert!(r.text.contains("UTF-8"));
    // Not CSV, a declared non-UTF-8 charset, empty.
    let path = "/api/v1/imports/units";
    let rb = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(&m)
        .header("content-type", "application/json")
        .body("{}");
    app.send(Method::POST, path, rb)
        .await
        .expect_error(415, "unsupported_media_type");
    let rb = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(&m)
        .header("content-type", "text/csv; charset=gbk")
        .body("x");
    app.send(Method::POST, path, rb)
        .await
        .expect_error(415, "unsupported_media_type");
    import(&app, &m, "units", "")
        .await
        .expect_error(422, "validation_failed");
    // Inspectors do not import.
    let (_, insp) = app.user_with_token("insp", "inspector", "330106").await;
    import(&app, &insp, "units", UNIT_HEADER)
        .await
        .expect_error(403, "forbidden");
    // No token.
    let rb = app
        .client
        .post(format!("{}{path}", app.base))
        .header("content-type", "text/csv")
        .body(UNIT_HEADER);
    app.send(Method::POST, path, rb)
        .await
        .expect_error(401, "missing_token");
}

async fn reimport_is_idempotent_and_updates_changed_rows(app: TestApp) {
    let m = manager(&app, "mgr", "330106").await;
    let lines: Vec<String> = (1..=20).map(|n| unit_line("330106", n, "office")).collect();
    let csv = format!("{UNIT_HEADER}\n{}\n", lines.join("\n"));
    import(&app, &m, "units", csv.clone()).await.expect(200);
    let before = all_units(&app, &m, "").await;
    let r = import(&app, &m, "units", csv).await;
    r.expect(200);
    assert_eq!(r.body, json!({"created": 0, "updated": 0, "unchanged": 20}));
    let again = all_units(&app, &m, "").await;
    assert_eq!(before, again, "unchanged rows keep their version");

    // One renamed, one moved to a public place, one new.
    let mut changed = lines.clone();
    changed[0] = changed[0].replace("示范单位1,", "更名单位,");
    changed[1] = changed[1].replace(",office,", ",hospital,");
    changed.push(unit_line("330106", 21, "office"));
    let r = import(
        &app,
        &m,
        "units",
        format!("{UNIT_HEADER}\n{}\n", changed.join("\n")),
    )
    .await;
    r.expect(200);
    assert_eq!(r.body, json!({"created": 1, "updated": 2, "unchanged": 18}));
    let after = all_units(&app, &m, "").await;
    assert_eq!(after.len(), 21);
    let renamed = after
        .iter()
        .find(|u| u["uscc"] == uscc("330106", 1))
        .unwrap();
    assert_eq!(renamed["name"], "更名单位");
    assert_eq!(
        renamed["id"], before[0]["id"],
        "same unit, updated in place"
    );
    assert!(renamed["version"].as_i64() > before[0]["version"].as_i64());
    let hospital = after
        .iter()
        .find(|u| u["uscc"] == uscc("330106", 2))
        .unwrap();
    assert_eq!(hospital["public_gathering"], true);
    assert_eq!(flags(hospital), ["public_gathering"]);
    let same = after
        .iter()
        .find(|u| u["uscc"] == uscc("330106", 3))
        .unwrap();
    assert_eq!(same["version"], before[2]["version"]);
}

async fn district_managers_import_and_see_only_their_district(app: TestApp) {
    let a = manager(&app, "mgr-a", "330106").await;
    let b = manager(&app, "mgr-b", "330105").await;
    let city = manager(&app, "mgr-city", "330100").await;
    import(
        &app,
        &b,
        "units",
        format!("{UNIT_HEADER}\n{}\n", unit_line("330105", 1, "park")),
    )
    .await
    .expect(200);
    // A may not import into B's district, nor take over B's unit by its USCC.
    let r = import(
        &app,
        &a,
        "units",
        format!("{UNIT_HEADER}\n{}\n", unit_line("330105", 2, "park")),
    )
    .await;
    r.expect_error(422, "import_rejected");
    assert_eq!(row_errors(&r), [(2, "region_code".to_string())]);
    let r = import(
        &app,
        &a,
        "units",
        format!(
            "{UNIT_HEADER}\n{},改名,路,330106,park,,\n",
            uscc("330105", 1)
        ),
    )
    .await;
    r.expect_error(422, "import_rejected");
    assert_eq!(row_errors(&r), [(2, "uscc".to_string())]);
    // Nor attach equipment to B's unit: it does not exist for A.
    let r = import(
        &app,
        &a,
        "equipment",
        format!(
            "{EQUIPMENT_HEADER}\n{},{},3110,,registered,,,,,,,0,false\n",
            reg_code(1),
            uscc("330105", 1)
        ),
    )
    .await;
    r.expect_error(422, "import_rejected");
    assert!(r.text.contains("in your region"));
    // B's unit is invisible to A (404, not 403), visible to the city.
    let units_b = all_units(&app, &b, "").await;
    let id = units_b[0]["id"].as_str().unwrap().to_string();
    app.get(&format!("/api/v1/units/{id}"), &a)
        .await
        .expect_error(404, "not_found");
    app.patch(&format!("/api/v1/units/{id}"), &a, json!({"name": "x"}))
        .await
        .expect_error(404, "not_found");
    assert!(all_units(&app, &a, "").await.is_empty());
    assert!(all_units(&app, &a, "&region=330105").await.is_empty());
    app.get(&format!("/api/v1/units/{id}"), &city)
        .await
        .expect(200);
    assert_eq!(all_units(&app, &city, "").await.len(), 1);
    assert_eq!(all_units(&app, &city, "&region=330105").await.len(), 1);
    assert!(all_units(&app, &city, "&region=330106").await.is_empty());
    // The city manager imports anywhere in the city.
    import(
        &app,
        &city,
        "units",
        format!("{UNIT_HEADER}\n{}\n", unit_line("330106", 5, "park")),
    )
    .await
    .expect(200);
    assert_eq!(all_units(&app, &a, "").await.len(), 1);
}

async fn units_and_equipment_rest_with_validation_and_conflicts(app: TestApp) {
    let m = manager(&app, "mgr", "330106").await;
    let body = json!({"uscc": uscc("330106", 1), "name": "示范小学", "address": "文一路1号",
        "region_code": "330106", "place_type": "school"});
    let r = app.post("/api/v1/units", &m, body.clone()).await;
    r.expect(201);
    let unit = r.body.clone();
    let uid = unit["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.header("location").unwrap(),
        format!("/api/v1/units/{uid}")
    );
    assert_eq!(unit["contact_name"], "");
    assert_eq!(flags(&unit), ["public_gathering"]);
    app.post("/api/v1/units", &m, body.clone())
        .await
        .expect_error(409, "uscc_taken");
    let mut bad = body.clone();
    bad["uscc"] = json!("91330106000000001X");
    bad["place_type"] = json!("castle");
    let r = app.post("/api/v1/units", &m, bad).await;
    r.expect_error(422, "validation_failed");
    assert!(r.body["error"]["fields"]["uscc"].is_string());
    assert!(r.body["error"]["fields"]["place_type"].is_string());
    let mut unknown = body.clone();
    unknown["colour"] = json!("red");
    app.post("/api/v1/units", &m, unknown)
        .await
        .expect_error(422, "validation_failed");

    let e = json!({"registration_code": reg_code(1), "unit_id": uid, "category_code": "3110",
        "reg_status": "registered", "commissioned_on": "2001-05-01", "brake_type": "arm_drum"});
    let r = app.post("/api/v1/equipment", &m, e.clone()).await;
    r.expect(201);
    let eid = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        flags(&r.body),
        ["public_gathering", "old_elevator", "arm_drum_brake"]
    );
    assert_eq!(r.body["region_code"], "330106");
    app.post("/api/v1/equipment", &m, e.clone())
        .await
        .expect_error(409, "registration_code_taken");
    let mut e2 = e.clone();
    e2["registration_code"] = json!(reg_code(2));
    e2["commissioned_on"] = json!("01/05/2001");
    let r = app.post("/api/v1/equipment", &m, e2).await;
    r.expect_error(422, "validation_failed");
    assert!(r.body["error"]["fields"]["commissioned_on"].is_string());

    // Patch: the brake replaced, the inspection passed; flags follow.
    let r = app
        .patch(
            &format!("/api/v1/equipment/{eid}"),
            &m,
            json!({"brake_type": "disc", "commissioned_on": null}),
        )
        .await;
    r.expect(200);
    assert_eq!(flags(&r.body), ["public_gathering"]);
    assert_eq!(r.body["commissioned_on"], Value::Null);
    let r = app.get(&format!("/api/v1/units/{uid}"), &m).await;
    assert_eq!(flags(&r.body), ["public_gathering"]);
    // The unit moves to the next district: its equipment follows.
    let r = app
        .patch(
            &format!("/api/v1/units/{uid}"),
            &m,
            json!({"region_code": "330105"}),
        )
        .await;
    r.expect_error(422, "validation_failed");
    let city = manager(&app, "city", "330100").await;
    let r = app
        .patch(
            &format!("/api/v1/units/{uid}"),
            &city,
            json!({"region_code": "330105", "contact_phone": "0571-1234"}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["region_code"], "330105");
    let r = app.get(&format!("/api/v1/equipment/{eid}"), &city).await;
    assert_eq!(r.body["region_code"], "330105");
    app.get(&format!("/api/v1/equipment/{eid}"), &m)
        .await
        .expect_error(404, "not_found");
    app.get("/api/v1/units/not-a-uuid", &m)
        .await
        .expect_error(404, "not_found");
    app.get(&format!("/api/v1/equipment/{}", uuid::Uuid::new_v4()), &m)
        .await
        .expect_error(404, "not_found");
}

async fn unit_users_and_inspectors_see_what_is_theirs(app: TestApp) {
    let m = manager(&app, "mgr", "330106").await;
    let lines: Vec<String> = (1..=3).map(|n| unit_line("330106", n, "office")).collect();
    import(
        &app,
        &m,
        "units",
        format!("{UNIT_HEADER}\n{}\n", lines.join("\n")),
    )
    .await
    .expect(200);
    let csv = format!(
        "{EQUIPMENT_HEADER}\n{},{},3110,,registered,,,,,,,0,false\n{},{},3110,,registered,,,,,,,0,false\n",
        reg_code(1),
        uscc("330106", 1),
        reg_code(2),
        uscc("330106", 2)
    );
    import(&app, &m, "equipment", csv).await.expect(200);
    let units = all_units(&app, &m, "").await;
    let mine = units
        .iter()
        .find(|u| u["uscc"] == uscc("330106", 1))
        .unwrap();
    let other = units
        .iter()
        .find(|u| u["uscc"] == uscc("330106", 2))
        .unwrap();

    let admin = app.admin_token().await;
    let r = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "unit1", "password": PASSWORD, "display_name": "单位用户",
                "role": "unit", "region_code": "330106", "unit_id": mine["id"]}),
        )
        .await;
    r.expect(201);
    let unit_user = app.token("unit1", PASSWORD).await;
    let seen = all_units(&app, &unit_user, "").await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["id"], mine["id"]);
    app.get(
        &format!("/api/v1/units/{}", other["id"].as_str().unwrap()),
        &unit_user,
    )
    .await
    .expect_error(404, "not_found");
    let r = app.get("/api/v1/equipment", &unit_user).await;
    let eq = r.body["items"].as_array().unwrap();
    assert_eq!(eq.len(), 1);
    assert_eq!(eq[0]["unit_id"], mine["id"]);
    let r = app
        .get(
            &format!(
                "/api/v1/equipment?unit_id={}",
                other["id"].as_str().unwrap()
            ),
            &unit_user,
        )
        .await;
    assert_eq!(r.body["items"], json!([]));
    app.patch(
        &format!("/api/v1/units/{}", mine["id"].as_str().unwrap()),
        &unit_user,
        json!({"name": "x"}),
    )
    .await
    .expect_error(403, "forbidden");

    // Inspectors read their region, change nothing.
    let (_, insp) = app.user_with_token("insp", "inspector", "330106").await;
    assert_eq!(all_units(&app, &insp, "").await.len(), 3);
    app.patch(
        &format!("/api/v1/units/{}", mine["id"].as_str().unwrap()),
        &insp,
        json!({"name": "x"}),
    )
    .await
    .expect_error(403, "forbidden");
    app.post(
        "/api/v1/units",
        &insp,
        json!({"uscc": uscc("330106", 9), "name": "n", "address": "a", "region_code": "330106", "place_type": "park"}),
    )
    .await
    .expect_error(403, "forbidden");
    let (_, far) = app.user_with_token("far", "inspector", "330105").await;
    assert!(all_units(&app, &far, "").await.is_empty());
}

/// Writes a hazard the way the one sync write path does (the hazard API comes later).
fn insert_hazard(
    app: &TestApp,
    unit_id: &str,
    reporter: &str,
    level: &str,
    state: &str,
    deadline: &str,
) {
    let mut db = Direct::open(app);
    let t = match app.backend {
        crate::common::Backend::Sqlite => ("BEGIN IMMEDIATE", "1", "0"),
        crate::common::Backend::Postgres => ("BEGIN", "TRUE", "FALSE"),
    };
    db.exec(t.0).unwrap();
    db.exec(&format!(
        "UPDATE sync_clock SET seq = seq + 1, writing = {} WHERE id = 1",
        t.1
    ))
    .unwrap();
    db.exec(&format!(
        "INSERT INTO hazards (id, unit_id, region_code, description, level, state, fixed_on_site, \
         deadline, reported_by, reported_at, created_at, updated_at, version) VALUES \
         ('{}', '{unit_id}', '330106', 'x', '{level}', '{state}', {}, {deadline}, '{reporter}', \
         '2026-01-01 00:00:00', '2026-01-01 00:00:00', '2026-01-01 00:00:00', \
         (SELECT seq FROM sync_clock WHERE id = 1))",
        uuid::Uuid::new_v4(),
        t.2
    ))
    .unwrap();
    db.exec(&format!(
        "UPDATE sync_clock SET writing = {} WHERE id = 1",
        t.2
    ))
    .unwrap();
    db.exec("COMMIT").unwrap();
}

async fn risk_facts_follow_changes_and_hazards(app: TestApp) {
    let admin = app.admin_token().await;
    let mgr = app.create_user(&admin, "mgr", "manager", "330106").await;
    let m = app.token("mgr", PASSWORD).await;
    let r = app
        .post(
            "/api/v1/units",
            &m,
            json!({"uscc": uscc("330106", 1), "name": "厂", "address": "路", "region_code": "330106", "place_type": "industrial"}),
        )
        .await;
    let uid = r.body["id"].as_str().unwrap().to_string();
    assert!(flags(&r.body).is_empty());
    let today = chrono::Utc::now().date_naive();
    let d = |days: i64| {
        (today + chrono::Duration::days(days))
            .format("%Y-%m-%d")
            .to_string()
    };
    let r = app
        .patch(
            &format!("/api/v1/units/{uid}"),
            &m,
            json!({"blacklisted_from": d(-10), "blacklisted_until": d(10),
                   "last_accident_on": d(-400), "last_complaint_on": d(-30)}),
        )
        .await;
    r.expect(200);
    assert_eq!(
        flags(&r.body),
        ["recent_accident", "recent_complaint", "blacklisted"]
    );
    assert_eq!(r.body["risk_score"], 20 + 10 + 20);
    let r = app
        .patch(
            &format!("/api/v1/units/{uid}"),
            &m,
            json!({"blacklisted_until": d(-1), "blacklisted_from": d(-20), "last_accident_on": null,
                   "last_complaint_on": d(-800)}),
        )
        .await;
    assert!(flags(&r.body).is_empty(), "{}", r.text);
    let r = app
        .patch(
            &format!("/api/v1/units/{uid}"),
            &m,
            json!({"blacklisted_from": d(5), "blacklisted_until": d(1)}),
        )
        .await;
    r.expect_error(422, "validation_failed");

    // Hazards: open, overdue, major.
    let reporter = mgr["id"].as_str().unwrap();
    insert_hazard(
        &app,
        &uid,
        reporter,
        "general",
        "rectifying",
        &format!("'{} 00:00:00'", d(-2)),
    );
    insert_hazard(&app, &uid, reporter, "major", "reported", "NULL");
    insert_hazard(&app, &uid, reporter, "general", "closed", "NULL");
    // Any change to the unit recomputes its facts.
    let r = app
        .patch(
            &format!("/api/v1/units/{uid}"),
            &m,
            json!({"contact_name": "李四"}),
        )
        .await;
    r.expect(200);
    assert_eq!(
        flags(&r.body),
        ["open_hazards", "overdue_hazards", "major_hazards"]
    );
    assert_eq!(r.body["open_hazards"], 2);
    assert_eq!(r.body["overdue_hazards"], 1);
    assert_eq!(r.body["risk_score"], 10 + 25 + 30);
    // Filters by score and flag.
    assert_eq!(all_units(&app, &m, "&risk_min=65").await.len(), 1);
    assert!(all_units(&app, &m, "&risk_min=66").await.is_empty());
    assert_eq!(all_units(&app, &m, "&flag=major_hazards").await.len(), 1);
    app.get("/api/v1/units?flag=nope", &m)
        .await
        .expect_error(422, "validation_failed");
}

async fn list_filters_and_text_search(app: TestApp) {
    let m = manager(&app, "mgr", "330106").await;
    let lines = [
        unit_line("330106", 1, "school"),
        unit_line("330106", 2, "mall"),
        format!("{},100%_纯\\单位,路,330106,office,,", uscc("330106", 3)),
    ];
    import(
        &app,
        &m,
        "units",
        format!("{UNIT_HEADER}\n{}\n", lines.join("\n")),
    )
    .await
    .expect(200);
    let today = chrono::Utc::now().date_naive();
    let past = (today - chrono::Duration::days(1)).format("%Y-%m-%d");
    let csv = format!(
        "{EQUIPMENT_HEADER}\n\
         {},{},3110,,registered,,,{past},,A座,,0,false\n\
         {},{},3300,,registered,,,,,B座,,0,false\n\
         {},{},4D00,,scrapped,,,{past},,,,0,false\n",
        reg_code(1),
        uscc("330106", 1),
        reg_code(2),
        uscc("330106", 2),
        reg_code(3),
        uscc("330106", 2),
    );
    import(&app, &m, "equipment", csv).await.expect(200);
    let count = |r: &Resp| r.body["items"].as_array().unwrap().len();
    assert_eq!(all_units(&app, &m, "&place_type=mall").await.len(), 1);
    assert_eq!(all_units(&app, &m, "&overdue=true").await.len(), 1);
    assert_eq!(all_units(&app, &m, "&q=%E7%A4%BA%E8%8C%83").await.len(), 2); // 示范
    assert_eq!(
        all_units(&app, &m, &format!("&q={}", &uscc("330106", 3)[..18]))
            .await
            .len(),
        1
    );
    // LIKE metacharacters are literal.
    assert_eq!(all_units(&app, &m, "&q=100%25_").await.len(), 1);
    assert_eq!(all_units(&app, &m, "&q=%25").await.len(), 1);
    assert_eq!(all_units(&app, &m, "&q=_").await.len(), 1);
    let r = app.get("/api/v1/equipment?category=3000", &m).await;
    assert_eq!(count(&r), 2);
    let r = app.get("/api/v1/equipment?category=3300", &m).await;
    assert_eq!(count(&r), 1);
    let r = app.get("/api/v1/equipment?category=4D00", &m).await;
    assert_eq!(count(&r), 1);
    let r = app.get("/api/v1/equipment?overdue=true", &m).await;
    assert_eq!(count(&r), 1, "scrapped equipment is not overdue");
    let r = app.get("/api/v1/equipment?reg_status=scrapped", &m).await;
    assert_eq!(count(&r), 1);
    let r = app
        .get(&format!("/api/v1/equipment?q={}", reg_code(2)), &m)
        .await;
    assert_eq!(count(&r), 1);
    app.get("/api/v1/equipment?category=xyz", &m)
        .await
        .expect_error(422, "validation_failed");
    app.get("/api/v1/units?risk_min=abc", &m)
        .await
        .expect_error(400, "invalid_query");
    app.get("/api/v1/units?colour=red", &m)
        .await
        .expect_error(400, "invalid_query");
    app.get("/api/v1/units?region=33", &m)
        .await
        .expect_error(422, "validation_failed");
}

async fn pagination_walks_every_unit_once_while_rows_are_added(app: TestApp) {
    let m = manager(&app, "mgr", "330106").await;
    let lines: Vec<String> = (1..=25).map(|n| unit_line("330106", n, "office")).collect();
    import(
        &app,
        &m,
        "units",
        format!("{UNIT_HEADER}\n{}\n", lines.join("\n")),
    )
    .await
    .expect(200);
    let original: BTreeSet<String> = all_units(&app, &m, "")
        .await
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    let mut seen = Vec::new();
    let mut after = String::new();
    let mut n = 100;
    loop {
        let r = app
            .get(&format!("/api/v1/units?limit=4&after={after}"), &m)
            .await;
        r.expect(200);
        for u in r.body["items"].as_array().unwrap() {
            seen.push(u["id"].as_str().unwrap().to_string());
        }
        // Rows added during the walk (by import and by REST).
        n += 1;
        import(
            &app,
            &m,
            "units",
            format!("{UNIT_HEADER}\n{}\n", unit_line("330106", n, "park")),
        )
        .await
        .expect(200);
        match r.body["next"].as_str() {
            Some(c) => after = c.to_string(),
            None => break,
        }
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no row twice");
    assert!(
        original.is_subset(&unique),
        "every row that existed throughout"
    );
    app.get("/api/v1/units?after=garbage", &m)
        .await
        .expect_error(400, "invalid_cursor");
    app.get("/api/v1/units?limit=0", &m)
        .await
        .expect_error(422, "validation_failed");
}

async fn large_imports_stream_in_batches(app: TestApp) {
    let m = manager(&app, "mgr", "330106").await;
    let mut csv = String::from(UNIT_HEADER);
    for n in 1..=300 {
        csv.push('\n');
        csv.push_str(&unit_line("330106", n, "residential"));
    }
    import(&app, &m, "units", csv).await.expect(200);
    // 2,400 equipment rows: several write batches; one bad row deep in the file.
    let mut rows = vec![EQUIPMENT_HEADER.to_string()];
    for n in 1..=2400u32 {
        rows.push(format!(
            "{},{},3110,,registered,2015-01-01,2025-01-01,2027-01-01,pass,,,0,false",
            reg_code(n),
            uscc("330106", n % 300 + 1)
        ));
    }
    let mut bad = rows.clone();
    bad[1800] = bad[1800].replace(",3110,", ",3111,");
    let r = import(&app, &m, "equipment", bad.join("\n")).await;
    r.expect_error(422, "import_rejected");
    assert_eq!(row_errors(&r), [(1801, "category_code".to_string())]);
    let r = import(&app, &m, "equipment", rows.join("\n")).await;
    r.expect(200);
    assert_eq!(r.body["created"], 2400);
    let mut total = 0;
    let mut after = String::new();
    loop {
        let r = app
            .get(&format!("/api/v1/equipment?limit=500&after={after}"), &m)
            .await;
        total += r.body["items"].as_array().unwrap().len();
        match r.body["next"].as_str() {
            Some(c) => after = c.to_string(),
            None => break,
        }
    }
    assert_eq!(total, 2400);
    // Errors are capped and say so.
    let mut many = vec![EQUIPMENT_HEADER.to_string()];
    for n in 1..=1500u32 {
        many.push(format!("{n},x,3110,,registered,,,,,,,0,false"));
    }
    let r = import(&app, &m, "equipment", many.join("\n")).await;
    r.expect_error(422, "import_rejected");
    assert_eq!(r.body["error"]["truncated"], true);
    assert_eq!(r.body["error"]["rows"].as_array().unwrap().len(), 1000);
}

async fn code_tables_with_labels_and_etag(app: TestApp) {
    let (_, insp) = app.user_with_token("insp", "inspector", "330106").await;
    let r = app.get("/api/v1/codes", &insp).await;
    r.expect(200);
    let t = &r.body["tables"];
    let find = |kind: &str, code: &str| {
        t[kind]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["code"] == code)
            .cloned()
            .unwrap_or_else(|| panic!("{kind} {code}"))
    };
    assert_eq!(find("equipment_category", "3000")["zh"], "电梯");
    assert_eq!(find("equipment_category", "3110")["parent"], "3000");
    assert_eq!(
        find("equipment_category", "4D00")["en"],
        "Mechanical parking system"
    );
    assert_eq!(find("hazard_level", "major")["zh"], "重大事故隐患");
    assert_eq!(
        find("place_type", "school")["attrs"]["public_gathering"],
        true
    );
    for kind in [
        "equipment_category",
        "place_type",
        "reg_status",
        "hazard_level",
        "hazard_state",
        "assignment_kind",
        "enforcement_kind",
        "risk_flag",
        "inspection_conclusion",
    ] {
        assert!(!t[kind].as_array().unwrap().is_empty(), "{kind}");
    }
    assert_eq!(t["risk_flag"].as_array().unwrap().len(), 15);
    let etag = r.header("etag").unwrap().to_string();
    let rb = app
        .client
        .get(format!("{}/api/v1/codes", app.base))
        .bearer_auth(&insp)
        .header("if-none-match", &etag);
    let r = app.send(Method::GET, "/api/v1/codes", rb).await;
    r.expect(304);
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let rb = app
        .client
        .get(format!("{}/api/v1/codes", app.base))
        .bearer_auth(&insp)
        .header("if-none-match", format!("\"other\", W/{etag}"));
    app.send(Method::GET, "/api/v1/codes", rb).await.expect(304);
    let rb = app
        .client
        .get(format!("{}/api/v1/codes", app.base))
        .bearer_auth(&insp)
        .header("if-none-match", "\"codes-0\"");
    app.send(Method::GET, "/api/v1/codes", rb).await.expect(200);
    app.req(Method::GET, "/api/v1/codes", None, None)
        .await
        .expect_error(401, "missing_token");
}

async fn checklist_templates_are_data_admins_edit(app: TestApp) {
    let (_, insp) = app.user_with_token("insp", "inspector", "330106").await;
    let r = app.get("/api/v1/checklist-templates", &insp).await;
    r.expect(200);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 9);
    let unit = items.iter().find(|t| t["code"] == "unit-321").unwrap();
    assert_eq!(unit["scope"], "unit");
    assert_eq!(unit["items"].as_array().unwrap().len(), 6);
    let elevator = items.iter().find(|t| t["category_code"] == "3000").unwrap();
    let mapped = elevator["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["major_clause"].is_string())
        .count();
    assert!(mapped >= 3, "elevator items map to GB 45067 criteria");
    let id = elevator["id"].as_str().unwrap();
    app.patch(
        &format!("/api/v1/checklist-templates/{id}"),
        &insp,
        json!({"title_en": "x"}),
    )
    .await
    .expect_error(403, "forbidden");
    let admin = app.admin_token().await;
    let new_items = json!([
        {"code": "E1", "text_zh": "门锁", "text_en": "Door lock", "major_clause": "GB 45067-2024 电梯: 门锁回路被短接", "per_equipment": true},
        {"code": "E2", "text_zh": "记录", "text_en": "Records"}
    ]);
    let r = app
        .patch(
            &format!("/api/v1/checklist-templates/{id}"),
            &admin,
            json!({"items": new_items, "title_en": "Elevator (2026)"}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["items"][1]["major_clause"], Value::Null);
    assert_eq!(r.body["items"][1]["per_equipment"], false);
    assert!(r.body["version"].as_i64() > elevator["version"].as_i64());
    let r = app
        .get(&format!("/api/v1/checklist-templates/{id}"), &insp)
        .await;
    assert_eq!(r.body["title_en"], "Elevator (2026)");
    // Saving what is already there changes nothing (devices are not sent it again).
    let same = app
        .patch(
            &format!("/api/v1/checklist-templates/{id}"),
            &admin,
            json!({"title_en": "Elevator (2026)"}),
        )
        .await;
    same.expect(200);
    assert_eq!(same.body["version"], r.body["version"]);
    let r = app
        .patch(
            &format!("/api/v1/checklist-templates/{id}"),
            &admin,
            json!({"items": [{"code": "A", "text_zh": "a\u{0007}", "text_en": "a"}]}),
        )
        .await;
    r.expect_error(422, "validation_failed");
    assert!(
        r.text
            .contains("item 1: text_zh: must not contain control characters"),
        "{}",
        r.text
    );
    let r = app
        .patch(
            &format!("/api/v1/checklist-templates/{id}"),
            &admin,
            json!({"items": [{"code": "A", "text_zh": "a", "text_en": "a"}, {"code": "A", "text_zh": "b", "text_en": "b"}]}),
        )
        .await;
    r.expect_error(422, "validation_failed");
    app.patch(
        &format!("/api/v1/checklist-templates/{id}"),
        &admin,
        json!({"items": []}),
    )
    .await
    .expect_error(422, "validation_failed");
    app.get(
        &format!("/api/v1/checklist-templates/{}", uuid::Uuid::new_v4()),
        &insp,
    )
    .await
    .expect_error(404, "not_found");
}

async fn date_driven_facts_are_refreshed_by_one_server_per_interval(app: TestApp) {
    let m = manager(&app, "mgr", "330106").await;
    import(
        &app,
        &m,
        "units",
        format!("{UNIT_HEADER}\n{}\n", unit_line("330106", 1, "office")),
    )
    .await
    .expect(200);
    let today = app.clock.now().date();
    let due = (today + chrono::Duration::days(10)).format("%Y-%m-%d");
    import(
        &app,
        &m,
        "equipment",
        format!(
            "{EQUIPMENT_HEADER}\n{},{},3110,,registered,,2025-01-01,{due},pass,,,0,false\n",
            reg_code(1),
            uscc("330106", 1)
        ),
    )
    .await
    .expect(200);
    let units = all_units(&app, &m, "").await;
    assert!(flags(&units[0]).is_empty());
    let version = units[0]["version"].as_i64().unwrap();

    // Eleven days later the inspection is overdue, though nothing was written.
    app.clock.advance(chrono::Duration::days(11));
    let cfg = crate::common::test_config(&app.db);
    let db = xuncha::db::Db::open(&cfg.db_target().unwrap(), cfg.pool_options()).unwrap();
    let rules = xuncha::registry::risk::RiskRules::default();
    let now = app.clock.now();
    let run = |db: &xuncha::db::Db| {
        let mut conn = db.get().unwrap();
        xuncha::registry::facts::refresh_job(&mut conn, now, 3600, &rules).unwrap()
    };
    let first = run(&db).expect("the first server takes the turn");
    assert_eq!(first.units_changed, 1);
    assert_eq!(first.equipment_changed, 1);
    assert!(
        run(&db).is_none(),
        "a second server in the same interval does nothing"
    );
    let m = app.token("mgr", PASSWORD).await;
    let units = all_units(&app, &m, "&overdue=true").await;
    assert_eq!(units.len(), 1);
    assert_eq!(flags(&units[0]), ["overdue_inspection"]);
    assert!(units[0]["version"].as_i64().unwrap() > version);
    let r = app
        .get("/api/v1/equipment?flag=overdue_inspection", &m)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = app
        .get("/api/v1/units?overdue=true&flag=public_gathering", &m)
        .await;
    r.expect_error(422, "validation_failed");

    // Next interval: nothing changed, nothing written.
    app.clock.advance(chrono::Duration::hours(2));
    let now = app.clock.now();
    let mut conn = db.get().unwrap();
    let again = xuncha::registry::facts::refresh_job(&mut conn, now, 3600, &rules)
        .unwrap()
        .expect("a new interval");
    assert_eq!((again.units_changed, again.equipment_changed), (0, 0));
}
