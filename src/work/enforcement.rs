//! Enforcement actions (synced as `directives`): a directive (指令书), an order to stop use,
//! a seal-up, a fine with its article and amount, an interview (约谈), public exposure, a
//! blacklisting, a referral (移送). Issued by managers and by inspectors on site (push
//! `directive.issue` or `POST /api/v1/directives`), each with a unique document number;
//! `issued` until a manager records it `complied` or `revoked`. A blacklisting puts the unit
//! on the blacklist through `until_on` (its risk facts carry `blacklisted`); the unit's window
//! spans its blacklistings not revoked, so revoking the only one takes it off at once.

use chrono::NaiveDateTime;
use serde_json::{Map, Value, json};

use super::queries::{self, DirectiveFilter, DirectiveRow};
use super::types::{CloseDirective, Directive, IssueDirective};
use crate::app::AppState;
use crate::audit;
use crate::auth::extractor::AuthUser;
use crate::auth::region::Role;
use crate::db::{DbConn, SyncTx, sync_tx};
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::{Page, Paged};
use crate::registry::codes::CodeBook;
use crate::registry::facts;
use crate::registry::queries as registry;
use crate::registry::risk::RiskRules;
use crate::validate;

/// What an inspector may issue on site; the other kinds are managers'.
const ON_SITE_KINDS: [&str; 3] = ["directive", "stop_use", "seal_up"];

/// The largest fine the server records (yuan).
const MAX_FINE: i64 = 100_000_000;

fn audit_json(r: &DirectiveRow) -> Value {
    serde_json::to_value(Directive::from(r.clone())).unwrap_or(Value::Null)
}

