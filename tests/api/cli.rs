//! The binary: first start creates `admin` and prints a random password once, logs one ready
//! line, stops cleanly on SIGTERM; bad settings stop it with a message naming them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::{Backend, TestDb};

crate::both_backends_raw!(first_start_prints_the_admin_password_and_sigterm_stops_cleanly);

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xuncha"));
    for (k, _) in std::env::vars() {
        if k.starts_with("XUNCHA_") || k == "DATABASE_URL" {
            c.env_remove(k);
        }
    }
    c
}

async fn first_start_prints_the_admin_password_and_sigterm_stops_cleanly(backend: Backend) {
    let db = TestDb::new(backend);
    let mut child = bin()
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &db.url])
        .env("XUNCHA_DATA_DIR", db.data_dir())
        .env("XUNCHA_WORKERS", "1")
        .env("XUNCHA_SHUTDOWN_TIMEOUT_SECS", "5")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<(bool, String)>();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send((true, line));
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx2.send((false, line));
        }
    });
    let mut password = None;
    let mut addr = None;
    let mut log = Vec::new();
    while password.is_none() || addr.is_none() {
        let (is_stdout, line) = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("server did not start; output so far: {log:#?}"));
        if is_stdout && let Some(p) = line.split("password: ").nth(1) {
            password = Some(p.trim().to_string());
        }
        if let Some(a) = line.split("ready on http://").nth(1) {
            addr = Some(a.split_whitespace().next().unwrap().to_string());
        }
        log.push(line);
    }
    let password = password.unwrap();
    assert!(password.len() >= 16);
    assert!(
        !log.iter()
            .any(|l| !l.contains("password: ") && l.contains(&password)),
        "password leaked into the log"
    );
    let ready_lines = log.iter().filter(|l| l.contains("ready on")).count();
    assert_eq!(ready_lines, 1);

    let client = crate::common::client();
    let r = client
        .post(format!("http://{}/api/v1/auth/login", addr.unwrap()))
        .json(&serde_json::json!({"username": "admin", "password": password, "device_id": "cli-test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = actix_web::rt::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    let rest: Vec<String> = rx.try_iter().map(|(_, l)| l).collect();
    assert!(
        rest.iter().any(|l| l.contains("xuncha stopped")),
        "{rest:#?}"
    );
}

#[test]
fn unknown_database_scheme_is_refused_by_name() {
    let out = bin()
        .args(["serve", "--database-url", "mysql://root@localhost/x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("database_url") && err.contains("mysql://"),
        "{err}"
    );
}

#[test]
fn bad_settings_stop_the_server_naming_them() {
    let out = bin()
        .args(["serve"])
        .env("XUNCHA_DB_POOL_SIZE", "lots")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("db_pool_size"));
    let out = bin()
        .args(["serve"])
        .env("XUNCHA_ACCESS_TOKEN_TTL_SECS", "5")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("access_token_ttl_secs"));
    let out = bin()
        .args(["config"])
        .env("XUNCHA_TOKEN_SIGNING_KEY", "k".repeat(40))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("XUNCHA_BIND") && !text.contains("kkkkkkkk"),
        "{text}"
    );
}

#[test]
fn the_readme_documents_every_setting() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for (key, env, _, _) in xuncha::config::SETTINGS {
        assert!(
            readme.contains(&format!("`{key}`")) && readme.contains(&format!("`{env}`")),
            "README.md does not document the setting {key} ({env}); see `xuncha config --markdown`"
        );
    }
}
