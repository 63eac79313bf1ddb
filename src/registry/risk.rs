//! Risk facts (derived, stored on the rows, recomputed when what they derive from changes,
//! never per request) and the risk score: the sum of the configured weights of the flags.
//!
//! Equipment flags come from the equipment row and its unit's place; a unit's flags are its
//! own (place, blacklist, accidents, complaints, open and overdue hazards) plus every flag any
//! of its equipment in use carries. Suspended and scrapped equipment carries no flags.

use chrono::{Datelike, Months, NaiveDate};

use super::ids::CategoryCode;

/// Every risk flag, in a fixed order (the order of `risk_flags` arrays).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    OverdueInspection,
    FailedInspection,
    Unregistered,
    PublicGathering,
    OldElevator,
    ArmDrumBrake,
    FrequentFaults,
    HazchemPipelineUnregistered,
    HazchemPipelineUninspected,
    OpenHazards,
    OverdueHazards,
    MajorHazards,
    RecentAccident,
    RecentComplaint,
    Blacklisted,
}

impl Flag {
    pub const ALL: [Flag; 15] = [
        Flag::OverdueInspection,
        Flag::FailedInspection,
        Flag::Unregistered,
        Flag::PublicGathering,
        Flag::OldElevator,
        Flag::ArmDrumBrake,
        Flag::FrequentFaults,
        Flag::HazchemPipelineUnregistered,
        Flag::HazchemPipelineUninspected,
        Flag::OpenHazards,
        Flag::OverdueHazards,
        Flag::MajorHazards,
        Flag::RecentAccident,
        Flag::RecentComplaint,
        Flag::Blacklisted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Flag::OverdueInspection => "overdue_inspection",
            Flag::FailedInspection => "failed_inspection",
            Flag::Unregistered => "unregistered",
            Flag::PublicGathering => "public_gathering",
            Flag::OldElevator => "old_elevator",
            Flag::ArmDrumBrake => "arm_drum_brake",
            Flag::FrequentFaults => "frequent_faults",
            Flag::HazchemPipelineUnregistered => "hazchem_pipeline_unregistered",
            Flag::HazchemPipelineUninspected => "hazchem_pipeline_uninspected",
            Flag::OpenHazards => "open_hazards",
            Flag::OverdueHazards => "overdue_hazards",
            Flag::MajorHazards => "major_hazards",
            Flag::RecentAccident => "recent_accident",
            Flag::RecentComplaint => "recent_complaint",
            Flag::Blacklisted => "blacklisted",
        }
    }

    pub fn parse(s: &str) -> Option<Flag> {
        Flag::ALL.into_iter().find(|f| f.as_str() == s)
    }

    fn index(self) -> usize {
        self as usize
    }
}

pub const DEFAULT_WEIGHTS: &str = "overdue_inspection=30,failed_inspection=40,unregistered=30,\
public_gathering=15,old_elevator=10,arm_drum_brake=15,frequent_faults=10,\
hazchem_pipeline_unregistered=40,hazchem_pipeline_uninspected=30,open_hazards=10,\
overdue_hazards=25,major_hazards=30,recent_accident=20,recent_complaint=10,blacklisted=20";

/// The rules risk facts are computed with (from the configuration).
#[derive(Debug, Clone)]
pub struct RiskRules {
    weights: [u32; 15],
    pub old_elevator_years: u32,
    pub frequent_faults_12m: u32,
    pub recent_accident_years: u32,
    pub recent_complaint_months: u32,
}

impl RiskRules {
    /// `weights` as `flag=weight,…`; flags not named weigh 0.
    pub fn new(
        weights: &str,
        old_elevator_years: u32,
        frequent_faults_12m: u32,
        recent_accident_years: u32,
        recent_complaint_months: u32,
    ) -> Result<RiskRules, String> {
        let mut w = [0u32; 15];
        for part in weights.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not `flag=weight`"))?;
            let flag = Flag::parse(name.trim()).ok_or_else(|| {
                format!(
                    "unknown risk flag `{}` (known: {})",
                    name.trim(),
                    Flag::ALL.map(Flag::as_str).join(", ")
                )
            })?;
            let v: u32 = value
                .trim()
                .parse()
                .ok()
                .filter(|v| *v <= 1000)
                .ok_or_else(|| {
                    format!(
                        "weight of `{}` must be a whole number 0..=1000",
                        name.trim()
                    )
                })?;
            w[flag.index()] = v;
        }
        Ok(RiskRules {
            weights: w,
            old_elevator_years,
            frequent_faults_12m,
            recent_accident_years,
            recent_complaint_months,
        })
    }

    pub fn from_config(c: &crate::config::Config) -> Result<RiskRules, String> {
        RiskRules::new(
            &c.risk_weights,
            c.risk_old_elevator_years,
            c.risk_frequent_faults_12m,
            c.risk_recent_accident_years,
            c.risk_recent_complaint_months,
        )
        .map_err(|e| format!("setting `risk_weights`: {e}"))
    }

    pub fn weight(&self, f: Flag) -> u32 {
        self.weights[f.index()]
    }

    pub fn score(&self, flags: &Flags) -> i32 {
        flags.iter().map(|f| self.weight(f)).sum::<u32>() as i32
    }
}

