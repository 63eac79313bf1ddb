//! The catalogue the demo city is drawn from: place types with their share of the units,
//! equipment categories with their share of the equipment and where they stand, and the
//! facts of one piece of equipment (age, registration, inspections, brake, faults).

use chrono::{Datelike, Months, NaiveDate, TimeDelta};
use uuid::Uuid;

use super::rng::Rng;
use crate::registry::codes::CodeBook;

/// A place type: its code, its share of the units (percent) and how much equipment a unit of
/// the kind typically runs (relative).
pub struct Place {
    pub code: &'static str,
    pub(super) weight: f64,
    pub(super) size: f64,
}

const fn place(code: &'static str, weight: f64, size: f64) -> Place {
    Place { code, weight, size }
}

pub const PLACES: [Place; 13] = [
    place("school", 6.0, 0.5),
    place("kindergarten", 3.0, 0.3),
    place("hospital", 3.0, 2.5),
    place("station", 1.0, 3.0),
    place("mall", 4.0, 3.0),
    place("park", 2.0, 1.2),
    place("stadium", 1.0, 1.5),
    place("hotel", 5.0, 1.5),
    place("residential", 24.0, 2.5),
    place("office", 17.0, 2.0),
    place("industrial", 20.0, 1.5),
    place("hazchem", 3.0, 1.5),
    place("other", 11.0, 0.7),
];

/// An equipment category: its share of all equipment (per mille, roughly the national mix:
/// elevators about two thirds) and where it stands (affinity by place type).
pub(super) struct Cat {
    pub(super) code: &'static str,
    pub(super) share: f64,
    pub(super) affinity: &'static [(&'static str, f64)],
}

pub(super) const CATS: [Cat; 25] = [
    Cat {
        code: "3110",
        share: 550.0,
        affinity: &[
            ("residential", 10.0),
            ("office", 8.0),
            ("hotel", 6.0),
            ("hospital", 8.0),
            ("mall", 5.0),
            ("station", 3.0),
            ("school", 1.5),
            ("kindergarten", 0.5),
            ("stadium", 2.0),
            ("other", 2.0),
            ("industrial", 0.4),
            ("park", 0.2),
        ],
    },
    Cat {
        code: "3120",
        share: 35.0,
        affinity: &[
            ("mall", 4.0),
            ("industrial", 3.0),
            ("office", 1.0),
            ("hotel", 2.0),
            ("hospital", 3.0),
            ("station", 1.0),
            ("other", 1.0),
            ("hazchem", 0.5),
        ],
    },
    Cat {
        code: "3200",
        share: 5.0,
        affinity: &[
            ("residential", 1.0),
            ("office", 1.0),
            ("hospital", 1.0),
            ("hotel", 1.0),
            ("other", 1.0),
        ],
    },
    Cat {
        code: "3300",
        share: 55.0,
        affinity: &[
            ("mall", 10.0),
            ("station", 10.0),
            ("stadium", 2.0),
            ("hospital", 1.0),
            ("office", 1.0),
            ("hotel", 0.5),
            ("park", 0.2),
        ],
    },
    Cat {
        code: "3400",
        share: 5.0,
        affinity: &[("residential", 1.0), ("office", 1.0), ("other", 2.0)],
    },
    Cat {
        code: "4100",
        share: 35.0,
        affinity: &[("industrial", 10.0), ("hazchem", 3.0), ("other", 1.0)],
    },
    Cat {
        code: "4200",
        share: 12.0,
        affinity: &[
            ("industrial", 10.0),
            ("hazchem", 2.0),
            ("station", 0.5),
            ("other", 1.0),
        ],
    },
    Cat {
        code: "4300",
        share: 8.0,
        affinity: &[("industrial", 2.0), ("other", 3.0), ("residential", 0.2)],
    },
    Cat {
        code: "4400",
        share: 5.0,
        affinity: &[("industrial", 5.0), ("other", 3.0)],
    },
    Cat {
        code: "4800",
        share: 15.0,
        affinity: &[
            ("industrial", 8.0),
            ("other", 3.0),
            ("residential", 0.3),
            ("office", 0.2),
        ],
    },
    Cat {
        code: "4D00",
        share: 25.0,
        affinity: &[
            ("residential", 3.0),
            ("office", 3.0),
            ("mall", 3.0),
            ("hotel", 2.0),
            ("hospital", 2.0),
            ("station", 1.0),
        ],
    },
    Cat {
        code: "5100",
        share: 75.0,
        affinity: &[
            ("industrial", 10.0),
            ("hazchem", 4.0),
            ("mall", 0.5),
            ("station", 0.5),
            ("other", 2.0),
        ],
    },
    Cat {
        code: "5200",
        share: 5.0,
        affinity: &[
            ("park", 10.0),
            ("stadium", 1.0),
            ("hotel", 0.5),
            ("station", 0.5),
        ],
    },
    Cat {
        code: "1100",
        share: 20.0,
        affinity: &[
            ("industrial", 8.0),
            ("hazchem", 5.0),
            ("hospital", 3.0),
            ("hotel", 1.0),
            ("other", 1.0),
        ],
    },
    Cat {
        code: "1200",
        share: 28.0,
        affinity: &[
            ("school", 4.0),
            ("kindergarten", 2.0),
            ("hotel", 3.0),
            ("hospital", 3.0),
            ("office", 2.0),
            ("residential", 0.5),
            ("stadium", 2.0),
            ("industrial", 2.0),
            ("other", 1.0),
        ],
    },
    Cat {
        code: "1300",
        share: 2.0,
        affinity: &[("industrial", 5.0), ("hazchem", 5.0)],
    },
    Cat {
        code: "2100",
        share: 46.0,
        affinity: &[
            ("industrial", 8.0),
            ("hazchem", 10.0),
            ("hospital", 3.0),
            ("hotel", 1.0),
            ("office", 0.5),
            ("school", 0.5),
            ("other", 1.0),
        ],
    },
    Cat {
        code: "2200",
        share: 5.0,
        affinity: &[("hazchem", 10.0), ("industrial", 2.0)],
    },
    Cat {
        code: "2300",
        share: 4.0,
        affinity: &[
            ("hospital", 5.0),
            ("industrial", 3.0),
            ("hazchem", 3.0),
            ("other", 1.0),
        ],
    },
    Cat {
        code: "2400",
        share: 5.0,
        affinity: &[("hospital", 10.0)],
    },
    Cat {
        code: "8100",
        share: 1.0,
        affinity: &[("hazchem", 5.0), ("other", 2.0)],
    },
    Cat {
        code: "8200",
        share: 3.0,
        affinity: &[("other", 5.0), ("industrial", 1.0), ("residential", 0.2)],
    },
    Cat {
        code: "8300",
        share: 26.0,
        affinity: &[("hazchem", 40.0), ("industrial", 2.0)],
    },
    Cat {
        code: "6000",
        share: 8.0,
        affinity: &[("park", 10.0), ("mall", 0.5), ("other", 0.3)],
    },
    Cat {
        code: "9000",
        share: 0.5,
        affinity: &[("park", 10.0)],
    },
];