pub fn load(conn: &mut DbConn, me: &AuthUser, id: &str) -> ApiResult<DirectiveRow> {
    use diesel::prelude::*;
    let nf = || ApiError::not_found("directive");
    let id = validate::uuid("id", id).map_err(|_| nf())?;
    let who = crate::sync::scope::Who::of(me);
    crate::db::schema::directives::table
        .filter(crate::sync::scope::filters::directives(&who))
        .filter(crate::db::schema::directives::id.eq(&id))
        .select(DirectiveRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(nf)
}

/// Sets the unit's blacklist window from its blacklistings not revoked (from the first one's
/// issue day to the latest last day; none: off the list) and recomputes its risk facts.
fn sync_blacklist(
    tx: &mut SyncTx<'_>,
    unit_id: &str,
    now: NaiveDateTime,
    rules: &RiskRules,
) -> ApiResult<()> {
    use crate::db::schema::directives as d;
    use diesel::prelude::*;
    let windows: Vec<(NaiveDateTime, Option<chrono::NaiveDate>)> = d::table
        .filter(d::unit_id.eq(unit_id))
        .filter(d::kind.eq("blacklist"))
        .filter(d::state.ne("revoked"))
        .select((d::issued_at, d::until_on))
        .load(tx.conn())?;
    let from = windows.iter().map(|(at, _)| at.date()).min();
    let until = windows.iter().filter_map(|(_, u)| *u).max();
    let Some(mut unit) = registry::find_unit(tx.conn(), unit_id)? else {
        return Err(ApiError::not_found("unit"));
    };
    if unit.blacklisted_from == from && unit.blacklisted_until == until {
        return Ok(());
    }
    unit.blacklisted_from = from;
    unit.blacklisted_until = until;
    unit.updated_at = now;
    unit.version = tx.version();
    registry::update_unit(tx, &unit)?;
    facts::refresh_units(tx, &[unit.id.clone()], now, rules)?;
    Ok(())
}

/// `directive.issue`, inside the caller's sync transaction.
pub fn issue_tx(
    tx: &mut SyncTx<'_>,
    me: &AuthUser,
    args: IssueDirective,
    now: NaiveDateTime,
    rules: &RiskRules,
) -> ApiResult<DirectiveRow> {
    if !matches!(me.role, Role::Manager | Role::Admin | Role::Inspector) {
        return Err(ApiError::forbidden(
            "enforcement actions are issued by inspectors and managers",
        ));
    }
    let id = validate::uuid("id", &args.id)?;
    let doc_no = validate::text("doc_no", &args.doc_no, 64)?;
    if let Some(existing) = queries::find_directive(tx.conn(), &id)? {
        if existing.issued_by == me.id && existing.doc_no == doc_no {
            return Ok(existing); // the same issue again
        }
        return Err(ApiError::conflict(
            "already_exists",
            "an enforcement action with this id exists",
        ));
    }
    let book = CodeBook::load(tx.conn())?;
    if !book.has("enforcement_kind", &args.kind) {
        return Err(ApiError::invalid(
            "kind",
            format!("must be one of {}", book.list("enforcement_kind")),
        ));
    }
    let unit_id = validate::uuid("unit_id", &args.unit_id)?;
    let unit = registry::find_unit(tx.conn(), &unit_id)?;
    let Some(unit) = unit else {
        return Err(ApiError::invalid("unit_id", "no such unit"));
    };
    if !super::hazards::unit_in_reach(tx.conn(), me, &unit.id, &unit.region_code)? {
        return Err(ApiError::invalid("unit_id", "no such unit"));
    }
    if me.role == Role::Inspector {
        // On site an inspector orders correction, stopping or sealing, on a live check of
        // this unit; fines, interviews, exposure, blacklisting and referral are the bureau's.
        if !ON_SITE_KINDS.contains(&args.kind.as_str()) {
            return Err(ApiError::forbidden(format!(
                "a {} is decided by a manager; inspectors issue {} on site",
                args.kind,
                ON_SITE_KINDS.join(", ")
            )));
        }
        let live = queries::member_assignments_of_unit(tx.conn(), &me.id, &unit.id)?
            .into_iter()
            .any(|a| {
                !a.sealed
                    && matches!(
                        a.status.as_str(),
                        "scheduled" | "dispatched" | "in_progress"
                    )
            });
        if !live {
            return Err(ApiError::forbidden(
                "inspectors issue enforcement actions on a live assignment of the unit",
            ));
        }
    }
    if queries::directive_by_doc_no(tx.conn(), &doc_no)?.is_some() {
        return Err(ApiError::conflict(
            "doc_no_taken",
            "an enforcement action with this document number exists",
        ));
    }
    let content = validate::multiline("content", &args.content, 4000, true)?;
    let equipment_id = match args.equipment_id.as_deref() {
        None => None,
        Some(e) => {
            let e = validate::uuid("equipment_id", e)?;
            match registry::find_equipment(tx.conn(), &e)? {
                Some(row) if row.unit_id == unit.id => Some(e),
                _ => {
                    return Err(ApiError::invalid(
                        "equipment_id",
                        "is not equipment of this unit",
                    ));
                }
            }
        }
    };
    let hazard_id = match args.hazard_id.as_deref() {
        None => None,
        Some(h) => {
            let h = validate::uuid("hazard_id", h)?;
            match queries::find_hazard(tx.conn(), &h)? {
                Some(row) if row.unit_id == unit.id => Some(h),
                _ => {
                    return Err(ApiError::invalid(
                        "hazard_id",
                        "is not a hazard of this unit",
                    ));
                }
            }
        }
    };
    let inspection_id = match args.inspection_id.as_deref() {
        None => None,
        Some(i) => {
            let i = validate::uuid("inspection_id", i)?;
            match queries::find_inspection(tx.conn(), &i)? {
                Some(row) if row.unit_id == unit.id => Some(i),
                _ => {
                    return Err(ApiError::invalid(
                        "inspection_id",
                        "is not an inspection of this unit",
                    ));
                }
            }
        }
    };
    let fine = args.kind == "fine";
    let article = args
        .article
        .as_deref()
        .map(|a| validate::text("article", a, 200))
        .transpose()?;
    match (fine, &article, args.amount_yuan) {
        (true, None, _) => {
            return Err(ApiError::invalid(
                "article",
                "a fine names the article applied",
            ));
        }
        (true, _, None) => {
            return Err(ApiError::invalid("amount_yuan", "a fine has an amount"));
        }
        (true, _, Some(a)) if !(1..=MAX_FINE).contains(&a) => {
            return Err(ApiError::invalid(
                "amount_yuan",
                format!("must be between 1 and {MAX_FINE}"),
            ));
        }
        (false, _, Some(_)) => {
            return Err(ApiError::invalid(
                "amount_yuan",
                "only a fine has an amount",
            ));
        }
        (false, Some(_), _) => {
            return Err(ApiError::invalid("article", "only a fine names an article"));
        }
        _ => {}
    }
    if args.deadline.is_some_and(|d| d.naive_utc() <= now) {
        return Err(ApiError::invalid("deadline", "must be in the future"));
    }
    let today = now.date();
    let until_on = match (args.kind == "blacklist", args.until_on) {
        (true, None) => {
            return Err(ApiError::invalid(
                "until_on",
                "a blacklisting names its last day",
            ));
        }
        (true, Some(d)) if d < today => {
            return Err(ApiError::invalid("until_on", "is in the past"));
        }
        (false, Some(_)) => {
            return Err(ApiError::invalid(
                "until_on",
                "only a blacklisting has a last day",
            ));
        }
        (_, d) => d,
    };
    let row = DirectiveRow {
        id,
        kind: args.kind,
        doc_no,
        unit_id: unit.id.clone(),
        equipment_id,
        hazard_id,
        inspection_id,
        region_code: unit.region_code.clone(),
        state: "issued".into(),
        content,
        article,
        amount_yuan: args.amount_yuan,
        deadline: args.deadline.map(|d| d.naive_utc()),
        until_on,
        issued_by: me.id.clone(),
        issued_at: now,
        closed_by: None,
        closed_at: None,
        close_note: None,
        created_at: now,
        updated_at: now,
        version: tx.version(),
    };
    queries::insert_directive(tx, &row)?;
    if row.kind == "blacklist" {
        sync_blacklist(tx, &unit.id, now, rules)?;
    }
    audit::record(
        tx,
        me,
        audit::service::Change {
            action: "directive.issue",
            table: "directives",
            id: &row.id,
            region: Some(&row.region_code),
            before: None,
            after: Some(audit_json(&row)),
        },
        now,
    )?;
    Ok(row)
}

/// Records an issued action as `complied` or `revoked` (managers).
pub fn close_tx(
    tx: &mut SyncTx<'_>,
    me: &AuthUser,
    id: &str,
    to: &'static str,
    args: CloseDirective,
    now: NaiveDateTime,
    rules: &RiskRules,
) -> ApiResult<DirectiveRow> {
    let current = load(tx.conn(), me, id)?;
    if current.state != "issued" {
        let mut extra = Map::new();
        extra.insert("allowed".into(), json!([]));
        return Err(ApiError::Conflict {
            code: "invalid_transition",
            message: format!("the action is already {}", current.state),
            extra,
        });
    }
    if !matches!(me.role, Role::Manager | Role::Admin) {
        return Err(ApiError::forbidden(
            "managers record compliance and revocations",
        ));
    }
    let note = args
        .note
        .as_deref()
        .map(|n| validate::multiline("note", n, 2000, false))
        .transpose()?
        .filter(|n| !n.is_empty());
    if to == "revoked" && note.is_none() {
        return Err(ApiError::invalid("note", "say why it is revoked"));
    }
    let mut next = current.clone();
    next.state = to.into();
    next.closed_by = Some(me.id.clone());
    next.closed_at = Some(now);
    next.close_note = note;
    next.updated_at = now;
    next.version = tx.version();
    queries::update_directive(tx, &next)?;
    if to == "revoked" && next.kind == "blacklist" {
        sync_blacklist(tx, &next.unit_id, now, rules)?;
    }
    audit::record(
        tx,
        me,
        audit::service::Change {
            action: if to == "revoked" {
                "directive.revoke"
            } else {
                "directive.comply"
            },
            table: "directives",
            id: &next.id,
            region: Some(&next.region_code),
            before: Some(audit_json(&current)),
            after: Some(audit_json(&next)),
        },
        now,
    )?;
    Ok(next)
}

pub async fn issue(state: &AppState, me: AuthUser, body: Value) -> ApiResult<Directive> {
    let args: IssueDirective = crate::http::json::parse_with_id(body)?;
    let rules = crate::registry::service::rules(state)?;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            sync_tx(conn, |tx| issue_tx(tx, &me, args, now, &rules)).map(Directive::from)
        })
        .await
}