impl Default for RiskRules {
    /// The default weights (`DEFAULT_WEIGHTS`, which a unit test proves parse).
    fn default() -> Self {
        let mut r = RiskRules {
            weights: [0; 15],
            old_elevator_years: 15,
            frequent_faults_12m: 6,
            recent_accident_years: 3,
            recent_complaint_months: 12,
        };
        if let Ok(parsed) = RiskRules::new(DEFAULT_WEIGHTS, 15, 6, 3, 12) {
            r.weights = parsed.weights;
        }
        r
    }
}

/// A set of flags (a bit set in the fixed order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags(u32);

impl Flags {
    pub fn insert(&mut self, f: Flag) {
        self.0 |= 1 << f.index();
    }
    pub fn set(&mut self, f: Flag, on: bool) {
        if on {
            self.insert(f);
        }
    }
    pub fn contains(&self, f: Flag) -> bool {
        self.0 & (1 << f.index()) != 0
    }
    pub fn union(&mut self, other: Flags) {
        self.0 |= other.0;
    }
    pub fn iter(&self) -> impl Iterator<Item = Flag> + '_ {
        Flag::ALL.into_iter().filter(|f| self.contains(*f))
    }
    /// As stored and sent: a JSON array of names, in the fixed order.
    pub fn to_json(&self) -> String {
        let names: Vec<&str> = self.iter().map(Flag::as_str).collect();
        serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
    }
    pub fn from_json(s: &str) -> Flags {
        let names: Vec<String> = serde_json::from_str(s).unwrap_or_default();
        let mut f = Flags::default();
        for n in names {
            if let Some(flag) = Flag::parse(&n) {
                f.insert(flag);
            }
        }
        f
    }
}

/// What the equipment flags derive from.
pub struct EquipmentFacts<'a> {
    pub category: &'a CategoryCode,
    pub reg_status: &'a str,
    pub commissioned_on: Option<NaiveDate>,
    pub last_inspection_on: Option<NaiveDate>,
    pub next_inspection_due: Option<NaiveDate>,
    pub inspection_conclusion: &'a str,
    pub brake_type: &'a str,
    pub fault_count_12m: i32,
    pub hazchem: bool,
    /// The unit is a public gathering place.
    pub public_gathering: bool,
}

pub fn equipment_flags(f: &EquipmentFacts<'_>, today: NaiveDate, rules: &RiskRules) -> Flags {
    let mut flags = Flags::default();
    // Equipment out of use (suspended or scrapped) carries no risk of use.
    if matches!(f.reg_status, "suspended" | "scrapped") {
        return flags;
    }
    let overdue = f.next_inspection_due.is_some_and(|d| d < today);
    flags.set(Flag::OverdueInspection, overdue);
    flags.set(
        Flag::FailedInspection,
        matches!(f.inspection_conclusion, "fail" | "not_allowed"),
    );
    flags.set(Flag::Unregistered, f.reg_status == "unregistered");
    flags.set(Flag::PublicGathering, f.public_gathering);
    if f.category.is_elevator() {
        let old = f
            .commissioned_on
            .and_then(|c| c.checked_add_months(Months::new(rules.old_elevator_years * 12)))
            .is_some_and(|limit| limit <= today);
        flags.set(Flag::OldElevator, old);
        flags.set(Flag::ArmDrumBrake, f.brake_type.trim() == "arm_drum");
    }
    flags.set(
        Flag::FrequentFaults,
        rules.frequent_faults_12m > 0 && f.fault_count_12m >= rules.frequent_faults_12m as i32,
    );
    if f.category.is_pipeline() && f.hazchem {
        flags.set(
            Flag::HazchemPipelineUnregistered,
            f.reg_status == "unregistered",
        );
        flags.set(
            Flag::HazchemPipelineUninspected,
            f.last_inspection_on.is_none() || overdue,
        );
    }
    flags
}

/// What a unit's own flags derive from.
pub struct UnitFacts {
    pub public_gathering: bool,
    pub blacklisted_from: Option<NaiveDate>,
    pub blacklisted_until: Option<NaiveDate>,
    pub last_accident_on: Option<NaiveDate>,
    pub last_complaint_on: Option<NaiveDate>,
    pub open_hazards: i64,
    pub overdue_hazards: i64,
    pub open_major_hazards: i64,
}

