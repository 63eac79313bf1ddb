//! The registry CSV importer, end to end on a scratch SQLite database: any file a manager
//! uploads either imports or is refused with row errors; it never panics, and a refused
//! file writes nothing.
#![no_main]

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use xuncha::auth::region::RegionCode;
use xuncha::config::Config;
use xuncha::db::{Db, PoolOptions, Target};
use xuncha::registry::import::{self, Importer, Kind};
use xuncha::registry::risk::RiskRules;

struct Scratch {
    _dir: tempfile::TempDir,
    db: Db,
    file: std::path::PathBuf,
    rules: RiskRules,
}

fn scratch() -> &'static Mutex<Scratch> {
    static S: OnceLock<Mutex<Scratch>> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let target = Target::Sqlite(dir.path().join("fuzz.db"));
        let db = Db::open(
            &target,
            PoolOptions {
                max_size: 1,
                connect_timeout: Duration::from_secs(5),
                busy_timeout: Duration::from_secs(5),
                sqlite_synchronous: "OFF".into(),
            },
        )
        .expect("the scratch database");
        let rules = RiskRules::from_config(&Config::default()).expect("default risk rules");
        let file = dir.path().join("import.csv");
        Mutex::new(Scratch {
            _dir: dir,
            db,
            file,
            rules,
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let (kind, header) = if which % 2 == 0 {
        (Kind::Units, import::UNIT_COLUMNS.join(","))
    } else {
        (Kind::Equipment, import::EQUIPMENT_COLUMNS.join(","))
    };
    let Ok(s) = scratch().lock() else {
        return;
    };
    // Half the inputs get a valid header, so the row checks are reached often.
    let mut f = std::fs::File::create(&s.file).expect("the scratch file");
    if which & 2 == 0 {
        writeln!(f, "{header}").expect("write");
    }
    f.write_all(body).expect("write");
    drop(f);
    let mut conn = s.db.get().expect("a connection");
    let importer = Importer {
        region: RegionCode::parse("330100").expect("a region"),
    };
    let now = chrono::Utc::now().naive_utc();
    match import::run(&mut *conn, kind, &importer, &s.file, now, &s.rules, 100) {
        Ok(_) => {}
        Err(e) => {
            let status = actix_web::ResponseError::status_code(&e).as_u16();
            assert!(
                status == 409 || status == 422,
                "import answered {status}: {e}"
            );
        }
    }
});