pub async fn close(
    state: &AppState,
    me: AuthUser,
    id: String,
    to: &'static str,
    args: CloseDirective,
) -> ApiResult<Directive> {
    let rules = crate::registry::service::rules(state)?;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            sync_tx(conn, |tx| close_tx(tx, &me, &id, to, args, now, &rules)).map(Directive::from)
        })
        .await
}

pub async fn get(state: &AppState, me: AuthUser, id: String) -> ApiResult<Directive> {
    state
        .db
        .run(move |conn| load(conn, &me, &id).map(Directive::from))
        .await
}

pub async fn list(
    state: &AppState,
    me: AuthUser,
    mut f: DirectiveFilter,
    page: Page,
) -> ApiResult<Paged<Directive>> {
    f.unit_id = f
        .unit_id
        .as_deref()
        .filter(|u| !u.is_empty())
        .map(|u| validate::uuid("unit_id", u))
        .transpose()?;
    f.kind = f.kind.filter(|k| !k.is_empty());
    f.state = f.state.filter(|s| !s.is_empty());
    let who = crate::sync::scope::Who::of(&me);
    state
        .db
        .run(move |conn| {
            let scope = crate::sync::scope::filters::directives(&who);
            let rows = queries::list_directives(conn, scope, &f, page.after(), page.fetch())?;
            Ok(
                page.finish(rows.into_iter().map(Directive::from).collect(), |d| {
                    d.id.clone()
                }),
            )
        })
        .await
}
