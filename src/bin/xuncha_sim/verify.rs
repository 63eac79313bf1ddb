//! The final check of a device: pulled up to the head, its copy's checksum per table against
//! `GET /api/v1/sync/checksum`, and every acknowledged mutation's effect found in the copy
//! (applied hazard reports read back from the server too).

use serde::Deserialize;
use serde_json::Value;

use super::api::Api;
use super::copy::TableSum;
use super::device::{DevErr, Device, Expect, Faults, Settings};
use super::stats::Ep;

#[derive(Deserialize)]
struct ChecksumBody {
    #[serde(default)]
    stale: bool,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    tables: std::collections::BTreeMap<String, TableChecksum>,
}

#[derive(Deserialize)]
struct TableChecksum {
    count: u64,
    checksum: String,
}

/// What the final check of one device found.
#[derive(Debug, Default)]
pub struct Verdict {
    pub checksum_ok: bool,
    pub mismatches: Vec<String>,
    /// Acknowledged mutations whose effect was checked, and those found missing.
    pub acked_checked: u64,
    pub lost: Vec<String>,
}

impl Device {
    /// The final check: caught up, the copy's checksum per table against the server's, and
    /// every acknowledged mutation's effect in the copy (and applied hazard reports on the
    /// server itself).
    pub async fn verify(&mut self, api: &Api, s: &Settings) -> Result<Verdict, DevErr> {
        let mut v = Verdict::default();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.pull(api, s, true).await?;
            let cursor = self.cursor.clone().unwrap_or_default();
            let url = format!("{}/api/v1/sync/checksum?cursor={cursor}", api.base);
            let r = self
                .call(api, s, Ep::Checksum, Faults::None, |c, tok| {
                    c.get(&url).bearer_auth(tok).header("x-sync-protocol", "1")
                })
                .await?;
            if r.status != 200 {
                return Err(self.unexpected(api, Ep::Checksum, &r));
            }
            let body: ChecksumBody = r
                .json()
                .map_err(|e| DevErr(format!("device {}: checksum answer: {e}", self.idx)))?;
            if body.stale {
                api.stats.event("checksum answered stale: pulled again");
                if attempt < 4 {
                    continue;
                }
                v.mismatches.push(format!(
                    "device {}: checksum still stale after {attempt} pulls ({})",
                    self.idx,
                    body.reason.unwrap_or_default()
                ));
                break;
            }
            let mine = self.copy.checksums();
            for (table, TableSum { count, checksum }) in &mine {
                match body.tables.get(*table) {
                    Some(t) if t.count == *count && t.checksum == *checksum => {}
                    Some(t) => v.mismatches.push(format!(
                        "device {} ({}): {table}: copy {count} rows {checksum}, server {} rows {}",
                        self.idx, self.username, t.count, t.checksum
                    )),
                    None => v.mismatches.push(format!(
                        "device {}: the server's checksum lacks {table}",
                        self.idx
                    )),
                }
            }
            for t in body.tables.keys() {
                if !mine.iter().any(|(n, _)| n == t) {
                    v.mismatches.push(format!(
                        "device {}: the server checks a table the device does not know: {t}",
                        self.idx
                    ));
                }
            }
            v.checksum_ok = v.mismatches.is_empty();
            break;
        }
        if self.queue.is_empty() && self.last_mutation_seq != self.last_seq() {
            v.lost.push(format!(
                "device {}: last_mutation_seq {} after the final pull, {} acknowledged",
                self.idx,
                self.last_mutation_seq,
                self.last_seq()
            ));
        }
        self.check_acked(&mut v);
        // Applied hazard reports, read back from the server.
        let mut expected: Vec<(String, String)> = Vec::new();
        for a in &self.acked {
            if let (Expect::Hazard { id, description }, "applied") = (&a.expect, a.status.as_str())
            {
                expected.push((id.clone(), self.final_description(id, description)));
            }
        }
        for (id, description) in expected {
            let url = format!("{}/api/v1/hazards/{id}", api.base);
            let r = self
                .call(api, s, Ep::HazardGet, Faults::None, |c, tok| {
                    c.get(&url).bearer_auth(tok)
                })
                .await?;
            v.acked_checked += 1;
            if r.status != 200 {
                v.lost.push(format!(
                    "device {}: acknowledged hazard {id}: GET answered {}",
                    self.idx, r.status
                ));
                continue;
            }
            let got: Value = r.json().map_err(DevErr)?;
            if got["description"].as_str() != Some(description.as_str()) {
                v.lost.push(format!(
                    "device {}: hazard {id} on the server reads {:?}, expected {description:?}",
                    self.idx, got["description"]
                ));
            }
        }
        Ok(v)
    }

    /// The description an applied report should show now: the last applied edit of it by this
    /// device, or as reported.
    fn final_description(&self, id: &str, reported: &str) -> String {
        self.acked
            .iter()
            .rev()
            .find_map(|a| match (&a.expect, a.status.as_str()) {
                (
                    Expect::HazardEdit {
                        id: e,
                        description: Some(d),
                    },
                    "applied" | "merged" | "conflict",
                ) if e == id => Some(d.clone()),
                _ => None,
            })
            .unwrap_or_else(|| reported.to_string())
    }

    fn check_acked(&self, v: &mut Verdict) {
        let mut seqs: Vec<u64> = self.acked.iter().map(|a| a.seq).collect();
        seqs.sort_unstable();
        let contiguous = seqs.iter().enumerate().all(|(i, s)| *s == i as u64 + 1);
        if !contiguous {
            v.lost.push(format!(
                "device {}: acknowledged seqs are not 1..n: {seqs:?}",
                self.idx
            ));
        }
        let c = &self.copy;
        for a in &self.acked {
            if a.status == "rejected" {
                continue;
            }
            v.acked_checked += 1;
            let missing = match &a.expect {
                Expect::Hazard { id, description } => match c.own_hazards.get(id) {
                    None => Some(format!("hazard {id} not in the copy")),
                    Some(h) if h.description != self.final_description(id, description) => {
                        Some(format!("hazard {id} reads {:?} in the copy", h.description))
                    }
                    Some(_) => None,
                },
                Expect::HazardEdit { id, .. } => match (c.version_of("hazards", id), a.version) {
                    (None, _) => Some(format!("edited hazard {id} not in the copy")),
                    (Some(have), Some(acked)) if have < acked => Some(format!(
                        "hazard {id} at version {have} in the copy, edit acknowledged at {acked}"
                    )),
                    _ => None,
                },
                Expect::InspectionStart { id } => (!c.own_inspections.contains_key(id))
                    .then(|| format!("inspection {id} not in the copy")),
                Expect::Item {
                    inspection_id,
                    item_code,
                    equipment_id,
                } => match c.own_inspections.get(inspection_id) {
                    None => Some(format!("inspection {inspection_id} not in the copy")),
                    Some(i) => (!i
                        .results
                        .iter()
                        .any(|(code, eq)| code == item_code && eq == equipment_id))
                    .then(|| format!("result {item_code} of inspection {inspection_id} missing")),
                },
                Expect::Submit { id } => match c.own_inspections.get(id) {
                    Some(i) if i.status == "submitted" => self.work.as_ref().and_then(|w| match c
                        .assignments
                        .get(&w.assignment_id)
                    {
                        None => Some(format!("assignment {} not in the copy", w.assignment_id)),
                        Some(a) if a.unit_id.as_deref() != Some(w.unit_id.as_str()) => {
                            Some(format!("assignment {} names another unit", w.assignment_id))
                        }
                        Some(a) if a.status.as_deref() != Some("submitted") => Some(format!(
                            "assignment {} is {:?} after its only record was submitted",
                            w.assignment_id, a.status
                        )),
                        Some(_) => None,
                    }),
                    Some(i) => Some(format!(
                        "inspection {id} is {} after an acknowledged submit",
                        i.status
                    )),
                    None => Some(format!("submitted inspection {id} not in the copy")),
                },
                Expect::Evidence { id, photo } => {
                    let uploaded = self.photos.get(*photo).is_some_and(|p| p.uploaded);
                    match c.own_evidence.get(id) {
                        None => Some(format!("evidence {id} not in the copy")),
                        Some(st) if uploaded && st != "complete" => Some(format!(
                            "evidence {id} is {st} though its photo was uploaded"
                        )),
                        Some(_) => None,
                    }
                }
            };
            if let Some(m) = missing {
                v.lost.push(format!(
                    "device {} seq {} {} ({}): {m}",
                    self.idx, a.seq, a.name, a.status
                ));
            }
        }
    }
}
