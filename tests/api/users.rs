//! Users and roles: who creates whom, region isolation (404 across regions), validation,
//! conflicts, pagination.

use std::collections::BTreeSet;

use serde_json::json;

use crate::common::{PASSWORD, TestApp};

crate::both_backends!(
    who_may_create_whom,
    managers_see_and_change_only_their_region,
    inspectors_read_only_themselves,
    duplicate_usernames_conflict,
    validation_errors_name_the_field,
    pagination_walks_every_user_once_while_rows_are_added,
    list_filters_by_role,
);

fn new_user(username: &str, role: &str, region: &str) -> serde_json::Value {
    json!({"username": username, "password": PASSWORD, "display_name": "张三", "role": role, "region_code": region})
}

async fn who_may_create_whom(app: TestApp) {
    let admin = app.admin_token().await;
    let m = app.create_user(&admin, "mgr", "manager", "330106").await;
    assert_eq!(m["role"], "manager");
    assert_eq!(m["display_name"], "mgr 检查员");
    let mgr = app.token("mgr", PASSWORD).await;

    let r = app
        .post(
            "/api/v1/users",
            &mgr,
            new_user("insp", "inspector", "330106"),
        )
        .await;
    r.expect(201);
    assert_eq!(
        r.header("location").unwrap(),
        format!("/api/v1/users/{}", r.body["id"].as_str().unwrap())
    );
    let mut unit = new_user("unit1", "unit", "330106");
    unit["unit_id"] = json!(uuid::Uuid::new_v4().to_string());
    app.post("/api/v1/users", &mgr, unit).await.expect(201);

    // Not in their district; not a role they may create.
    app.post(
        "/api/v1/users",
        &mgr,
        new_user("xx1", "inspector", "330105"),
    )
    .await
    .expect_error(403, "forbidden");
    app.post("/api/v1/users", &mgr, new_user("xx2", "manager", "330106"))
        .await
        .expect_error(403, "forbidden");
    app.post("/api/v1/users", &mgr, new_user("xx3", "admin", "000000"))
        .await
        .expect_error(403, "forbidden");
    // Inspectors create nobody.
    let insp = app.token("insp", PASSWORD).await;
    app.post(
        "/api/v1/users",
        &insp,
        new_user("xx4", "inspector", "330106"),
    )
    .await
    .expect_error(403, "forbidden");
    // A city manager creates in any of its districts.
    app.create_user(&admin, "city", "manager", "330100").await;
    let city = app.token("city", PASSWORD).await;
    app.post(
        "/api/v1/users",
        &city,
        new_user("xx5", "inspector", "330105"),
    )
    .await
    .expect(201);
    app.post(
        "/api/v1/users",
        &city,
        new_user("xx6", "inspector", "330200"),
    )
    .await
    .expect_error(403, "forbidden");
}

async fn managers_see_and_change_only_their_region(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_user(&admin, "mgr-a", "manager", "330106").await;
    app.create_user(&admin, "city", "manager", "330100").await;
    let a_insp = app
        .create_user(&admin, "insp-a", "inspector", "330106")
        .await;
    let b_insp = app
        .create_user(&admin, "insp-b", "inspector", "330105")
        .await;
    let mgr_a = app.token("mgr-a", PASSWORD).await;
    let city = app.token("city", PASSWORD).await;
    let a_path = format!("/api/v1/users/{}", a_insp["id"].as_str().unwrap());
    let b_path = format!("/api/v1/users/{}", b_insp["id"].as_str().unwrap());

    app.get(&a_path, &mgr_a).await.expect(200);
    // District B's user does not exist for district A's manager: 404, never 403.
    app.get(&b_path, &mgr_a)
        .await
        .expect_error(404, "not_found");
    app.patch(&b_path, &mgr_a, json!({"display_name": "changed"}))
        .await
        .expect_error(404, "not_found");
    let unchanged = app.get(&b_path, &admin).await;
    assert_eq!(unchanged.body["display_name"], "insp-b 检查员");
    // Nor do ids that do not exist, or are not ids at all.
    app.get(&format!("/api/v1/users/{}", uuid::Uuid::new_v4()), &mgr_a)
        .await
        .expect_error(404, "not_found");
    app.get("/api/v1/users/not-an-id", &mgr_a)
        .await
        .expect_error(404, "not_found");

    let r = app
        .patch(
            &a_path,
            &mgr_a,
            json!({"display_name": "李四", "credential_no": "ZJ-0001"}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["display_name"], "李四");
    assert_eq!(r.body["credential_no"], "ZJ-0001");
    assert!(r.body["version"].as_i64().unwrap() > a_insp["version"].as_i64().unwrap());
    let cleared = app
        .patch(&a_path, &mgr_a, json!({"credential_no": null}))
        .await;
    cleared.expect(200);
    assert!(cleared.body["credential_no"].is_null());

    // Lists: the district manager sees its district; the city manager both; the admin (not in
    // any district) is seen by neither.
    let names = |v: &serde_json::Value| -> BTreeSet<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_string())
            .collect()
    };
    let a_list = app.get("/api/v1/users", &mgr_a).await;
    a_list.expect(200);
    assert_eq!(
        names(&a_list.body),
        BTreeSet::from(["mgr-a".into(), "insp-a".into()])
    );
    let c_list = app.get("/api/v1/users", &city).await;
    assert_eq!(
        names(&c_list.body),
        BTreeSet::from([
            "mgr-a".into(),
            "insp-a".into(),
            "insp-b".into(),
            "city".into()
        ])
    );
    // A manager does not manage managers, even in its region.
    let mgr_a_id = a_list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "mgr-a")
        .unwrap()["id"]
        .clone();
    app.patch(
        &format!("/api/v1/users/{}", mgr_a_id.as_str().unwrap()),
        &city,
        json!({"display_name": "x"}),
    )
    .await
    .expect_error(403, "forbidden");
}

