//! The draw of an unannounced-check plan: a pure function of the plan's secret seed and a
//! snapshot of the pool, written down here precisely enough to be re-implemented by anyone
//! who wants to check a draw (the verification endpoint hands out both inputs).
//!
//! # Algorithm `xuncha-draw-v1`
//!
//! **Random stream.** `stream(label)` yields 64-bit words: block `i` (i = 0, 1, …) is
//! `SHA-256(seed ‖ label ‖ u64_be(i))`, read as four big-endian `u64`s in order. `seed` is the
//! 32 secret bytes, `label` the ASCII text `units` or `checklist`. `below(n)` (n ≥ 1) takes
//! words `x` until `x < ⌊(2⁶⁴ − 1) / n⌋ · n` and returns `x mod n` (no modulo bias; every call
//! takes one word at least, even `below(1)`).
//!
//! **Units** (stream `units`). Candidates are kept in ascending unit id order, each with an
//! integer weight (its risk score + 1, so a unit without flags can still be drawn) and whether
//! it is a key unit. Inspectors are kept in ascending user id order, each with its current
//! load (open assignments overlapping the window) and the units it must recuse from.
//! `quota` = ⌈target × min_key_share / 100⌉ (0 without a share). Until `target` units are
//! accepted or no candidate remains:
//! 1. the eligible candidates are the remaining key units while fewer than `quota` key units
//!    are accepted and a key unit remains, else all remaining ones;
//! 2. `r = below(Σ weights)`; the pick is the first eligible candidate (in id order) whose
//!    running weight sum exceeds `r`; it leaves the pool;
//! 3. its team: the inspectors not recusing from it; if fewer than `team_size`, the unit is
//!    skipped (counted, not shown). Otherwise, `team_size` times: among those not yet on the
//!    team, the ones with the least load (in id order), one by `below(count)`; its load grows
//!    by one. The team is listed in ascending id order; the unit is accepted.
//!
//! **Checklist** (stream `checklist`). For each accepted unit in acceptance order, for each
//! equipment category it holds (ascending code), one piece of that category by `below(count)`
//! among its pieces in ascending id order. The list is in ascending id order.
//!
//! **Snapshot** (what `pool_hash` = SHA-256 hex covers), UTF-8 lines ending in `\n`:
//! ```text
//! xuncha-draw-v1
//! params <target_count> <team_size> <min_key_share or ->
//! unit <id> <weight> <0|1>                      (ascending id)
//! inspector <id> <load> <recused unit ids, comma-separated, or ->   (ascending id)
//! equipment <unit id> <category> <equipment id> (ascending unit, category, id; only the
//!                                                pieces of accepted units)
//! ```

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "xuncha-draw-v1";

/// Most lines a snapshot may hold (a country's registry is far below this).
const MAX_LINES: usize = 5_000_000;

/// The 64-bit word stream of a label (see the module docs).
pub struct Stream<'a> {
    seed: &'a [u8],
    label: &'static [u8],
    block: u64,
    words: [u64; 4],
    next: usize,
}

