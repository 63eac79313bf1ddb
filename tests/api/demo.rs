//! `xuncha demo`: a small city generated through the library on each backend is as asked,
//! the same seed gives the same data (ids included) and another seed other data, the
//! registry's rules hold on it (valid USCCs, risk facts), and its users can log in; the
//! command itself prints a summary and refuses a database that holds units already.

use std::collections::{HashMap, HashSet};
use std::process::Command;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use sha2::{Digest, Sha256};
use xuncha::auth::password::Hasher;
use xuncha::db::Db;
use xuncha::db::schema::{equipment, hazards, units, users};
use xuncha::registry::demo::{self, DemoOptions, DemoSummary, Silent};
use xuncha::registry::ids::{RegistrationCode, Uscc};
use xuncha::registry::risk::RiskRules;

use crate::common::{Backend, TestApp, TestDb, test_config};

crate::both_backends_raw!(
    a_small_city_is_as_asked_repeatable_and_usable,
    the_command_prints_a_summary_and_refuses_a_used_database
);

const PLACE_TYPES: [&str; 13] = [
    "school",
    "kindergarten",
    "hospital",
    "station",
    "mall",
    "park",
    "stadium",
    "hotel",
    "residential",
    "office",
    "industrial",
    "hazchem",
    "other",
];

const OPEN: [&str; 4] = [
    "reported",
    "classified",
    "rectifying",
    "rectification_submitted",
];

fn small(seed: u64) -> DemoOptions {
    DemoOptions {
        seed,
        units: 200,
        equipment: 1_200,
        districts: 3,
        inspectors: 20,
        managers: 5,
        hazards: 50,
        ..DemoOptions::default()
    }
}

fn open(db: &TestDb) -> Db {
    let cfg = test_config(db);
    Db::open(&cfg.db_target().unwrap(), cfg.pool_options()).unwrap()
}

fn generate(db: &TestDb, opts: &DemoOptions, now: NaiveDateTime) -> Result<DemoSummary, String> {
    let cfg = test_config(db);
    let hasher = Hasher::new(&cfg).unwrap();
    let rules = RiskRules::from_config(&cfg).unwrap();
    let pool = open(db);
    let mut conn = pool.get().unwrap();
    demo::generate(&mut conn, opts, &hasher, &rules, now, &mut Silent)
}

type UnitKey = (String, String, String, String, String, String, i32, i32);
type EquipmentKey = (
    String,
    String,
    String,
    String,
    String,
    Option<NaiveDate>,
    Option<NaiveDate>,
    String,
    i32,
    bool,
    String,
    i32,
);
type UserKey = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);
type HazardKey = (
    String,
    String,
    Option<String>,
    String,
    String,
    Option<NaiveDateTime>,
    String,
);

struct Dump {
    units: Vec<UnitKey>,
    equipment: Vec<EquipmentKey>,
    users: Vec<UserKey>,
    hazards: Vec<HazardKey>,
}

impl Dump {
    fn load(db: &TestDb) -> Dump {
        let pool = open(db);
        let mut conn = pool.get().unwrap();
        let c = &mut *conn;
        Dump {
            units: units::table
                .select((
                    units::id,
                    units::uscc,
                    units::name,
                    units::region_code,
                    units::place_type,
                    units::risk_flags,
                    units::risk_score,
                    units::open_hazards,
                ))
                .order(units::id)
                .load(c)
                .unwrap(),
            equipment: equipment::table
                .select((
                    equipment::id,
                    equipment::registration_code,
                    equipment::unit_id,
                    equipment::category_code,
                    equipment::reg_status,
                    equipment::commissioned_on,
                    equipment::next_inspection_due,
                    equipment::brake_type,
                    equipment::fault_count_12m,
                    equipment::hazchem,
                    equipment::risk_flags,
                    equipment::risk_score,
                ))
                .order(equipment::id)
                .load(c)
                .unwrap(),
            users: users::table
                .select((
                    users::id,
                    users::username,
                    users::role,
                    users::region_code,
                    users::unit_id,
                    users::credential_no,
                ))
                .order(users::id)
                .load(c)
                .unwrap(),
            hazards: hazards::table
                .select((
                    hazards::id,
                    hazards::unit_id,
                    hazards::equipment_id,
                    hazards::level,
                    hazards::state,
                    hazards::deadline,
                    hazards::reported_by,
                ))
                .order(hazards::id)
                .load(c)
                .unwrap(),
        }
    }