async fn inspectors_read_only_themselves(app: TestApp) {
    let (me, token) = app.user_with_token("insp", "inspector", "330106").await;
    let admin = app.admin_token().await;
    let colleague = app
        .create_user(&admin, "colleague", "inspector", "330106")
        .await;
    app.get("/api/v1/users", &token)
        .await
        .expect_error(403, "forbidden");
    app.get(
        &format!("/api/v1/users/{}", me["id"].as_str().unwrap()),
        &token,
    )
    .await
    .expect(200);
    app.get(
        &format!("/api/v1/users/{}", colleague["id"].as_str().unwrap()),
        &token,
    )
    .await
    .expect_error(404, "not_found");
    let r = app
        .patch(
            &format!("/api/v1/users/{}", me["id"].as_str().unwrap()),
            &token,
            json!({"display_name": "王五"}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["display_name"], "王五");
    app.get("/api/v1/me", &token).await.expect(200);
}

async fn duplicate_usernames_conflict(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_user(&admin, "dup", "inspector", "330106").await;
    app.post(
        "/api/v1/users",
        &admin,
        new_user("DUP", "inspector", "330105"),
    )
    .await
    .expect_error(409, "username_taken");
}

async fn validation_errors_name_the_field(app: TestApp) {
    let admin = app.admin_token().await;
    let cases = [
        (new_user("ok-name", "inspector", "33010"), "region_code"),
        (new_user("ok-name", "inspector", "000000"), "region_code"),
        (new_user("ok-name", "admin", "330106"), "region_code"),
        (new_user("ok-name", "boss", "330106"), "role"),
        (new_user("no spaces", "inspector", "330106"), "username"),
        (new_user("ab", "inspector", "330106"), "username"),
        (new_user("ok-name", "unit", "330106"), "unit_id"),
        (
            json!({"username": "ok-name", "password": "short", "display_name": "x", "role": "inspector", "region_code": "330106"}),
            "password",
        ),
        (
            json!({"username": "ok-name", "password": PASSWORD, "display_name": "  ", "role": "inspector", "region_code": "330106"}),
            "display_name",
        ),
        (
            json!({"username": "ok-name", "password": PASSWORD, "display_name": "x".repeat(101), "role": "inspector", "region_code": "330106"}),
            "display_name",
        ),
        (
            json!({"username": "ok-name", "password": PASSWORD, "display_name": "x", "role": "inspector", "region_code": "330106", "unit_id": "not-a-uuid"}),
            "unit_id",
        ),
        (
            json!({"username": "ok-name", "password": PASSWORD, "display_name": "x", "role": "inspector", "region_code": 330106}),
            "region_code",
        ),
    ];
    for (body, field) in cases {
        let r = app.post("/api/v1/users", &admin, body.clone()).await;
        r.expect_error(422, "validation_failed");
        assert!(
            r.body["error"]["fields"][field].is_string(),
            "{field}: {}",
            r.text
        );
    }
}

async fn pagination_walks_every_user_once_while_rows_are_added(app: TestApp) {
    let admin = app.admin_token().await;
    let mut expected = BTreeSet::from(["admin".to_string()]);
    for i in 0..7 {
        let name = format!("page-user-{i}");
        app.create_user(&admin, &name, "inspector", "330106").await;
        expected.insert(name);
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &after {
            Some(c) => format!("/api/v1/users?limit=3&after={c}"),
            None => "/api/v1/users?limit=3".to_string(),
        };
        let r = app.get(&path, &admin).await;
        r.expect(200);
        let items = r.body["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(
            items
                .iter()
                .map(|u| u["username"].as_str().unwrap().to_string()),
        );
        pages += 1;
        // Rows added during the walk must not disturb it.
        app.create_user(&admin, &format!("late-{pages}"), "inspector", "330106")
            .await;
        match r.body["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
        assert!(pages < 20, "pagination does not end");
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "duplicates in {seen:?}");
    assert!(
        expected.is_subset(&unique),
        "missing {:?}",
        expected.difference(&unique).collect::<Vec<_>>()
    );
    app.get("/api/v1/users?after=garbage!", &admin)
        .await
        .expect_error(400, "invalid_cursor");
    app.get("/api/v1/users?limit=0", &admin)
        .await
        .expect_error(422, "validation_failed");
    app.get("/api/v1/users?limit=501", &admin)
        .await
        .expect_error(422, "validation_failed");
}

async fn list_filters_by_role(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_user(&admin, "mgr", "manager", "330106").await;
    app.create_user(&admin, "insp", "inspector", "330106").await;
    let r = app.get("/api/v1/users?role=manager", &admin).await;
    r.expect(200);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["username"], "mgr");
    app.get("/api/v1/users?role=boss", &admin)
        .await
        .expect_error(422, "validation_failed");
}