pub fn unit_flags(u: &UnitFacts, today: NaiveDate, rules: &RiskRules) -> Flags {
    let mut flags = Flags::default();
    flags.set(Flag::PublicGathering, u.public_gathering);
    let blacklisted = match (u.blacklisted_from, u.blacklisted_until) {
        (None, None) => false,
        (from, until) => from.is_none_or(|f| f <= today) && until.is_none_or(|t| today <= t),
    };
    flags.set(Flag::Blacklisted, blacklisted);
    let years_ago = today
        .with_year(today.year() - rules.recent_accident_years as i32)
        .unwrap_or(today - chrono::Duration::days(365 * rules.recent_accident_years as i64));
    flags.set(
        Flag::RecentAccident,
        u.last_accident_on
            .is_some_and(|d| d > years_ago && d <= today),
    );
    let months_ago = today
        .checked_sub_months(Months::new(rules.recent_complaint_months))
        .unwrap_or(today);
    flags.set(
        Flag::RecentComplaint,
        u.last_complaint_on
            .is_some_and(|d| d > months_ago && d <= today),
    );
    flags.set(Flag::OpenHazards, u.open_hazards > 0);
    flags.set(Flag::OverdueHazards, u.overdue_hazards > 0);
    flags.set(Flag::MajorHazards, u.open_major_hazards > 0);
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn equipment_risk() {
        let rules = RiskRules::default();
        let cat = CategoryCode::parse("3110").unwrap();
        let today = d("2026-11-25");
        let facts = EquipmentFacts {
            category: &cat,
            reg_status: "registered",
            commissioned_on: Some(d("2010-01-01")),
            last_inspection_on: Some(d("2025-01-01")),
            next_inspection_due: Some(d("2026-01-01")),
            inspection_conclusion: "pass",
            brake_type: "arm_drum",
            fault_count_12m: 7,
            hazchem: false,
            public_gathering: true,
        };
        let f = equipment_flags(&facts, today, &rules);
        let names: Vec<_> = f.iter().map(Flag::as_str).collect();
        assert_eq!(
            names,
            [
                "overdue_inspection",
                "public_gathering",
                "old_elevator",
                "arm_drum_brake",
                "frequent_faults"
            ]
        );
        assert_eq!(rules.score(&f), 30 + 15 + 10 + 15 + 10);
        assert_eq!(Flags::from_json(&f.to_json()), f);
        let scrapped = EquipmentFacts {
            reg_status: "scrapped",
            ..facts
        };
        assert_eq!(equipment_flags(&scrapped, today, &rules), Flags::default());
        // Due today is not overdue yet.
        let pipe = CategoryCode::parse("8300").unwrap();
        let p = EquipmentFacts {
            category: &pipe,
            reg_status: "unregistered",
            commissioned_on: None,
            last_inspection_on: None,
            next_inspection_due: Some(today),
            inspection_conclusion: "",
            brake_type: "",
            fault_count_12m: 0,
            hazchem: true,
            public_gathering: false,
        };
        let f = equipment_flags(&p, today, &rules);
        assert!(f.contains(Flag::HazchemPipelineUnregistered));
        assert!(f.contains(Flag::HazchemPipelineUninspected));
        assert!(!f.contains(Flag::OverdueInspection));
    }

    #[test]
    fn unit_risk_and_weights() {
        let rules = RiskRules::default();
        assert!(RiskRules::new(DEFAULT_WEIGHTS, 15, 6, 3, 12).is_ok());
        let today = d("2026-11-25");
        let u = UnitFacts {
            public_gathering: false,
            blacklisted_from: Some(d("2026-01-01")),
            blacklisted_until: Some(d("2026-12-31")),
            last_accident_on: Some(d("2024-06-01")),
            last_complaint_on: Some(d("2025-06-01")),
            open_hazards: 2,
            overdue_hazards: 0,
            open_major_hazards: 1,
        };
        let f = unit_flags(&u, today, &rules);
        assert!(f.contains(Flag::Blacklisted));
        assert!(f.contains(Flag::RecentAccident));
        assert!(!f.contains(Flag::RecentComplaint));
        assert!(f.contains(Flag::OpenHazards) && f.contains(Flag::MajorHazards));
        assert!(!f.contains(Flag::OverdueHazards));
        assert!(RiskRules::new("nonsense=1", 15, 6, 3, 12).is_err());
        assert!(RiskRules::new("open_hazards=x", 15, 6, 3, 12).is_err());
        let r = RiskRules::new("open_hazards=7", 15, 6, 3, 12).unwrap();
        assert_eq!(r.score(&f), 7);
    }
}
