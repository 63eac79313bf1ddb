//! The hazard lifecycle (contract table in DESIGN.md): classify, plan, submit_rectification,
//! verify, close, reopen. Each action is one function on a sync transaction, called by the
//! REST endpoint `POST /api/v1/hazards/{id}/<action>` and by the push mutation
//! `hazard.<action>` alike; the state machine, the roles and the separation of duties are
//! checked here, once. Every transition writes an audit entry with the hazard before and
//! after.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::queries::{self, HazardRow};
use super::types::{Commitments, Hazard};
use crate::audit;
use crate::auth::extractor::AuthUser;
use crate::auth::region::Role;
use crate::db::SyncTx;
use crate::error::{ApiError, ApiResult};
use crate::registry::facts;
use crate::registry::risk::RiskRules;
use crate::validate;

/// The actions, by name as in `hazard.<name>` and the REST path.
pub const ACTIONS: [&str; 6] = [
    "classify",
    "plan",
    "submit_rectification",
    "verify",
    "close",
    "reopen",
];

/// The actions allowed from a state.
pub fn allowed(state: &str) -> &'static [&'static str] {
    match state {
        "reported" => &["classify"],
        "fixed_on_site" => &["verify"],
        "classified" => &["plan"],
        "rectifying" => &["submit_rectification"],
        "rectification_submitted" => &["verify"],
        "verified" => &["close"],
        "closed" => &["reopen"],
        _ => &[],
    }
}

/// Open hazards: not yet closed, and not a minor one waiting only for its re-check.
pub const OPEN_STATES: [&str; 4] = [
    "reported",
    "classified",
    "rectifying",
    "rectification_submitted",
];