pub(super) const STATUSES: [&str; 4] = ["registered", "unregistered", "suspended", "scrapped"];
pub(super) const CONCLUSIONS: [&str; 5] = ["", "pass", "pass_after_fix", "fail", "not_allowed"];
pub(super) const BRAKES: [&str; 4] = ["", "disc", "drum", "arm_drum"];

/// Equipment commissioned from this date on.
pub(super) const FIRST_COMMISSIONED: (i32, u32, u32) = (1995, 1, 1);

/// A piece of equipment, compactly: the row is built from it when written.
pub struct EquipmentSpec {
    pub id: Uuid,
    pub unit: u32,
    pub(super) cat: u8,
    pub(super) status: u8,
    pub(super) commissioned: NaiveDate,
    pub(super) last: Option<NaiveDate>,
    pub(super) next: Option<NaiveDate>,
    pub(super) conclusion: u8,
    pub(super) brake: u8,
    pub(super) faults: u8,
    pub(super) hazchem: bool,
    pub(super) serial: u32,
    pub(super) loc: (u16, u8, u8),
}

pub(super) fn days(n: i64) -> TimeDelta {
    TimeDelta::days(n)
}

pub(super) fn minus_days(d: NaiveDate, n: i64) -> NaiveDate {
    d.checked_sub_signed(days(n)).unwrap_or(d)
}

pub(super) fn plus_days(d: NaiveDate, n: i64) -> NaiveDate {
    d.checked_add_signed(days(n)).unwrap_or(d)
}

pub(super) fn minus_months(d: NaiveDate, m: u32) -> NaiveDate {
    d.checked_sub_months(Months::new(m)).unwrap_or(d)
}

pub(super) fn plus_months(d: NaiveDate, m: u32) -> NaiveDate {
    d.checked_add_months(Months::new(m)).unwrap_or(d)
}

/// The digits of a category code in a registration code (`4D00` has a letter; use `9`).
pub(super) fn code_digits(code: &str) -> String {
    code.chars()
        .map(|c| if c.is_ascii_digit() { c } else { '9' })
        .collect()
}

