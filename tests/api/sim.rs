//! The device-fleet simulator (`src/bin/xuncha_sim.rs`) as a smoke test, on each backend: a
//! few phones on a small demo city log in, sync, work offline, push with dropped requests
//! retried, upload photos (some broken off and resumed), refresh, and at the end every copy
//! matches the server's checksum of its scope and every acknowledged mutation is found.
//! `scripts/load.sh` runs the same code with a thousand devices against a release server.

#[allow(dead_code)]
#[path = "../../src/bin/xuncha_sim/api.rs"]
mod api;
#[allow(dead_code)]
#[path = "../../src/bin/xuncha_sim/copy.rs"]
mod copy;
#[allow(dead_code)]
#[path = "../../src/bin/xuncha_sim/device.rs"]
mod device;
#[allow(dead_code)]
#[path = "../../src/bin/xuncha_sim/jpeg.rs"]
mod jpeg;
#[allow(dead_code)]
#[path = "../../src/bin/xuncha_sim/rng.rs"]
mod rng;
#[allow(dead_code)]
#[path = "../../src/bin/xuncha_sim/run.rs"]
mod run;
#[allow(dead_code)]
#[path = "../../src/bin/xuncha_sim/stats.rs"]
mod stats;
#[allow(dead_code)]
#[path = "../../src/bin/xuncha_sim/upload.rs"]
mod upload;
#[allow(dead_code)]
#[path = "../../src/bin/xuncha_sim/verify.rs"]
mod verify;
#[allow(dead_code)]
#[path = "../../src/bin/xuncha_sim/work.rs"]
mod work;

use xuncha::auth::password::Hasher;
use xuncha::db::Db;
use xuncha::registry::demo::{self, DemoOptions, Silent};
use xuncha::registry::risk::RiskRules;

use crate::common::{Backend, TestApp, TestDb, test_config};

crate::both_backends_raw!(a_fleet_of_phones_converges);

const INSPECTORS: u32 = 6;

fn city(db: &TestDb) {
    let cfg = test_config(db);
    let hasher = Hasher::new(&cfg).unwrap();
    let rules = RiskRules::from_config(&cfg).unwrap();
    let pool = Db::open(&cfg.db_target().unwrap(), cfg.pool_options()).unwrap();
    let mut conn = pool.get().unwrap();
    let opts = DemoOptions {
        units: 120,
        equipment: 600,
        districts: 2,
        inspectors: INSPECTORS,
        managers: 3,
        hazards: 40,
        ..DemoOptions::default()
    };
    let now = xuncha::time::Clock::default().now();
    demo::generate(&mut conn, &opts, &hasher, &rules, now, &mut Silent).unwrap();
}

async fn a_fleet_of_phones_converges(backend: Backend) {
    let db = TestDb::new(backend);
    city(&db);
    let app = TestApp::spawn_on(db).await;
    let outcome = run::run(run::Options {
        url: app.base.clone(),
        // Two phones for some inspectors: their sessions and queues are separate.
        devices: 8,
        concurrency: 16,
        seed: 8,
        profile: run::Profile::Full,
        password: demo::DEFAULT_PASSWORD.into(),
        inspectors: INSPECTORS as usize,
        drop_rate: 0.15,
        interrupt_rate: 0.5,
        photos: 1,
        photo_size: (160, 120),
        rate_secs: 0.1,
        progress_secs: 0.0,
        timeout_secs: 60,
        ..run::Options::default()
    })
    .await
    .unwrap();
    assert!(outcome.converged, "{}", outcome.text);
    // No device gave up, and the only errors allowed are the server's 503 "retry shortly"
    // (a test machine under load can keep a request waiting for a database connection
    // longer than the pool timeout); the device retried them.
    assert_eq!(
        outcome.json["device_failures"],
        serde_json::json!([]),
        "{}",
        outcome.text
    );
    let errors = outcome.json["errors"].as_object().unwrap();
    assert!(
        errors.keys().all(|k| k.contains("HTTP 503")),
        "{}",
        outcome.text
    );
    // Every device pushed and had its mutations acknowledged, none lost.
    let acked: u64 = outcome.json["mutations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["count"].as_u64().unwrap())
        .sum();
    assert!(acked >= 8 * 20, "{}", outcome.text);
    assert_eq!(outcome.json["devices_matching"], 8, "{}", outcome.text);
}
