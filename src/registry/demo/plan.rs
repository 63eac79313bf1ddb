//! The demo city as a pure function of the options, the date and the code tables: every
//! unit, piece of equipment, user and hazard is decided here, before anything is written.

use std::collections::{HashMap, HashSet};

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};

use super::catalog::{
    BRAKES, CATS, CONCLUSIONS, EquipmentSpec, FIRST_COMMISSIONED, PLACES, STATUSES, code_digits,
    days, equipment_spec, interval_months, minus_days, plus_days,
};
use super::names;
use super::rng::{self, Ids, Rng, STREAM_EQUIPMENT, STREAM_HAZARDS, STREAM_UNITS, STREAM_USERS};
use super::{CITY_CODE, DemoOptions, HazardRow};
use crate::registry::codes::CodeBook;
use crate::registry::ids::{CategoryCode, uscc_with_check};
use crate::registry::queries::{EquipmentRow, UnitRow};
use crate::registry::risk::{
    EquipmentFacts, Flags, RiskRules, UnitFacts, equipment_flags, unit_flags,
};

/// The USCC alphabet (no I, O, S, V, Z).
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

pub struct District {
    pub code: String,
    pub name: String,
}

/// What a unit row does not say but the plan needs.
pub struct UnitMeta {
    pub place: usize,
    pub district: usize,
    size: f64,
}

pub struct PlannedUser {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: &'static str,
    pub region_code: String,
    pub unit_id: Option<String>,
    pub credential_no: Option<String>,
}

pub struct Plan {
    pub districts: Vec<District>,
    pub units: Vec<UnitRow>,
    pub unit_meta: Vec<UnitMeta>,
    /// In unit order; the equipment of unit `u` is `equipment[unit_start[u]..unit_start[u + 1]]`.
    pub equipment: Vec<EquipmentSpec>,
    unit_start: Vec<usize>,
    pub users: Vec<PlannedUser>,
    pub managers: usize,
    pub inspectors: usize,
    pub hazards: Vec<HazardRow>,
    now: NaiveDateTime,
}

fn width(n: usize, min: usize) -> usize {
    n.to_string().len().max(min)
}

impl Plan {
    pub fn build(
        opts: &DemoOptions,
        now: NaiveDateTime,
        book: &CodeBook,
        rules: &RiskRules,
    ) -> Result<Plan, String> {
        let today = now.date();
        for c in &CATS {
            if !book.has("equipment_category", c.code) {
                return Err(format!(
                    "the code tables lack equipment category {}",
                    c.code
                ));
            }
        }
        for p in &PLACES {
            if !book.has("place_type", p.code) {
                return Err(format!("the code tables lack place type {}", p.code));
            }
        }
        let districts: Vec<District> = (0..opts.districts as usize)
            .map(|i| District {
                code: format!("{}{:02}", &CITY_CODE[..4], i + 1),
                name: names::district(i),
            })
            .collect();
        let mut ids = Ids::new(opts.seed);
        let mut plan = Plan {
            districts,
            units: Vec::new(),
            unit_meta: Vec::new(),
            equipment: Vec::new(),
            unit_start: Vec::new(),
            users: Vec::new(),
            managers: 0,
            inspectors: 0,
            hazards: Vec::new(),
            now,
        };
        plan.plan_units(opts, book, &mut ids)?;
        plan.plan_equipment(opts, book, &mut ids)?;
        plan.stamp_units(today, rules)?;
        plan.plan_users(opts, &mut ids);
        plan.plan_hazards(opts, &mut ids)?;
        Ok(plan)
    }