impl<'a> Stream<'a> {
    pub fn new(seed: &'a [u8], label: &'static [u8]) -> Stream<'a> {
        Stream {
            seed,
            label,
            block: 0,
            words: [0; 4],
            next: 4,
        }
    }

    fn word(&mut self) -> u64 {
        if self.next == 4 {
            let mut h = Sha256::new();
            h.update(self.seed);
            h.update(self.label);
            h.update(self.block.to_be_bytes());
            let d = h.finalize();
            for (i, w) in self.words.iter_mut().enumerate() {
                let mut b = [0u8; 8];
                b.copy_from_slice(&d[i * 8..i * 8 + 8]);
                *w = u64::from_be_bytes(b);
            }
            self.block += 1;
            self.next = 0;
        }
        let w = self.words[self.next];
        self.next += 1;
        w
    }

    /// Uniform in `0..n` (n ≥ 1; 0 is treated as 1).
    pub fn below(&mut self, n: u64) -> u64 {
        let n = n.max(1);
        let zone = (u64::MAX / n) * n;
        loop {
            let x = self.word();
            if x < zone {
                return x % n;
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub unit_id: String,
    pub weight: u64,
    pub key: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspector {
    pub user_id: String,
    pub load: u32,
    pub recused: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub target_count: u32,
    pub team_size: u32,
    pub min_key_share: Option<u32>,
}

/// A unit drawn, with its team (before the checklist is drawn).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub unit_id: String,
    pub team: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picks {
    pub picks: Vec<Pick>,
    /// Units drawn that no team could be formed for (not named anywhere).
    pub skipped: u32,
}

/// Steps 1–3: units and teams. `candidates` and `inspectors` must be in ascending id order.
pub fn draw_units(
    seed: &[u8],
    params: Params,
    candidates: &[Candidate],
    inspectors: &[Inspector],
) -> Picks {
    let mut rng = Stream::new(seed, b"units");
    let target = params.target_count as usize;
    let team_size = params.team_size as usize;
    let quota = params
        .min_key_share
        .map_or(0, |s| (target * s as usize).div_ceil(100));
    let mut remaining: Vec<&Candidate> = candidates.iter().collect();
    let mut loads: Vec<u32> = inspectors.iter().map(|i| i.load).collect();
    let mut picks = Vec::new();
    let mut skipped = 0;
    let mut keys_accepted = 0;
    while picks.len() < target && !remaining.is_empty() {
        let keys_only = keys_accepted < quota && remaining.iter().any(|c| c.key);
        let eligible = |c: &Candidate| !keys_only || c.key;
        let total: u64 = remaining
            .iter()
            .filter(|c| eligible(c))
            .map(|c| c.weight.max(1))
            .sum();
        let r = rng.below(total);
        let mut run = 0u64;
        let mut at = 0;
        for (i, c) in remaining.iter().enumerate() {
            if !eligible(c) {
                continue;
            }
            run += c.weight.max(1);
            if run > r {
                at = i;
                break;
            }
        }
        let unit = remaining.remove(at);
        let free: Vec<usize> = (0..inspectors.len())
            .filter(|&i| !inspectors[i].recused.contains(&unit.unit_id))
            .collect();
        if free.len() < team_size.max(1) {
            skipped += 1;
            continue;
        }
        let mut team: Vec<usize> = Vec::with_capacity(team_size);
        for _ in 0..team_size {
            let open: Vec<usize> = free.iter().copied().filter(|i| !team.contains(i)).collect();
            let least = open.iter().map(|&i| loads[i]).min().unwrap_or(0);
            let lightest: Vec<usize> = open.into_iter().filter(|&i| loads[i] == least).collect();
            let chosen = lightest[rng.below(lightest.len() as u64) as usize];
            loads[chosen] += 1;
            team.push(chosen);
        }
        let mut team: Vec<String> = team
            .into_iter()
            .map(|i| inspectors[i].user_id.clone())
            .collect();
        team.sort();
        if unit.key {
            keys_accepted += 1;
        }
        picks.push(Pick {
            unit_id: unit.unit_id.clone(),
            team,
        });
    }
    Picks { picks, skipped }
}

/// The checklist step: `equipment` maps a unit id to its (category, id) pairs.
pub fn draw_checklists(
    seed: &[u8],
    picks: &[Pick],
    equipment: &BTreeMap<String, Vec<(String, String)>>,
) -> Vec<Vec<String>> {
    let mut rng = Stream::new(seed, b"checklist");
    picks
        .iter()
        .map(|p| {
            let mut by_cat: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for (cat, id) in equipment.get(&p.unit_id).into_iter().flatten() {
                by_cat.entry(cat).or_default().push(id);
            }
            let mut chosen: Vec<String> = by_cat
                .into_values()
                .map(|mut ids| {
                    ids.sort_unstable();
                    ids[rng.below(ids.len() as u64) as usize].to_string()
                })
                .collect();
            chosen.sort();
            chosen
        })
        .collect()
}

/// A whole draw's inputs, as the snapshot text holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub params: Params,
    pub candidates: Vec<Candidate>,
    pub inspectors: Vec<Inspector>,
    /// unit id → (category, equipment id), for the accepted units.
    pub equipment: BTreeMap<String, Vec<(String, String)>>,
}

/// One drawn target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub unit_id: String,
    pub equipment_ids: Vec<String>,
    pub team: Vec<String>,
}

impl Snapshot {
    /// The canonical text (see the module docs). Sorts its own lists first.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(64 * (self.candidates.len() + 16));
        out.push_str(ALGORITHM);
        out.push('\n');
        let share = self
            .params
            .min_key_share
            .map_or("-".to_string(), |s| s.to_string());
        out.push_str(&format!(
            "params {} {} {share}\n",
            self.params.target_count, self.params.team_size
        ));
        let mut cands: Vec<&Candidate> = self.candidates.iter().collect();
        cands.sort_by(|a, b| a.unit_id.cmp(&b.unit_id));
        for c in cands {
            out.push_str(&format!(
                "unit {} {} {}\n",
                c.unit_id,
                c.weight,
                u8::from(c.key)
            ));
        }
        let mut insp: Vec<&Inspector> = self.inspectors.iter().collect();
        insp.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        for i in insp {
            let rec = if i.recused.is_empty() {
                "-".to_string()
            } else {
                i.recused.iter().cloned().collect::<Vec<_>>().join(",")
            };
            out.push_str(&format!("inspector {} {} {rec}\n", i.user_id, i.load));
        }
        for (unit, pieces) in &self.equipment {
            let mut pieces = pieces.clone();
            pieces.sort();
            for (cat, id) in pieces {
                out.push_str(&format!("equipment {unit} {cat} {id}\n"));
            }
        }
        out
    }

    /// Parses the canonical text back (for verification).
    pub fn parse(text: &str) -> Result<Snapshot, String> {
        let mut lines = text.lines();
        if lines.next() != Some(ALGORITHM) {
            return Err(format!("the snapshot is not of algorithm {ALGORITHM}"));
        }
        let mut snap = Snapshot {
            params: Params {
                target_count: 0,
                team_size: 0,
                min_key_share: None,
            },
            candidates: Vec::new(),
            inspectors: Vec::new(),
            equipment: BTreeMap::new(),
        };
        for (n, line) in lines.enumerate() {
            if n > MAX_LINES {
                return Err("the snapshot is too long".into());
            }
            let bad = || format!("snapshot line {}: `{line}`", n + 2);
            let f: Vec<&str> = line.split(' ').collect();
            let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
            match f.as_slice() {
                ["params", t, s, k] => {
                    snap.params = Params {
                        target_count: num(t)? as u32,
                        team_size: num(s)? as u32,
                        min_key_share: if *k == "-" {
                            None
                        } else {
                            Some(num(k)? as u32)
                        },
                    }
                }
                ["unit", id, w, k] => snap.candidates.push(Candidate {
                    unit_id: id.to_string(),
                    weight: num(w)?,
                    key: *k == "1",
                }),
                ["inspector", id, load, rec] => snap.inspectors.push(Inspector {
                    user_id: id.to_string(),
                    load: num(load)? as u32,
                    recused: if *rec == "-" {
                        BTreeSet::new()
                    } else {
                        rec.split(',').map(String::from).collect()
                    },
                }),
                ["equipment", unit, cat, id] => snap
                    .equipment
                    .entry(unit.to_string())
                    .or_default()
                    .push((cat.to_string(), id.to_string())),
                _ => return Err(bad()),
            }
        }
        Ok(snap)
    }

    /// Runs the whole algorithm on this snapshot.
    pub fn draw(&self, seed: &[u8]) -> (Vec<Target>, u32) {
        let picks = draw_units(seed, self.params, &self.candidates, &self.inspectors);
        let lists = draw_checklists(seed, &picks.picks, &self.equipment);
        let targets = picks
            .picks
            .into_iter()
            .zip(lists)
            .map(|(p, equipment_ids)| Target {
                unit_id: p.unit_id,
                equipment_ids,
                team: p.team,
            })
            .collect();
        (targets, picks.skipped)
    }
}