pub(super) fn interval_months(book: &CodeBook, code: &str) -> u32 {
    book.get("equipment_category", code)
        .and_then(|c| c.attrs.get("interval_months"))
        .and_then(serde_json::Value::as_u64)
        .filter(|m| (1..=240).contains(m))
        .unwrap_or(12) as u32
}

/// The facts of one piece of equipment of category `cat` at a unit of `place`.
pub(super) fn equipment_spec(
    rng: &mut Rng,
    cat: u8,
    place: &str,
    today: NaiveDate,
    floor: NaiveDate,
    interval: u32,
) -> EquipmentSpec {
    let code = CATS[cat as usize].code;
    let top = code.as_bytes()[0];
    let elevator = top == b'3';
    // Ages: 1995 to today, elevators skewed older than the rest.
    let span = (today - floor).num_days().max(1);
    let skew = if elevator { 1.2 } else { 1.6 };
    let age = (span as f64 * rng.f64().powf(skew)) as i64;
    let mut commissioned = minus_days(today, age);
    let r = rng.f64();
    let status = if r < 0.03 {
        1 // unregistered
    } else if r < 0.045 {
        2 // suspended
    } else if r < 0.055 {
        3 // scrapped
    } else {
        0
    };
    let (mut last, mut next) = (None, None);
    // Most unregistered equipment was never inspected either.
    if !(status == 1 && rng.chance(0.6)) {
        if rng.chance(0.085) {
            let due = minus_days(today, rng.range(1, 400));
            let l = minus_months(due, interval);
            if commissioned > l {
                commissioned = minus_days(l, rng.range(0, 365)).max(floor).min(l);
            }
            last = Some(l);
            next = Some(due);
        } else {
            let window = minus_months(today, interval);
            let w = (today - window).num_days().max(1);
            let l = plus_days(window, rng.range(1, w)).max(commissioned);
            last = Some(l);
            next = Some(plus_months(l, interval));
        }
    }
    let conclusion = if last.is_none() {
        0
    } else {
        let r = rng.f64();
        if r < 0.012 {
            if matches!(top, b'2' | b'8') && rng.chance(0.5) {
                4 // not_allowed
            } else {
                3 // fail
            }
        } else if r < 0.07 {
            2
        } else {
            1
        }
    };
    let brake = match code {
        // Arm-type drum brakes are a traction-machine design of older elevators.
        "3110" | "3120" | "3400" => {
            let p = if commissioned.year() < 2008 {
                0.11
            } else {
                0.02
            };
            if rng.chance(p) {
                3
            } else if rng.chance(0.6) {
                1
            } else {
                2
            }
        }
        "3300" => {
            if rng.chance(0.5) {
                1
            } else {
                2
            }
        }
        _ => 0,
    };
    let years = (today - commissioned).num_days() / 365;
    let mean = match (elevator, years >= 15) {
        (true, true) => 2.0,
        (true, false) => 0.9,
        (false, _) => 0.2,
    };
    let faults = (-(1.0 - rng.f64()).ln() * mean).floor().clamp(0.0, 40.0) as u8;
    let hazchem = match (top, place) {
        (b'8' | b'2', "hazchem") => true,
        _ => code == "8300" && place == "industrial" && rng.chance(0.25),
    };
    let loc = (
        rng.range(1, 40) as u16,
        rng.range(1, 6) as u8,
        rng.range(1, 4) as u8,
    );
    EquipmentSpec {
        id: Uuid::nil(),
        unit: 0,
        cat,
        status,
        commissioned,
        last,
        next,
        conclusion,
        brake,
        faults,
        hazchem,
        serial: 0,
        loc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_make_elevators_about_two_thirds() {
        let total: f64 = CATS.iter().map(|c| c.share).sum();
        let elevators: f64 = CATS
            .iter()
            .filter(|c| c.code.starts_with('3'))
            .map(|c| c.share)
            .sum();
        let r = elevators / total;
        assert!((0.6..0.7).contains(&r), "{r}");
        let places: f64 = PLACES.iter().map(|p| p.weight).sum();
        assert!((places - 100.0).abs() < 1e-9);
        for c in &CATS {
            for (p, _) in c.affinity {
                assert!(PLACES.iter().any(|x| x.code == *p), "{} names {p}", c.code);
            }
        }
    }

    #[test]
    fn registration_codes_are_digits() {
        assert_eq!(code_digits("4D00"), "4900");
        assert_eq!(code_digits("3110"), "3110");
    }
}