    fn plan_units(
        &mut self,
        opts: &DemoOptions,
        book: &CodeBook,
        ids: &mut Ids,
    ) -> Result<(), String> {
        let today = self.now.date();
        let mut rng = Rng::new(opts.seed, STREAM_UNITS);
        let place_cum = rng::cumulative(PLACES.iter().map(|p| p.weight));
        let gathering: Vec<bool> = PLACES
            .iter()
            .map(|p| book.public_gathering(p.code))
            .collect();
        let mut usccs: HashSet<String> = HashSet::with_capacity(opts.units as usize);
        self.units.reserve(opts.units as usize);
        for i in 0..opts.units as usize {
            // Every place type at least once, then by weight.
            let place = if i < PLACES.len() {
                i
            } else {
                rng.weighted(&place_cum)
            };
            let district = rng.below(self.districts.len() as u64) as usize;
            let size = PLACES[place].size * (0.75 * rng.normalish()).exp();
            let d = &self.districts[district];
            let uscc = loop {
                let mut s = String::with_capacity(18);
                s.push_str("91");
                s.push_str(&d.code);
                for _ in 0..9 {
                    s.push(USCC_ALPHABET[rng.below(31) as usize] as char);
                }
                let full = uscc_with_check(&s).ok_or("cannot make a USCC")?;
                if usccs.insert(full.clone()) {
                    break full;
                }
            };
            let name = names::unit(&mut rng, PLACES[place].code, &d.name);
            let address = names::address(&mut rng, &d.name);
            let contact_name = names::person(&mut rng);
            let contact_phone = names::phone(&mut rng);
            let last_accident_on = rng
                .chance(0.006)
                .then(|| minus_days(today, rng.range(30, 5 * 365)));
            let last_complaint_on = rng
                .chance(0.04)
                .then(|| minus_days(today, rng.range(1, 730)));
            let (blacklisted_from, blacklisted_until) = if rng.chance(0.002) {
                let from = minus_days(today, rng.range(1, 300));
                (Some(from), Some(plus_days(from, 365)))
            } else {
                (None, None)
            };
            self.units.push(UnitRow {
                id: ids.next().hyphenated().to_string(),
                uscc,
                name,
                address,
                region_code: d.code.clone(),
                place_type: PLACES[place].code.to_string(),
                public_gathering: gathering[place],
                contact_name,
                contact_phone,
                blacklisted_from,
                blacklisted_until,
                last_accident_on,
                last_complaint_on,
                open_hazards: 0,
                overdue_hazards: 0,
                risk_flags: "[]".into(),
                risk_score: 0,
                created_at: self.now,
                updated_at: self.now,
                version: 0,
            });
            self.unit_meta.push(UnitMeta {
                place,
                district,
                size,
            });
        }
        Ok(())
    }

    /// Which unit runs which category: first one of every category (so the city has them
    /// all), then one typical piece per unit, then the rest by the national mix, each placed
    /// by place-type affinity and unit size.
    fn plan_equipment(
        &mut self,
        opts: &DemoOptions,
        book: &CodeBook,
        ids: &mut Ids,
    ) -> Result<(), String> {
        let today = self.now.date();
        let mut rng = Rng::new(opts.seed, STREAM_EQUIPMENT);
        let n_units = self.units.len();
        let total = opts.equipment as usize;
        // affinity[place][cat]
        let affinity: Vec<Vec<f64>> = PLACES
            .iter()
            .map(|p| {
                CATS.iter()
                    .map(|c| {
                        c.affinity
                            .iter()
                            .find(|(pl, _)| *pl == p.code)
                            .map_or(0.0, |(_, w)| *w)
                    })
                    .collect()
            })
            .collect();
        let sizes = rng::cumulative(self.unit_meta.iter().map(|m| m.size));
        let by_cat: Vec<Vec<f64>> = (0..CATS.len())
            .map(|c| {
                let cum =
                    rng::cumulative(self.unit_meta.iter().map(|m| m.size * affinity[m.place][c]));
                if cum.last().copied().unwrap_or(0.0) > 0.0 {
                    cum
                } else {
                    sizes.clone()
                }
            })
            .collect();
        let by_place: Vec<Vec<f64>> = (0..PLACES.len())
            .map(|p| {
                rng::cumulative(
                    CATS.iter()
                        .enumerate()
                        .map(|(c, cat)| cat.share * affinity[p][c]),
                )
            })
            .collect();
        let mut per_unit: Vec<Vec<u8>> = vec![Vec::new(); n_units];
        let mut placed = vec![0usize; CATS.len()];
        let mut left = total;
        if total >= CATS.len() {
            for c in 0..CATS.len() {
                let u = rng.weighted(&by_cat[c]);
                per_unit[u].push(c as u8);
                placed[c] += 1;
            }
            left -= CATS.len();
        }
        for (u, list) in per_unit.iter_mut().enumerate().take(left.min(n_units)) {
            let c = rng.weighted(&by_place[self.unit_meta[u].place]);
            list.push(c as u8);
            placed[c] += 1;
        }
        left -= left.min(n_units);
        let share_total: f64 = CATS.iter().map(|c| c.share).sum();
        let remaining =
            rng::cumulative(CATS.iter().enumerate().map(|(c, cat)| {
                (total as f64 * cat.share / share_total - placed[c] as f64).max(0.0)
            }));
        let mix = if remaining.last().copied().unwrap_or(0.0) > 0.0 {
            remaining
        } else {
            rng::cumulative(CATS.iter().map(|c| c.share))
        };
        for _ in 0..left {
            let c = rng.weighted(&mix);
            let u = rng.weighted(&by_cat[c]);
            per_unit[u].push(c as u8);
        }

        let floor = NaiveDate::from_ymd_opt(
            FIRST_COMMISSIONED.0,
            FIRST_COMMISSIONED.1,
            FIRST_COMMISSIONED.2,
        )
        .ok_or("bad first commissioning date")?;
        let intervals: Vec<u32> = CATS.iter().map(|c| interval_months(book, c.code)).collect();
        let mut serials: HashMap<(u8, usize, i32), u32> = HashMap::new();
        self.equipment.reserve(total);
        self.unit_start.reserve(n_units + 1);
        for (u, cats) in per_unit.iter().enumerate() {
            self.unit_start.push(self.equipment.len());
            let meta = &self.unit_meta[u];
            for &c in cats {
                let mut spec = equipment_spec(
                    &mut rng,
                    c,
                    PLACES[meta.place].code,
                    today,
                    floor,
                    intervals[c as usize],
                );
                spec.id = ids.next();
                spec.unit = u as u32;
                let serial = serials
                    .entry((c, meta.district, spec.commissioned.year()))
                    .or_insert(0);
                *serial += 1;
                if *serial > 999_999 {
                    return Err(
                        "too much equipment for the 6-digit serial of registration codes: give more --districts or less --equipment".into(),
                    );
                }
                spec.serial = *serial;
                self.equipment.push(spec);
            }
        }
        self.unit_start.push(self.equipment.len());
        Ok(())
    }