/// SHA-256 hex of bytes.
pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// The canonical text of a draw's outcome (what is stored and compared on verification).
pub fn result_text(targets: &[Target], skipped: u32) -> String {
    let mut out = format!("skipped {skipped}\n");
    for t in targets {
        out.push_str(&format!(
            "target {} {} {}\n",
            t.unit_id,
            if t.equipment_ids.is_empty() {
                "-".to_string()
            } else {
                t.equipment_ids.join(",")
            },
            t.team.join(",")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(id: &str, weight: u64, key: bool) -> Candidate {
        Candidate {
            unit_id: id.into(),
            weight,
            key,
        }
    }

    fn insp(id: &str, recused: &[&str]) -> Inspector {
        Inspector {
            user_id: id.into(),
            load: 0,
            recused: recused.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn params(target: u32, team: u32, share: Option<u32>) -> Params {
        Params {
            target_count: target,
            team_size: team,
            min_key_share: share,
        }
    }

    #[test]
    fn the_stream_is_the_documented_hash_chain() {
        let seed = [7u8; 32];
        let mut s = Stream::new(&seed, b"units");
        let mut h = Sha256::new();
        h.update(seed);
        h.update(b"units");
        h.update(0u64.to_be_bytes());
        let d = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&d[..8]);
        assert_eq!(s.word(), u64::from_be_bytes(first));
        for _ in 0..1000 {
            assert!(s.below(7) < 7);
        }
    }

    #[test]
    fn same_inputs_same_draw_and_another_seed_another_draw() {
        let cands: Vec<Candidate> = (0..200)
            .map(|i| cand(&format!("u{i:03}"), i % 7, i % 5 == 0))
            .collect();
        let insps: Vec<Inspector> = (0..10).map(|i| insp(&format!("i{i}"), &[])).collect();
        let a = draw_units(&[1; 32], params(20, 2, Some(50)), &cands, &insps);
        let b = draw_units(&[1; 32], params(20, 2, Some(50)), &cands, &insps);
        let c = draw_units(&[2; 32], params(20, 2, Some(50)), &cands, &insps);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.picks.len(), 20);
        let distinct: BTreeSet<&str> = a.picks.iter().map(|p| p.unit_id.as_str()).collect();
        assert_eq!(distinct.len(), 20, "sampling is without replacement");
        // At least half key units (quota 10).
        let keys = a
            .picks
            .iter()
            .filter(|p| cands.iter().any(|c| c.unit_id == p.unit_id && c.key))
            .count();
        assert!(keys >= 10, "{keys} key units");
        // Load is balanced: 40 slots over 10 inspectors, 4 each.
        let mut load: BTreeMap<&str, u32> = BTreeMap::new();
        for p in &a.picks {
            assert_eq!(p.team.len(), 2);
            assert_ne!(p.team[0], p.team[1]);
            for m in &p.team {
                *load.entry(m).or_default() += 1;
            }
        }
        assert!(load.values().all(|&n| n == 4), "{load:?}");
    }

    #[test]
    fn recused_inspectors_never_sit_on_the_team_and_teamless_units_are_skipped() {
        let cands = vec![
            cand("a", 1, false),
            cand("b", 1, false),
            cand("c", 1, false),
        ];
        // Nobody else can check "a" (only i3 is free of it): "a" is skipped.
        let insps = vec![insp("i1", &["a", "b"]), insp("i2", &["a"]), insp("i3", &[])];
        for s in 0..50u8 {
            let out = draw_units(&[s; 32], params(3, 2, None), &cands, &insps);
            assert_eq!(out.skipped, 1);
            assert_eq!(out.picks.len(), 2);
            for p in &out.picks {
                assert_ne!(p.unit_id, "a");
                if p.unit_id == "b" {
                    assert_eq!(p.team, vec!["i2".to_string(), "i3".to_string()]);
                }
            }
        }
    }

    /// Selection frequencies follow the weights: the first unit drawn, over many seeds, from a
    /// pool weighted 1:2:3:4:10, compared by a chi-square test (4 degrees of freedom; 18.47 is
    /// the 0.1% critical value). Seeds are fixed, so the test is stable.
    #[test]
    fn first_picks_follow_the_weights() {
        let weights = [1u64, 2, 3, 4, 10];
        let cands: Vec<Candidate> = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| cand(&format!("u{i}"), w, false))
            .collect();
        let insps = vec![insp("i1", &[]), insp("i2", &[])];
        let n = 20_000u32;
        let mut seen = [0u32; 5];
        for s in 0..n {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&s.to_be_bytes());
            let out = draw_units(&seed, params(1, 2, None), &cands, &insps);
            let i: usize = out.picks[0].unit_id[1..].parse().unwrap();
            seen[i] += 1;
        }
        let total: u64 = weights.iter().sum();
        let chi2: f64 = weights
            .iter()
            .zip(seen)
            .map(|(&w, o)| {
                let e = n as f64 * w as f64 / total as f64;
                (o as f64 - e).powi(2) / e
            })
            .sum();
        assert!(chi2 < 18.47, "chi-square {chi2:.2}, counts {seen:?}");
    }

    /// Without replacement: with 2 of 3 drawn, the inclusion of each unit matches the exact
    /// probabilities of successive weighted draws (weights 1, 1, 2: the heavy one is in
    /// 1 - P(not drawn) = 1 - (1/4·1/3 + 1/4·1/3)… computed exactly below).
    #[test]
    fn inclusion_frequencies_without_replacement_match_exact_probabilities() {
        let w = [1.0f64, 1.0, 2.0];
        let cands: Vec<Candidate> = w
            .iter()
            .enumerate()
            .map(|(i, &x)| cand(&format!("u{i}"), x as u64, false))
            .collect();
        let insps = vec![insp("i1", &[]), insp("i2", &[])];
        // P(i included) = P(first = i) + Σ_{j≠i} P(first = j)·w_i/(W - w_j).
        let total: f64 = w.iter().sum();
        let exact: Vec<f64> = (0..3)
            .map(|i| {
                w[i] / total
                    + (0..3)
                        .filter(|&j| j != i)
                        .map(|j| w[j] / total * w[i] / (total - w[j]))
                        .sum::<f64>()
            })
            .collect();
        let n = 20_000u32;
        let mut seen = [0u32; 3];
        for s in 0..n {
            let mut seed = [9u8; 32];
            seed[..4].copy_from_slice(&s.to_be_bytes());
            for p in draw_units(&seed, params(2, 2, None), &cands, &insps).picks {
                seen[p.unit_id[1..].parse::<usize>().unwrap()] += 1;
            }
        }
        for i in 0..3 {
            let f = seen[i] as f64 / n as f64;
            assert!(
                (f - exact[i]).abs() < 0.015,
                "unit {i}: {f} vs {}",
                exact[i]
            );
        }
    }

    #[test]
    fn every_category_a_unit_holds_is_on_its_checklist() {
        let picks = vec![Pick {
            unit_id: "a".into(),
            team: vec![],
        }];
        let mut eq = BTreeMap::new();
        eq.insert(
            "a".to_string(),
            vec![
                ("3110".to_string(), "e1".to_string()),
                ("3110".to_string(), "e2".to_string()),
                ("2100".to_string(), "e3".to_string()),
            ],
        );
        let lists = draw_checklists(&[3; 32], &picks, &eq);
        assert_eq!(lists[0].len(), 2);
        assert!(lists[0].contains(&"e3".to_string()));
        assert!(lists[0].iter().any(|e| e == "e1" || e == "e2"));
    }

    #[test]
    fn snapshot_text_round_trips() {
        let mut eq = BTreeMap::new();
        eq.insert("b".to_string(), vec![("3110".into(), "e1".into())]);
        let snap = Snapshot {
            params: params(2, 2, Some(50)),
            candidates: vec![cand("a", 3, true), cand("b", 1, false)],
            inspectors: vec![insp("i1", &["a", "b"]), insp("i2", &[])],
            equipment: eq,
        };
        let text = snap.to_text();
        assert_eq!(Snapshot::parse(&text).unwrap(), snap);
        assert!(Snapshot::parse("nonsense").is_err());
        assert!(Snapshot::parse(&format!("{ALGORITHM}\nunit a x 1\n")).is_err());
    }
}