    /// A digest of every id and key column.
    fn digest(&self) -> String {
        let text = format!(
            "{:?}\n{:?}\n{:?}\n{:?}",
            self.units, self.equipment, self.users, self.hazards
        );
        hex::encode(Sha256::digest(text.as_bytes()))
    }
}

async fn a_small_city_is_as_asked_repeatable_and_usable(backend: Backend) {
    let now = xuncha::time::Clock::default().now();
    let today = now.date();
    let db = TestDb::new(backend);
    let s = generate(&db, &small(1), now).unwrap();
    assert_eq!(
        (
            s.units,
            s.equipment,
            s.managers,
            s.inspectors,
            s.unit_users,
            s.hazards
        ),
        (200, 1_200, 5, 20, 10, 50)
    );
    assert_eq!(s.districts.len(), 3);
    let d = Dump::load(&db);
    assert_eq!(d.units.len(), 200);
    assert_eq!(d.equipment.len(), 1_200);
    assert_eq!(d.users.len(), 35);
    assert_eq!(d.hazards.len(), 50);

    // Registry rules: valid USCCs naming the district, 20-digit registration codes.
    let districts: HashSet<&str> = ["330101", "330102", "330103"].into();
    for (_, uscc, name, region, ..) in &d.units {
        let parsed = Uscc::parse(uscc).unwrap_or_else(|e| panic!("{uscc}: {e}"));
        assert_eq!(parsed.as_str(), uscc);
        assert!(districts.contains(region.as_str()), "{region}");
        assert_eq!(&uscc[2..8], region, "{uscc}");
        assert!(!name.is_empty());
    }
    let places: HashSet<&str> = d.units.iter().map(|u| u.4.as_str()).collect();
    assert_eq!(places, PLACE_TYPES.into(), "every place type");
    for e in &d.equipment {
        RegistrationCode::parse(&e.1).unwrap_or_else(|err| panic!("{}: {err}", e.1));
    }

    // A realistic mix: elevators the largest category, every top-level category present,
    // some overdue, some arm-type drum brakes, some hazardous-chemical pipelines.
    let mut by_top: HashMap<char, usize> = HashMap::new();
    for e in &d.equipment {
        *by_top.entry(e.3.chars().next().unwrap()).or_default() += 1;
    }
    let elevators = by_top[&'3'];
    assert!(
        by_top.iter().all(|(top, n)| *top == '3' || *n < elevators),
        "{by_top:?}"
    );
    assert!(elevators * 100 / 1_200 >= 55, "{by_top:?}");
    let tops: HashSet<char> = by_top.keys().copied().collect();
    assert_eq!(tops, "12345689".chars().collect(), "every category");
    let in_use = |e: &&EquipmentKey| matches!(e.4.as_str(), "registered" | "unregistered");
    let overdue = d
        .equipment
        .iter()
        .filter(in_use)
        .filter(|e| e.6.is_some_and(|due| due < today))
        .count();
    assert!(overdue > 0 && overdue < 300, "{overdue} overdue");
    assert!(
        d.equipment
            .iter()
            .filter(in_use)
            .all(|e| e.6.is_none_or(|due| due >= today) || e.10.contains("overdue_inspection")),
        "overdue equipment carries its flag"
    );
    let arm_drum = d.equipment.iter().filter(|e| e.7 == "arm_drum").count();
    assert!(arm_drum > 0, "no arm_drum brakes");
    assert!(
        d.equipment
            .iter()
            .filter(|e| e.7 == "arm_drum")
            .all(|e| e.3.starts_with('3')),
        "only elevators have arm-type drum brakes"
    );
    let hazchem_pipes = d
        .equipment
        .iter()
        .filter(|e| e.3.starts_with('8') && e.9)
        .count();
    assert!(hazchem_pipes > 0, "no hazardous-chemical pipelines");
    assert!(d.equipment.iter().any(|e| e.4 == "unregistered"));

    // Users: two city managers, the rest by district; inspectors with credentials.
    let user = |name: &str| d.users.iter().find(|u| u.1 == name).unwrap();
    assert_eq!(user("manager01").3, "330100");
    assert_eq!(user("manager02").3, "330100");
    assert!(districts.contains(user("manager03").3.as_str()));
    for u in d.users.iter().filter(|u| u.2 == "inspector") {
        assert!(districts.contains(u.3.as_str()), "{u:?}");
        assert!(u.5.as_deref().is_some_and(|c| c.len() == 11), "{u:?}");
    }
    let unit_users: Vec<&UserKey> = d.users.iter().filter(|u| u.2 == "unit").collect();
    assert_eq!(unit_users.len(), 10);
    let unit_ids: HashSet<&str> = d.units.iter().map(|u| u.0.as_str()).collect();
    assert!(
        unit_users
            .iter()
            .all(|u| u.4.as_deref().is_some_and(|id| unit_ids.contains(id)))
    );

    // Hazards: reported by an inspector of the unit's district; units with open hazards
    // carry the flag and the count, the others neither.
    let region_of_user: HashMap<&str, &str> = d
        .users
        .iter()
        .map(|u| (u.0.as_str(), u.3.as_str()))
        .collect();
    let region_of_unit: HashMap<&str, &str> = d
        .units
        .iter()
        .map(|u| (u.0.as_str(), u.3.as_str()))
        .collect();
    let mut open_by_unit: HashMap<&str, i32> = HashMap::new();
    for h in &d.hazards {
        assert_eq!(region_of_user[h.6.as_str()], region_of_unit[h.1.as_str()]);
        if OPEN.contains(&h.4.as_str()) {
            *open_by_unit.entry(h.1.as_str()).or_default() += 1;
        }
        if h.3 == "minor" {
            assert_eq!(h.4, "fixed_on_site");
        }
    }
    assert!(!open_by_unit.is_empty());
    assert!(d.hazards.iter().any(|h| h.2.is_some()));
    assert!(
        d.hazards
            .iter()
            .any(|h| matches!(h.4.as_str(), "classified" | "rectifying")
                && h.5.is_some_and(|deadline| deadline < now)),
        "some hazards are overdue"
    );
    for u in &d.units {
        let open = open_by_unit.get(u.0.as_str()).copied().unwrap_or(0);
        assert_eq!(u.7, open, "open_hazards of {}", u.0);
        assert_eq!(
            u.5.contains("\"open_hazards\""),
            open > 0,
            "risk flags of {}: {}",
            u.0,
            u.5
        );
        assert!(u.6 > 0 || u.5 == "[]");
    }
    // The facts stamped at generation are the registry's own: its refresh changed only
    // the units that got open hazards, and no equipment.
    assert_eq!(s.refreshed.equipment_changed, 0);
    assert_eq!(s.refreshed.units_changed as usize, open_by_unit.len());

    // The same seed gives the same city, ids included; another seed another city.
    let twin = TestDb::new(backend);
    generate(&twin, &small(1), now).unwrap();
    let other = TestDb::new(backend);
    generate(&other, &small(2), now).unwrap();
    let (a, b, c) = (
        d.digest(),
        Dump::load(&twin).digest(),
        Dump::load(&other).digest(),
    );
    assert_eq!(a, b, "same seed, different data");
    assert_ne!(a, c, "different seeds, same data");
    let other_ids: HashSet<String> = Dump::load(&other).units.into_iter().map(|u| u.0).collect();
    assert!(d.units.iter().all(|u| !other_ids.contains(&u.0)));
    drop((twin, other));

    // A database that holds units is refused, and left as it was.
    let err = generate(&db, &small(3), now).unwrap_err();
    assert!(err.contains("fresh database"), "{err}");
    assert_eq!(Dump::load(&db).digest(), a);

    // Its users log in through the API.
    let app = TestApp::spawn_on(db).await;
    for (name, role, region) in [
        ("manager01", "manager", "330100"),
        ("inspector001", "inspector", "330101"),
    ] {
        let token = app.token(name, demo::DEFAULT_PASSWORD).await;
        let me = app.get("/api/v1/me", &token).await;
        me.expect(200);
        assert_eq!(me.body["username"], name);
        assert_eq!(me.body["role"], role);
        assert_eq!(me.body["region_code"], region);
    }
    let token = app.token("unit001", demo::DEFAULT_PASSWORD).await;
    let me = app.get("/api/v1/me", &token).await;
    me.expect(200);
    assert_eq!(me.body["role"], "unit");
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xuncha"));
    for (k, _) in std::env::vars() {
        if k.starts_with("XUNCHA_") || k == "DATABASE_URL" {
            c.env_remove(k);
        }
    }
    c
}