    /// Each unit's risk facts as the registry derives them: its own, plus every flag of its
    /// equipment (no hazards yet; those are refreshed after they are written).
    fn stamp_units(&mut self, today: NaiveDate, rules: &RiskRules) -> Result<(), String> {
        let cats: Vec<CategoryCode> = CATS
            .iter()
            .map(|c| CategoryCode::parse(c.code))
            .collect::<Result<_, _>>()?;
        for (u, unit) in self.units.iter_mut().enumerate() {
            let mut flags: Flags = unit_flags(
                &UnitFacts {
                    public_gathering: unit.public_gathering,
                    blacklisted_from: unit.blacklisted_from,
                    blacklisted_until: unit.blacklisted_until,
                    last_accident_on: unit.last_accident_on,
                    last_complaint_on: unit.last_complaint_on,
                    open_hazards: 0,
                    overdue_hazards: 0,
                    open_major_hazards: 0,
                },
                today,
                rules,
            );
            for s in &self.equipment[self.unit_start[u]..self.unit_start[u + 1]] {
                flags.union(equipment_flags(
                    &EquipmentFacts {
                        category: &cats[s.cat as usize],
                        reg_status: STATUSES[s.status as usize],
                        commissioned_on: Some(s.commissioned),
                        last_inspection_on: s.last,
                        next_inspection_due: s.next,
                        inspection_conclusion: CONCLUSIONS[s.conclusion as usize],
                        brake_type: BRAKES[s.brake as usize],
                        fault_count_12m: i32::from(s.faults),
                        hazchem: s.hazchem,
                        public_gathering: unit.public_gathering,
                    },
                    today,
                    rules,
                ));
            }
            unit.risk_flags = flags.to_json();
            unit.risk_score = rules.score(&flags);
        }
        Ok(())
    }