const MAX_EVIDENCE: usize = 50;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Classify {
    level: String,
    deadline: DateTime<Utc>,
    #[serde(default)]
    notice_no: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Plan {
    commitments: Commitments,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitRectification {
    note: String,
    evidence_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Verify {
    outcome: String,
    #[serde(default)]
    evidence_ids: Vec<String>,
    #[serde(default)]
    note: Option<String>,
    /// A failed re-check of a hazard fixed on the spot: the deadline for its rectification.
    #[serde(default)]
    deadline: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Close {
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Reopen {
    reason: String,
    /// The new rectification deadline; required when the old one has passed.
    #[serde(default)]
    deadline: Option<DateTime<Utc>>,
}

fn parse<T: serde::de::DeserializeOwned>(args: &Value) -> ApiResult<T> {
    crate::http::json::parse(args.to_string().as_bytes())
}

fn invalid_transition(action: &str, h: &HazardRow) -> ApiError {
    let allowed = allowed(&h.state);
    let mut extra = Map::new();
    extra.insert("allowed".into(), json!(allowed));
    ApiError::Conflict {
        code: "invalid_transition",
        message: format!(
            "a hazard in state {} cannot be {action}; allowed: {}",
            h.state,
            if allowed.is_empty() {
                "nothing".to_string()
            } else {
                allowed.join(", ")
            }
        ),
        extra,
    }
}

fn role_in(me: &AuthUser, roles: &[Role], action: &str) -> ApiResult<()> {
    if roles.contains(&me.role) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "a {} may not {action} a hazard",
            me.role
        )))
    }
}

/// Evidence rows named for an action: distinct, of this hazard, of `kind`, and (when `by`
/// is given) uploaded by that user.
fn check_evidence(
    tx: &mut SyncTx<'_>,
    h: &HazardRow,
    ids: &[String],
    kind: &str,
    by: Option<&str>,
) -> ApiResult<()> {
    if ids.is_empty() {
        return Err(ApiError::invalid(
            "evidence_ids",
            format!("name at least one {kind} photo"),
        ));
    }
    if ids.len() > MAX_EVIDENCE {
        return Err(ApiError::invalid(
            "evidence_ids",
            format!("at most {MAX_EVIDENCE}"),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for id in ids {
        let id = validate::uuid("evidence_ids", id)?;
        if !seen.insert(id.clone()) {
            return Err(ApiError::invalid("evidence_ids", "names a photo twice"));
        }
        let e = crate::evidence::service::find(tx.conn(), &id)?;
        let Some(e) = e.filter(|e| e.hazard_id == h.id) else {
            return Err(ApiError::invalid(
                "evidence_ids",
                format!("{id} is not evidence of this hazard"),
            ));
        };
        if e.kind != kind {
            return Err(ApiError::invalid(
                "evidence_ids",
                format!("{id} is {} evidence, not {kind}", e.kind),
            ));
        }
        if let Some(by) = by
            && e.uploaded_by != by
        {
            return Err(ApiError::invalid(
                "evidence_ids",
                format!("{id} was not taken by you: a re-check needs your own new photos"),
            ));
        }
    }
    Ok(())
}

/// Is `me` on an unsealed, live look-back assignment of this unit?
fn on_lookback(tx: &mut SyncTx<'_>, me: &AuthUser, unit_id: &str) -> ApiResult<bool> {
    let mine = queries::member_assignments_of_unit(tx.conn(), &me.id, unit_id)?;
    Ok(mine.iter().any(|a| {
        a.kind == "lookback" && !a.sealed && !matches!(a.status.as_str(), "cancelled" | "closed")
    }))
}

fn audit_json(h: &HazardRow) -> Value {
    serde_json::to_value(Hazard::from(h.clone())).unwrap_or(Value::Null)
}

/// Applies `action` with `args` (the push arguments less `id`, or the REST body) to the
/// hazard `id`, as `me`. Answers the hazard after.
pub fn act(
    tx: &mut SyncTx<'_>,
    me: &AuthUser,
    id: &str,
    action: &str,
    args: &Value,
    now: NaiveDateTime,
    rules: &RiskRules,
) -> ApiResult<HazardRow> {
    if !ACTIONS.contains(&action) {
        return Err(ApiError::not_found("hazard action"));
    }
    let current = super::hazards::load(tx.conn(), me, id)?;
    if !allowed(&current.state).contains(&action) {
        return Err(invalid_transition(action, &current));
    }
    let mut next = current.clone();
    match action {
        "classify" => {
            role_in(me, &[Role::Manager, Role::Admin], action)?;
            let a: Classify = parse(args)?;
            if !matches!(a.level.as_str(), "general" | "major") {
                return Err(ApiError::invalid("level", "must be general or major"));
            }
            if a.deadline.naive_utc() <= now {
                return Err(ApiError::invalid("deadline", "must be in the future"));
            }
            let notice_no = a
                .notice_no
                .as_deref()
                .map(|n| validate::text("notice_no", n, 64))
                .transpose()?;
            if a.level == "major" && notice_no.is_none() {
                return Err(ApiError::invalid(
                    "notice_no",
                    "a major hazard is listed for supervision (挂牌督办) with a notice number",
                ));
            }
            next.equipment_stopped = a.level == "major" && next.equipment_id.is_some();
            next.level = a.level;
            next.deadline = Some(a.deadline.naive_utc());
            next.notice_no = notice_no;
            next.classified_by = Some(me.id.clone());
            next.classified_at = Some(now);
            next.state = "classified".into();
        }
        "plan" => {
            role_in(me, &[Role::Unit, Role::Inspector], action)?;
            let a: Plan = parse(args)?;
            let c = commitments(a.commitments, &current.level)?;
            next.commitments = Some(serde_json::to_string(&c).map_err(ApiError::internal_from)?);
            next.state = "rectifying".into();
        }
        "submit_rectification" => {
            role_in(me, &[Role::Unit, Role::Inspector], action)?;
            let a: SubmitRectification = parse(args)?;
            let note = validate::multiline("note", &a.note, 4000, true)?;
            check_evidence(tx, &current, &a.evidence_ids, "rectification", None)?;
            next.rectification_note = Some(note);
            next.rectification_submitted_by = Some(me.id.clone());
            next.state = "rectification_submitted".into();
        }
        "verify" => {
            role_in(me, &[Role::Inspector], action)?;
            if current.reported_by == me.id {
                return Err(ApiError::forbidden(
                    "the re-check is made by someone other than the reporter",
                ));
            }
            if current.state == "rectification_submitted"
                && current.rectification_submitted_by.as_deref() == Some(me.id.as_str())
            {
                return Err(ApiError::forbidden(
                    "the re-check is made by someone other than who submitted the rectification",
                ));
            }
            let a: Verify = parse(args)?;
            if let Some(n) = &a.note {
                validate::multiline("note", n, 4000, false)?;
            }
            match a.outcome.as_str() {
                "pass" => {
                    check_evidence(tx, &current, &a.evidence_ids, "verification", Some(&me.id))?;
                    next.verified_by = Some(me.id.clone());
                    next.verified_at = Some(now);
                    next.state = "verified".into();
                }
                "fail" => {
                    if a.evidence_ids.len() > MAX_EVIDENCE {
                        return Err(ApiError::invalid(
                            "evidence_ids",
                            format!("at most {MAX_EVIDENCE}"),
                        ));
                    }
                    if current.state == "fixed_on_site" {
                        // Not fixed after all: a hazard to rectify by a deadline, on the lists.
                        let Some(d) = a.deadline.map(|d| d.naive_utc()).filter(|d| *d > now) else {
                            return Err(ApiError::invalid(
                                "deadline",
                                "a hazard not fixed on the spot after all needs a future deadline",
                            ));
                        };
                        next.fixed_on_site = false;
                        next.deadline = Some(d);
                    } else if a.deadline.is_some() {
                        return Err(ApiError::invalid(
                            "deadline",
                            "the deadline stays the manager's; only a failed on-the-spot fix sets one",
                        ));
                    }
                    next.state = "rectifying".into();
                }
                _ => return Err(ApiError::invalid("outcome", "must be pass or fail")),
            }
        }
        "close" => {
            role_in(me, &[Role::Manager, Role::Admin], action)?;
            if current.reported_by == me.id {
                return Err(ApiError::forbidden(
                    "a hazard is closed (销号) by someone other than its reporter",
                ));
            }
            let a: Close = parse(args)?;
            if let Some(n) = &a.note {
                validate::multiline("note", n, 4000, false)?;
            }
            next.state = "closed".into();
            next.closed_at = Some(now);
            next.closed_by = Some(me.id.clone());
            next.equipment_stopped = false;
        }
        "reopen" => {
            let allowed = match me.role {
                Role::Manager | Role::Admin => true,
                Role::Inspector => on_lookback(tx, me, &current.unit_id)?,
                Role::Unit => false,
            };
            if !allowed {
                return Err(ApiError::forbidden(
                    "a closed hazard is reopened by a manager or on a look-back (回头看) check",
                ));
            }
            let a: Reopen = parse(args)?;
            validate::multiline("reason", &a.reason, 4000, true)?;
            match a.deadline.map(|d| d.naive_utc()) {
                Some(d) if d <= now => {
                    return Err(ApiError::invalid("deadline", "must be in the future"));
                }
                Some(d) => next.deadline = Some(d),
                None if current.deadline.is_none_or(|d| d <= now) => {
                    return Err(ApiError::invalid(
                        "deadline",
                        "the old deadline has passed: set a new one",
                    ));
                }
                None => {}
            }
            next.state = "rectifying".into();
            next.closed_at = None;
            next.closed_by = None;
            next.verified_by = None;
            next.verified_at = None;
            next.reopen_count += 1;
            next.escalated_at = None;
            next.equipment_stopped = next.level == "major" && next.equipment_id.is_some();
        }
        _ => return Err(ApiError::not_found("hazard action")),
    }
    next.updated_at = now;
    next.version = tx.version();
    queries::update_hazard(tx, &next)?;
    facts::refresh_units(tx, std::slice::from_ref(&next.unit_id), now, rules)?;
    let mut after = audit_json(&next);
    if let (Some(obj), Value::Object(a)) = (after.as_object_mut(), args) {
        // What the actor said (reason, note, outcome) is part of the record.
        obj.insert("action_args".into(), Value::Object(a.clone()));
    }
    audit::record(
        tx,
        me,
        audit::service::Change {
            action: &format!("hazard.{action}"),
            table: "hazards",
            id: &next.id,
            region: Some(&next.region_code),
            before: Some(audit_json(&current)),
            after: Some(after),
        },
        now,
    )?;
    Ok(next)
}

/// The five commitments: all five for a major hazard, measures and deadline for the others.
fn commitments(c: Commitments, level: &str) -> ApiResult<Commitments> {
    let t = |field: &str, v: &Option<String>, need: bool| -> ApiResult<Option<String>> {
        match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            // Named as the spec names them, `commitments.<name>`, like a missing one.
            Some(s) => Ok(Some(validate::multiline(
                &format!("commitments.{field}"),
                s,
                2000,
                true,
            )?)),
            None if need => Err(ApiError::invalid(
                &format!("commitments.{field}"),
                if level == "major" {
                    "a major hazard needs all five commitments (五落实)"
                } else {
                    "is required"
                },
            )),
            None => Ok(None),
        }
    };
    let major = level == "major";
    let out = Commitments {
        responsible_person: t("responsible_person", &c.responsible_person, major)?,
        measures: t("measures", &c.measures, true)?,
        funds: t("funds", &c.funds, major)?,
        deadline: c.deadline,
        contingency_plan: t("contingency_plan", &c.contingency_plan, major)?,
    };
    if out.deadline.is_none() {
        return Err(ApiError::invalid("commitments.deadline", "is required"));
    }
    Ok(out)
}

/// A push mutation `hazard.<action>`: `{id, …}`.
pub fn act_pushed(
    tx: &mut SyncTx<'_>,
    me: &AuthUser,
    action: &str,
    args: &Value,
    now: NaiveDateTime,
    rules: &RiskRules,
) -> ApiResult<HazardRow> {
    let Some(obj) = args.as_object() else {
        return Err(ApiError::invalid("args", "must be an object"));
    };
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("id", "is required"))?
        .to_string();
    let mut rest = obj.clone();
    rest.remove("id");
    act(tx, me, &id, action, &Value::Object(rest), now, rules)
}