async fn the_command_prints_a_summary_and_refuses_a_used_database(backend: Backend) {
    let db = TestDb::new(backend);
    let dir = db.data_dir().display().to_string();
    let args = [
        "demo",
        "--database-url",
        &db.url,
        "--data-dir",
        &dir,
        "--seed",
        "7",
        "--units",
        "60",
        "--equipment",
        "400",
        "--districts",
        "2",
        "--inspectors",
        "4",
        "--managers",
        "3",
        "--hazards",
        "20",
    ];
    let run = |args: &[&str]| {
        bin()
            .args(args)
            .env("XUNCHA_DEMO_PASSWORD", "another-password-456")
            .output()
            .unwrap()
    };
    let out = run(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The admin is created first (and its password shown once), as by `serve`.
    assert!(stdout.contains("Created the user `admin`"), "{stdout}");
    assert!(stdout.contains("units      60"), "{stdout}");
    assert!(stdout.contains("equipment  400"), "{stdout}");
    assert!(
        stdout.contains("3 managers, 4 inspectors, 10 unit users"),
        "{stdout}"
    );
    assert!(stdout.contains("hazards    20"), "{stdout}");
    assert!(
        stdout.contains("manager01") && stdout.contains("another-password-456"),
        "{stdout}"
    );
    // Not a terminal: a plain progress line per tenth, ending at 100%.
    assert!(stderr.contains("equipment: 100% (400/400"), "{stderr}");
    assert!(!stderr.contains('\r'), "{stderr}");

    let again = run(&args);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("already holds 60 units") && err.contains("fresh database"),
        "{err}"
    );

    // The demo's facts are current: a refresh right after changes nothing.
    let refresh = run(&[
        "risk",
        "refresh",
        "--database-url",
        &db.url,
        "--data-dir",
        &dir,
    ]);
    let out = String::from_utf8_lossy(&refresh.stdout);
    assert!(refresh.status.success(), "{out}");
    assert!(
        out.contains("0 unit(s) and 0 piece(s) of equipment changed"),
        "{out}"
    );

    let bad = run(&["demo", "--database-url", &db.url, "--districts", "0"]);
    assert!(!bad.status.success());
    let weak = bin()
        .args(["demo", "--database-url", &db.url])
        .env("XUNCHA_DEMO_PASSWORD", "short")
        .output()
        .unwrap();
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("XUNCHA_DEMO_PASSWORD"));
}