    /// Managers (two city-wide, the rest by district), inspectors spread over the districts
    /// with credential numbers, and a unit user for each of the first ten units.
    fn plan_users(&mut self, opts: &DemoOptions, ids: &mut Ids) {
        let mut rng = Rng::new(opts.seed, STREAM_USERS);
        let n_districts = self.districts.len();
        let w = width(opts.managers as usize, 2);
        for j in 0..opts.managers as usize {
            let region = if j < 2 {
                CITY_CODE.to_string()
            } else {
                self.districts[(j - 2) % n_districts].code.clone()
            };
            self.users.push(PlannedUser {
                id: ids.next().hyphenated().to_string(),
                username: format!("manager{:0w$}", j + 1),
                display_name: names::person(&mut rng),
                role: "manager",
                region_code: region,
                unit_id: None,
                credential_no: None,
            });
        }
        self.managers = opts.managers as usize;
        let w = width(opts.inspectors as usize, 3);
        for i in 0..opts.inspectors as usize {
            let d = &self.districts[i % n_districts];
            self.users.push(PlannedUser {
                id: ids.next().hyphenated().to_string(),
                username: format!("inspector{:0w$}", i + 1),
                display_name: names::person(&mut rng),
                role: "inspector",
                region_code: d.code.clone(),
                unit_id: None,
                credential_no: Some(format!("{}{:05}", d.code, i + 1)),
            });
        }
        self.inspectors = opts.inspectors as usize;
        for (k, unit) in self.units.iter().take(10).enumerate() {
            self.users.push(PlannedUser {
                id: ids.next().hyphenated().to_string(),
                username: format!("unit{:03}", k + 1),
                display_name: unit.contact_name.clone(),
                role: "unit",
                region_code: unit.region_code.clone(),
                unit_id: Some(unit.id.clone()),
                credential_no: None,
            });
        }
    }

    /// Hazards on random units, most on a piece of their equipment, in every state of the
    /// lifecycle, reported by an inspector of the unit's district.
    fn plan_hazards(&mut self, opts: &DemoOptions, ids: &mut Ids) -> Result<(), String> {
        if opts.hazards == 0 {
            return Ok(());
        }
        let mut rng = Rng::new(opts.seed, STREAM_HAZARDS);
        let inspectors = &self.users[self.managers..self.managers + self.inspectors];
        let mut by_district: Vec<Vec<&str>> = vec![Vec::new(); self.districts.len()];
        for (i, u) in inspectors.iter().enumerate() {
            by_district[i % self.districts.len()].push(u.id.as_str());
        }
        let anyone: Vec<&str> = if inspectors.is_empty() {
            self.users[..self.managers]
                .iter()
                .map(|u| u.id.as_str())
                .collect()
        } else {
            inspectors.iter().map(|u| u.id.as_str()).collect()
        };
        if anyone.is_empty() {
            return Err(
                "hazards need someone to report them: give --inspectors or --managers".into(),
            );
        }
        let mut notices = 0u32;
        let mut out = Vec::with_capacity(opts.hazards as usize);
        for _ in 0..opts.hazards {
            let u = rng.below(self.units.len() as u64) as usize;
            let unit = &self.units[u];
            let (start, end) = (self.unit_start[u], self.unit_start[u + 1]);
            let equipment = (end > start && rng.chance(0.7))
                .then(|| &self.equipment[start + rng.below((end - start) as u64) as usize]);
            let top = equipment.map_or(b'U', |s| CATS[s.cat as usize].code.as_bytes()[0]);
            let (item, description) = *rng.pick(names::findings(top));
            let r = rng.f64();
            let level = if r < 0.15 {
                "minor"
            } else if r < 0.90 {
                "general"
            } else {
                "major"
            };
            let state = if level == "minor" {
                "fixed_on_site"
            } else {
                let r = rng.f64();
                if r < 0.18 {
                    "reported"
                } else if r < 0.38 {
                    "classified"
                } else if r < 0.68 {
                    "rectifying"
                } else if r < 0.82 {
                    "rectification_submitted"
                } else if r < 0.88 {
                    "verified"
                } else {
                    "closed"
                }
            };
            // Dates back from the deadline: about a fifth of the hazards under rectification
            // are past it (overdue), the rest due within their span.
            let today = self.now.date();
            let classified = !matches!(state, "reported" | "fixed_on_site");
            let span = if level == "major" {
                rng.range(30, 90)
            } else {
                rng.range(15, 60)
            };
            let days_ago = match state {
                "fixed_on_site" => rng.range(1, 180),
                "reported" => rng.range(1, 14),
                _ if rng.chance(0.2) => span + rng.range(1, 90),
                _ => span - rng.range(1, span - 1),
            };
            let time = NaiveTime::from_hms_opt(rng.range(8, 17) as u32, rng.range(0, 59) as u32, 0)
                .unwrap_or_default();
            let reported_at = minus_days(today, days_ago).and_time(time);
            let deadline = classified.then(|| reported_at + days(span));
            let notice_no = (classified && level == "major").then(|| {
                notices += 1;
                format!("示市监特督〔{}〕{}号", reported_at.year(), notices)
            });
            // A later change, at the latest yesterday.
            let later = |rng: &mut Rng| reported_at + days(rng.range(0, days_ago - 1));
            let closed_at = (state == "closed").then(|| later(&mut rng));
            let updated_at = match (state, closed_at) {
                (_, Some(c)) => c,
                ("reported" | "fixed_on_site", _) => reported_at,
                _ => later(&mut rng),
            };
            let district = self.unit_meta[u].district;
            let reporter = if by_district[district].is_empty() {
                *rng.pick(&anyone)
            } else {
                *rng.pick(&by_district[district])
            };
            out.push(HazardRow {
                id: ids.next().hyphenated().to_string(),
                unit_id: unit.id.clone(),
                equipment_id: equipment.map(|s| s.id.hyphenated().to_string()),
                region_code: unit.region_code.clone(),
                inspection_id: None,
                item_code: Some(item.to_string()),
                description: description.to_string(),
                level: level.to_string(),
                state: state.to_string(),
                fixed_on_site: state == "fixed_on_site",
                deadline,
                notice_no,
                reported_by: reporter.to_string(),
                reported_at,
                closed_at,
                created_at: reported_at,
                updated_at,
                version: 0,
            });
        }
        self.hazards = out;
        Ok(())
    }

