//! A device's offline work: what an inspector records between syncs (check-in, checklist
//! results, hazards found, an edit of an older hazard, photos attached, the record
//! submitted), queued as push mutations with increasing `seq`.

use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use serde_json::json;
use uuid::Uuid;

use super::api::Api;
use super::device::{Device, Expect, Photo, Settings};
use super::jpeg;

const HAZARD_TEXTS: [&str; 8] = [
    "电梯层门防夹保护装置反应迟缓 / landing door anti-pinch slow",
    "安全阀校验标签过期 / safety valve test tag expired",
    "应急预案未演练 / emergency plan not drilled this year",
    "作业人员证书过期 / operator certificate expired",
    "轿厢紧急报警装置无应答 / car alarm not answered",
    "压力表表盘破损 / pressure gauge dial broken",
    "起重机限位器失灵 / crane limit switch faulty",
    "维保记录不完整 / maintenance log incomplete",
];

fn now_rfc3339(offset_secs: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(offset_secs)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Device {
    fn gps(&mut self) -> (f64, f64) {
        (
            self.rng.range_f64(30.1, 30.4),
            self.rng.range_f64(120.0, 120.4),
        )
    }

    fn hazard_text(&mut self, n: usize) -> String {
        let t = HAZARD_TEXTS[self.rng.index(HAZARD_TEXTS.len())];
        format!("[sim d{} #{n}] {t}", self.idx)
    }

    /// After the first sync: the demo hazards of this user the device will edit.
    pub fn choose_edit_targets(&mut self, n: usize) {
        let mut c: Vec<&String> = self
            .copy
            .own_hazards
            .iter()
            .filter(|(_, h)| {
                (h.state == "reported" || h.state == "fixed_on_site")
                    && h.reported_by == self.user_id
                    && !h.description.starts_with("[sim")
            })
            .map(|(id, _)| id)
            .collect();
        c.sort();
        self.edit_targets = c.into_iter().take(n).cloned().collect();
    }

    /// The first offline session: check-in, checklist results, hazards found (some on failed
    /// items), an edit of an older hazard, photos attached, the record submitted. `photos`
    /// evidence.attach mutations name the first photos.
    pub fn work_offline(&mut self, s: &Settings, photos: usize, api: &Api) {
        let target = s.mutations.max(4);
        let mut hazards: Vec<String> = Vec::new();
        let mut n_haz = 0usize;
        let work = self.work.clone();
        let assignment_ok = work.as_ref().is_some_and(|w| {
            self.copy
                .assignments
                .get(&w.assignment_id)
                .is_some_and(|a| !a.sealed && a.team.contains(&self.user_id))
        });
        if work.is_some() && !assignment_ok {
            api.stats
                .error("assignment given to the device is not in its copy after sync".into());
        }
        let edits = self.edit_targets.len().min(1);
        let attaches = photos;
        // start + submit + reports + edits + attaches; the rest are checklist results.
        let reports = 4usize;
        let fixed = 2 + reports + edits + attaches;
        let mut items_budget = target.saturating_sub(fixed);
        let mut inspection: Option<(String, String)> = None;

        if let (Some(w), true) = (&work, assignment_ok) {
            let insp = Uuid::now_v7().to_string();
            let (lat, lng) = self.gps();
            self.enqueue(
                "inspection.start",
                json!({"id": insp, "assignment_id": w.assignment_id, "started_at": now_rfc3339(-1800), "lat": lat, "lng": lng}),
                Expect::InspectionStart { id: insp.clone() },
            );
            // The unit checklist, then the equipment's, item by item.
            let mut items: Vec<(String, Option<String>, bool)> = Vec::new();
            let mut templates: Vec<_> = self.copy.templates.values().filter(|t| t.active).collect();
            templates.sort_by(|a, b| a.category.cmp(&b.category));
            for t in &templates {
                if t.category.is_none() {
                    items.extend(
                        t.items
                            .iter()
                            .filter(|i| !i.per_equipment)
                            .map(|i| (i.code.clone(), None, i.major)),
                    );
                }
            }
            if let Some((eq, cat)) = &w.equipment {
                let top = cat.get(..1).map(|c| format!("{c}000"));
                for t in &templates {
                    if t.category.is_some() && t.category == top {
                        items.extend(
                            t.items
                                .iter()
                                .filter(|i| i.per_equipment)
                                .map(|i| (i.code.clone(), Some(eq.clone()), i.major)),
                        );
                    }
                }
            }
            let mut failed_items = Vec::new();
            for (k, (code, eq, major)) in items.into_iter().enumerate() {
                if items_budget == 0 {
                    break;
                }
                items_budget -= 1;
                let fail = k == 1 || k == 4;
                let outcome = if fail {
                    "fail"
                } else if self.rng.chance(0.1) {
                    "na"
                } else {
                    "pass"
                };
                if fail {
                    failed_items.push((code.clone(), eq.clone(), major));
                }
                self.enqueue(
                    "inspection.record_item",
                    json!({"inspection_id": insp, "item_code": code, "equipment_id": eq, "outcome": outcome,
                           "note": if fail { "现场发现问题 / problem found on site" } else { "" }}),
                    Expect::Item { inspection_id: insp.clone(), item_code: code, equipment_id: eq },
                );
            }
            // Hazards found on the failed items.
            for (code, eq, _major) in failed_items.into_iter().take(2) {
                n_haz += 1;
                let id = Uuid::now_v7().to_string();
                let description = self.hazard_text(n_haz);
                self.enqueue(
                    "hazard.report",
                    json!({"id": id, "inspection_id": insp, "unit_id": w.unit_id, "equipment_id": eq,
                           "item_code": code, "description": description, "level": "general", "fixed_on_site": false}),
                    Expect::Hazard { id: id.clone(), description },
                );
                hazards.push(id);
            }
            inspection = Some((insp, w.unit_id.clone()));
        }
        // Hazards seen elsewhere in the district on the way.
        let extra = items_budget;
        while n_haz < reports + extra {
            let Some(unit) = self
                .copy
                .unit_at(self.rng.index(1 << 16))
                .map(str::to_string)
            else {
                break;
            };
            n_haz += 1;
            let id = Uuid::now_v7().to_string();
            let description = self.hazard_text(n_haz);
            let minor = self.rng.chance(0.3);
            let fixed_on_site = minor && self.rng.chance(0.5);
            self.enqueue(
                "hazard.report",
                json!({"id": id, "unit_id": unit, "description": description,
                       "level": if minor { "minor" } else { "general" }, "fixed_on_site": fixed_on_site}),
                Expect::Hazard { id: id.clone(), description },
            );
            hazards.push(id);
        }
        // An older hazard of this user, edited against the version the device holds.
        for id in self.edit_targets.clone().into_iter().take(edits) {
            if let Some(v) = self.copy.version_of("hazards", &id) {
                let description = format!(
                    "{} (补充说明 / more detail, phone {})",
                    self.hazard_text(0),
                    self.idx
                );
                self.enqueue(
                    "hazard.update",
                    json!({"id": id, "base_version": v, "fields": {"description": description}}),
                    Expect::HazardEdit {
                        id: id.clone(),
                        description: None,
                    },
                );
            }
        }
        // Photos of the hazards found.
        for p in 0..attaches.min(self.photos.len()) {
            let Some(h) = hazards.get(p % hazards.len().max(1)).cloned() else {
                break;
            };
            self.attach(p, &h, inspection.as_ref().map(|i| i.0.clone()));
        }
        if let Some((insp, _)) = inspection {
            let signed = self.rng.chance(0.8);
            self.enqueue(
                "inspection.submit",
                json!({"id": insp, "finished_at": now_rfc3339(-60),
                       "signatory_name": if signed { Some("王经理") } else { None }, "refused_to_sign": !signed}),
                Expect::Submit { id: insp },
            );
        }
    }

    fn attach(&mut self, photo: usize, hazard_id: &str, inspection_id: Option<String>) {
        let id = Uuid::now_v7().to_string();
        let (lat, lon) = self.gps();
        let sha = self.photos[photo].sha256.clone();
        self.enqueue(
            "evidence.attach",
            json!({"id": id, "sha256": sha, "hazard_id": hazard_id, "kind": "finding", "inspection_id": inspection_id,
                   "device_time": now_rfc3339(-900), "gps": {"lat": lat, "lon": lon}}),
            Expect::Evidence { id, photo },
        );
    }

    /// The second offline session (full profile): edits of the hazards reported earlier,
    /// against the versions the server acknowledged, and one more hazard with a photo whose
    /// bytes go up only after the push (its evidence row waits `pending`).
    pub fn work_offline_again(&mut self, photo: Option<usize>) {
        let reported: Vec<(String, u64)> = self
            .acked
            .iter()
            .filter_map(|a| match (&a.expect, a.status.as_str(), a.version) {
                (Expect::Hazard { id, .. }, "applied", Some(v)) => Some((id.clone(), v)),
                _ => None,
            })
            .take(2)
            .collect();
        for (id, v) in reported {
            let base = self.copy.version_of("hazards", &id).unwrap_or(v);
            let description = format!("{} (复查补充 / updated on re-check)", self.hazard_text(90));
            self.enqueue(
                "hazard.update",
                json!({"id": id, "base_version": base, "fields": {"description": description}}),
                Expect::HazardEdit {
                    id: id.clone(),
                    description: Some(description),
                },
            );
        }
        if let Some(unit) = self
            .copy
            .unit_at(self.rng.index(1 << 16))
            .map(str::to_string)
        {
            let id = Uuid::now_v7().to_string();
            let description = self.hazard_text(99);
            self.enqueue(
                "hazard.report",
                json!({"id": id, "unit_id": unit, "description": description, "level": "general", "fixed_on_site": false}),
                Expect::Hazard { id: id.clone(), description },
            );
            if let Some(p) = photo.filter(|p| *p < self.photos.len()) {
                self.attach(p, &id, None);
            }
        }
    }

    /// Takes `n` photos: copies of the base JPEGs with a comment of their own.
    pub fn take_photos(&mut self, bases: &[Vec<u8>], n: usize) {
        if bases.is_empty() {
            return;
        }
        for k in 0..n {
            let base = &bases[self.rng.index(bases.len())];
            let bytes = jpeg::variant(
                base,
                &format!("xuncha-sim {} photo {k} {}", self.device_id, Uuid::now_v7()),
            );
            let sha256 = jpeg::sha256_hex(&bytes);
            self.photos.push(Photo {
                name: format!("IMG_{:05}_{k}.jpg", self.idx),
                bytes: Some(Arc::new(bytes)),
                sha256,
                uploaded: false,
            });
        }
    }
}
