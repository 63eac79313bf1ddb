//! The one write path: synced tables can only be written inside `sync_tx`, which bumps the
//! sync clock and stamps rows with its value. Checked on the database directly, so that no
//! code path, present or future, can get around it.

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};

use crate::common::{Backend, Direct, TestApp};

crate::both_backends!(
    synced_tables_refuse_writes_outside_sync_tx,
    every_sync_write_takes_a_new_version
);

fn clock_head(db: &mut Direct) -> i64 {
    db.count("SELECT seq AS n FROM sync_clock WHERE id = 1")
}

async fn synced_tables_refuse_writes_outside_sync_tx(app: TestApp) {
    let admin = app.admin_token().await;
    let before = app.get("/api/v1/me", &admin).await.body;
    let mut db = Direct::open(&app);
    let head = clock_head(&mut db);
    let ts = "2026-01-01 00:00:00";
    // Even stamped with the current head, a write that did not bump the clock is refused.
    let insert = format!(
        "INSERT INTO users (id, username, display_name, role, region_code, active, created_at, updated_at, version) \
         VALUES ('{}', 'sneaky', 'x', 'admin', '000000', TRUE, '{ts}', '{ts}', {head})",
        uuid::Uuid::new_v4()
    );
    let err = db.exec(&insert).unwrap_err();
    assert!(err.contains("outside sync_tx"), "{err}");
    let err = db
        .exec(&format!(
            "UPDATE users SET display_name = 'x', version = {head}"
        ))
        .unwrap_err();
    assert!(err.contains("outside sync_tx"), "{err}");
    let err = db.exec("UPDATE users SET display_name = 'x'").unwrap_err();
    assert!(err.contains("outside sync_tx"), "{err}");
    // The guard fires before any foreign-key check would.
    let err = db.exec("DELETE FROM users").unwrap_err();
    assert!(err.contains("outside sync_tx"), "{err}");
    assert_eq!(clock_head(&mut db), head);
    let after = app.get("/api/v1/me", &admin).await.body;
    assert_eq!(before, after);
    // And the server's own path still works.
    app.create_user(&admin, "legit", "inspector", "330106")
        .await;
    assert_eq!(clock_head(&mut db), head + 1);
}

async fn every_sync_write_takes_a_new_version(app: TestApp) {
    let admin = app.admin_token().await;
    let a = app
        .create_user(&admin, "first", "inspector", "330106")
        .await;
    let b = app
        .create_user(&admin, "second", "inspector", "330106")
        .await;
    let va = a["version"].as_i64().unwrap();
    let vb = b["version"].as_i64().unwrap();
    assert!(vb > va, "{va} {vb}");
    let path = format!("/api/v1/users/{}", a["id"].as_str().unwrap());
    let changed = app
        .patch(
            &path,
            &admin,
            serde_json::json!({"display_name": "renamed"}),
        )
        .await;
    changed.expect(200);
    let vc = changed.body["version"].as_i64().unwrap();
    assert!(vc > vb);
    let mut db = Direct::open(&app);
    assert_eq!(clock_head(&mut db), vc);
    // A failed write (duplicate username) rolls back and leaves the clock where it was.
    app.post(
        "/api/v1/users",
        &admin,
        serde_json::json!({"username": "first", "password": crate::common::PASSWORD, "display_name": "x", "role": "inspector", "region_code": "330106"}),
    )
    .await
    .expect(409);
    assert_eq!(clock_head(&mut db), vc);
}

crate::both_backends_raw!(storage_failures_answer_503_and_recover);

/// The database stops answering (PostgreSQL: the database is dropped under the running app;
/// SQLite: another process holds the write lock past the busy timeout): requests answer 503
/// `storage_unavailable` with Retry-After, never a 500 or a hang, and leak nothing.
async fn storage_failures_answer_503_and_recover(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.db_connect_timeout_ms = 500;
        c.db_busy_timeout_ms = 200;
    })
    .await;
    let admin = app.admin_token().await;
    match backend {
        Backend::Sqlite => {
            let mut db = Direct::open(&app);
            match &mut db {
                Direct::Sqlite(c) => c.batch_execute("BEGIN IMMEDIATE").unwrap(),
                Direct::Pg(_) => unreachable!(),
            }
            let body = serde_json::json!({"username": "blocked", "password": crate::common::PASSWORD,
                "display_name": "x", "role": "inspector", "region_code": "330106"});
            let r = app.post("/api/v1/users", &admin, body.clone()).await;
            r.expect_error(503, "storage_unavailable");
            assert_eq!(r.header("retry-after"), Some("1"));
            assert!(!r.text.contains("locked"), "internals leaked: {}", r.text);
            // Reads go on while the writer waits (WAL).
            app.get("/api/v1/me", &admin).await.expect(200);
            match &mut db {
                Direct::Sqlite(c) => c.batch_execute("ROLLBACK").unwrap(),
                Direct::Pg(_) => unreachable!(),
            }
            app.post("/api/v1/users", &admin, body).await.expect(201);
        }
        Backend::Postgres => {
            let name = app.db.url.rsplit('/').next().unwrap().to_string();
            let server = std::env::var("XUNCHA_TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let mut c = PgConnection::establish(&server).unwrap();
            diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&mut c)
                .unwrap();
            let r = app.req(reqwest::Method::GET, "/readyz", None, None).await;
            r.expect_error(503, "storage_unavailable");
            assert!(!r.text.contains(&name), "internals leaked: {}", r.text);
            app.get("/api/v1/me", &admin)
                .await
                .expect_error(503, "storage_unavailable");
            // The database comes back (empty, then migrated by a new server): this one recovers
            // without a restart once the pool reconnects.
            diesel::sql_query(format!("CREATE DATABASE {name}"))
                .execute(&mut c)
                .unwrap();
            let mut fresh = PgConnection::establish(&app.db.url).unwrap();
            diesel::sql_query("SELECT 1").execute(&mut fresh).unwrap();
            let mut ready = 0;
            for _ in 0..20 {
                let r = app.req(reqwest::Method::GET, "/readyz", None, None).await;
                if r.status == 200 {
                    ready += 1;
                    break;
                }
                r.expect_error(503, "storage_unavailable");
            }
            assert_eq!(ready, 1, "/readyz did not recover");
        }
    }
}