    /// The row of `spec`, to be stamped with its risk facts and written at `version`.
    pub fn equipment_row(&self, spec: &EquipmentSpec, version: i64) -> EquipmentRow {
        let unit = &self.units[spec.unit as usize];
        let meta = &self.unit_meta[spec.unit as usize];
        let district = &self.districts[meta.district];
        let cat = CATS[spec.cat as usize].code;
        let status = STATUSES[spec.status as usize];
        let year = spec.commissioned.year();
        let reg_cert_no = if status == "unregistered" {
            String::new()
        } else {
            format!(
                "{}{}示{}{:05}({:02})",
                names::certificate_prefix(cat),
                &cat[..2],
                (b'A' + (meta.district % 26) as u8) as char,
                spec.serial,
                year % 100
            )
        };
        EquipmentRow {
            id: spec.id.hyphenated().to_string(),
            registration_code: format!(
                "{}{}{:04}{:06}",
                code_digits(cat),
                district.code,
                year,
                spec.serial
            ),
            unit_id: unit.id.clone(),
            region_code: unit.region_code.clone(),
            category_code: cat.to_string(),
            reg_cert_no,
            reg_status: status.to_string(),
            commissioned_on: Some(spec.commissioned),
            last_inspection_on: spec.last,
            next_inspection_due: spec.next,
            inspection_conclusion: CONCLUSIONS[spec.conclusion as usize].to_string(),
            location: names::location(
                cat,
                PLACES[meta.place].code,
                spec.loc.0,
                spec.loc.1,
                spec.loc.2,
            ),
            brake_type: BRAKES[spec.brake as usize].to_string(),
            fault_count_12m: i32::from(spec.faults),
            hazchem: spec.hazchem,
            risk_flags: "[]".into(),
            risk_score: 0,
            created_at: self.now,
            updated_at: self.now,
            version,
        }
    }

    /// Is the unit of `spec` a public gathering place?
    pub fn public_gathering(&self, spec: &EquipmentSpec) -> bool {
        self.units[spec.unit as usize].public_gathering
    }

    /// Equipment counts by top-level category (`3000`, …), largest first.
    pub fn by_top_category(&self) -> Vec<(String, u64)> {
        let mut counts: HashMap<u8, u64> = HashMap::new();
        for s in &self.equipment {
            *counts
                .entry(CATS[s.cat as usize].code.as_bytes()[0])
                .or_default() += 1;
        }
        let mut v: Vec<(String, u64)> = counts
            .into_iter()
            .map(|(top, n)| (format!("{}000", top as char), n))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
}
