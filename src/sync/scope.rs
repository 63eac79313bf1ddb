//! What a device holds (its scope), by role:
//!
//! - everyone: the code tables and checklist templates;
//! - manager (and admin): everything of their region — users, units, equipment, hazards,
//!   assignments (sealed ones as shells);
//! - inspector: the registry of their region (units, equipment, hazards) and, outside it,
//!   the units of their unsealed assignments with their equipment and hazards; the
//!   assignments whose team they are on (sealed ones as shells); the inspectors and managers
//!   of their region and their team-mates;
//! - unit user: their unit, its equipment, hazards and enforcement actions (directives), its
//!   submitted inspection records, and themselves; never an assignment.

use diesel::dsl::exists;
use diesel::prelude::*;

use crate::auth::extractor::AuthUser;
use crate::auth::region::Role;

/// The synced tables, in pull order (the order of `table` within a version).
pub const TABLES: [&str; 10] = [
    "assignments",
    "checklist_templates",
    "codes",
    "directives",
    "equipment",
    "evidence",
    "hazards",
    "inspections",
    "units",
    "users",
];

/// A unit and what hangs off it, as devices hold it: the unit, its equipment, its hazards and
/// their evidence, its inspection records. What enters or leaves a scope together with the unit.
pub fn unit_family(
    conn: &mut crate::db::DbConn,
    unit_id: &str,
) -> diesel::QueryResult<Vec<(&'static str, Vec<String>)>> {
    use crate::db::schema::{directives, equipment, evidence, hazards, inspections};
    let eq: Vec<String> = equipment::table
        .filter(equipment::unit_id.eq(unit_id))
        .select(equipment::id)
        .load(conn)?;
    let hz: Vec<String> = hazards::table
        .filter(hazards::unit_id.eq(unit_id))
        .select(hazards::id)
        .load(conn)?;
    let ev: Vec<String> = evidence::table
        .filter(evidence::unit_id.eq(unit_id))
        .select(evidence::id)
        .load(conn)?;
    let dir: Vec<String> = directives::table
        .filter(directives::unit_id.eq(unit_id))
        .select(directives::id)
        .load(conn)?;
    let ins: Vec<String> = inspections::table
        .filter(inspections::unit_id.eq(unit_id))
        .select(inspections::id)
        .load(conn)?;
    Ok(vec![
        ("units", vec![unit_id.to_string()]),
        ("equipment", eq),
        ("hazards", hz),
        ("evidence", ev),
        ("inspections", ins),
        ("directives", dir),
    ])
}

#[derive(Debug, Clone)]
pub enum Who {
    /// Managers and admins: a region (LIKE pattern).
    Region {
        like: String,
        user: String,
    },
    Inspector {
        like: String,
        user: String,
    },
    Unit {
        unit: String,
        user: String,
    },
    /// A unit user without a unit: the code tables and themselves only.
    Nobody {
        user: String,
    },
}

impl Who {
    pub fn of(me: &AuthUser) -> Who {
        let user = me.id.clone();
        match me.role {
            Role::Admin | Role::Manager => Who::Region {
                like: me.region.like_pattern(),
                user,
            },
            Role::Inspector => Who::Inspector {
                like: me.region.like_pattern(),
                user,
            },
            Role::Unit => match &me.unit_id {
                Some(u) => Who::Unit {
                    unit: u.clone(),
                    user,
                },
                None => Who::Nobody { user },
            },
        }
    }

    pub fn user(&self) -> &str {
        match self {
            Who::Region { user, .. }
            | Who::Inspector { user, .. }
            | Who::Unit { user, .. }
            | Who::Nobody { user } => user,
        }
    }

    /// The region pattern, for roles that have one.
    pub fn region_like(&self) -> Option<&str> {
        match self {
            Who::Region { like, .. } | Who::Inspector { like, .. } => Some(like),
            _ => None,
        }
    }

    /// Does this region code fall in the caller's region?
    pub fn covers(&self, region: &str) -> bool {
        self.region_like()
            .is_some_and(|like| region.starts_with(like.trim_end_matches('%')))
    }

    /// What the cursor remembers of the scope: a change resets the device.
    pub fn fingerprint(&self, me: &AuthUser) -> String {
        format!(
            "{}:{}:{}:{}",
            me.id,
            me.role,
            me.region,
            me.unit_id.as_deref().unwrap_or("")
        )
    }
}

/// SQL pieces of the scope, per table, as boxed filters.
pub mod filters {
    use super::*;
    use crate::db::DbConn;
    use crate::db::schema::{
        assignment_members, assignments, checklist_templates, codes, directives, equipment,
        evidence, hazards, inspections, units, users,
    };

    type Backend = <DbConn as diesel::Connection>::Backend;

    /// The units of the inspector's unsealed assignments.
    pub fn my_units(user: &str) -> MyUnits<'_> {
        assignments::table
            .inner_join(assignment_members::table)
            .filter(assignment_members::user_id.eq(user))
            .filter(assignments::sealed.eq(false))
            .select(assignments::unit_id)
    }

    pub type MyUnits<'a> = diesel::dsl::Select<
        diesel::dsl::Filter<
            diesel::dsl::Filter<
                diesel::dsl::InnerJoin<assignments::table, assignment_members::table>,
                diesel::dsl::Eq<assignment_members::user_id, &'a str>,
            >,
            diesel::dsl::Eq<assignments::sealed, bool>,
        >,
        assignments::unit_id,
    >;

    type Filter<'a, T> =
        Box<dyn BoxableExpression<T, Backend, SqlType = diesel::sql_types::Bool> + 'a>;

    /// The code after `prefix` in text order ("3301" -> "3302"): codes are digits.
    fn next_prefix(prefix: &str) -> String {
        let mut b = prefix.as_bytes().to_vec();
        if let Some(last) = b.last_mut() {
            *last = last.saturating_add(1);
        }
        String::from_utf8(b).unwrap_or_default()
    }

    /// "In the region" as a comparison an index serves (LIKE is not, on SQLite): equality
    /// for a district, a range for a city or province, everything for the country.
    macro_rules! region_pred {
        ($col:expr, $like:expr) => {{
            let prefix = $like.trim_end_matches('%');
            let f: Filter<'a, _> = if prefix.len() == 6 {
                Box::new($col.eq(prefix))
            } else if prefix.is_empty() {
                Box::new($col.ne(""))
            } else {
                Box::new($col.ge(prefix).and($col.lt(next_prefix(prefix))))
            };
            f
        }};
    }

    /// The scope of the big tables as separate parts (their union is the scope), so that a
    /// page reads each part in index order instead of filtering a walk of the whole table.
    pub fn units_parts<'a>(who: &'a Who) -> Vec<Filter<'a, units::table>> {
        match who {
            Who::Region { like, .. } => vec![region_pred!(units::region_code, like)],
            Who::Inspector { like, user } => vec![
                region_pred!(units::region_code, like),
                Box::new(units::id.eq_any(my_units(user))),
            ],
            _ => vec![units(who)],
        }
    }

    pub fn equipment_parts<'a>(who: &'a Who) -> Vec<Filter<'a, equipment::table>> {
        match who {
            Who::Region { like, .. } => vec![region_pred!(equipment::region_code, like)],
            Who::Inspector { like, user } => vec![
                region_pred!(equipment::region_code, like),
                Box::new(equipment::unit_id.eq_any(my_units(user))),
            ],
            _ => vec![equipment(who)],
        }
    }

    pub fn hazards_parts<'a>(who: &'a Who) -> Vec<Filter<'a, hazards::table>> {
        match who {
            Who::Region { like, .. } => vec![region_pred!(hazards::region_code, like)],
            Who::Inspector { like, user } => vec![
                region_pred!(hazards::region_code, like),
                Box::new(hazards::unit_id.eq_any(my_units(user))),
            ],
            _ => vec![hazards(who)],
        }
    }

    pub fn evidence_parts<'a>(who: &'a Who) -> Vec<Filter<'a, evidence::table>> {
        match who {
            Who::Region { like, .. } => vec![region_pred!(evidence::region_code, like)],
            Who::Inspector { like, user } => vec![
                region_pred!(evidence::region_code, like),
                Box::new(evidence::unit_id.eq_any(my_units(user))),
            ],
            _ => vec![evidence(who)],
        }
    }

    pub fn inspections_parts<'a>(who: &'a Who) -> Vec<Filter<'a, inspections::table>> {
        match who {
            Who::Region { like, .. } => vec![region_pred!(inspections::region_code, like)],
            Who::Inspector { like, user } => vec![
                region_pred!(inspections::region_code, like),
                Box::new(inspections::unit_id.eq_any(my_units(user))),
            ],
            _ => vec![inspections(who)],
        }
    }

    /// Inspection records go with their unit, like hazards; a unit user sees a record once
    /// it is submitted (never one under way: the visit is not announced).
    pub fn inspections<'a>(
        who: &'a Who,
    ) -> Box<
        dyn BoxableExpression<inspections::table, Backend, SqlType = diesel::sql_types::Bool> + 'a,
    > {
        match who {
            Who::Region { like, .. } => Box::new(inspections::region_code.like(like.as_str())),
            Who::Inspector { like, user } => Box::new(
                inspections::region_code
                    .like(like.as_str())
                    .or(inspections::unit_id.eq_any(my_units(user))),
            ),
            Who::Unit { unit, .. } => Box::new(
                inspections::unit_id
                    .eq(unit.as_str())
                    .and(inspections::status.eq("submitted")),
            ),
            Who::Nobody { .. } => Box::new(inspections::id.eq("").and(inspections::id.ne(""))),
        }
    }

    pub fn directives_parts<'a>(who: &'a Who) -> Vec<Filter<'a, directives::table>> {
        match who {
            Who::Region { like, .. } => vec![region_pred!(directives::region_code, like)],
            Who::Inspector { like, user } => vec![
                region_pred!(directives::region_code, like),
                Box::new(directives::unit_id.eq_any(my_units(user))),
            ],
            _ => vec![directives(who)],
        }
    }

    /// Enforcement actions go with their unit, like hazards; the unit's users see theirs.
    pub fn directives<'a>(
        who: &'a Who,
    ) -> Box<
        dyn BoxableExpression<directives::table, Backend, SqlType = diesel::sql_types::Bool> + 'a,
    > {
        match who {
            Who::Region { like, .. } => Box::new(directives::region_code.like(like.as_str())),
            Who::Inspector { like, user } => Box::new(
                directives::region_code
                    .like(like.as_str())
                    .or(directives::unit_id.eq_any(my_units(user))),
            ),
            Who::Unit { unit, .. } => Box::new(directives::unit_id.eq(unit.as_str())),
            Who::Nobody { .. } => Box::new(directives::id.eq("").and(directives::id.ne(""))),
        }
    }

    /// Evidence goes with its hazard (the row carries the hazard's unit and region).
    pub fn evidence<'a>(
        who: &'a Who,
    ) -> Box<dyn BoxableExpression<evidence::table, Backend, SqlType = diesel::sql_types::Bool> + 'a>
    {
        match who {
            Who::Region { like, .. } => Box::new(evidence::region_code.like(like.as_str())),
            Who::Inspector { like, user } => Box::new(
                evidence::region_code
                    .like(like.as_str())
                    .or(evidence::unit_id.eq_any(my_units(user))),
            ),
            Who::Unit { unit, .. } => Box::new(evidence::unit_id.eq(unit.as_str())),
            Who::Nobody { .. } => Box::new(evidence::id.eq("").and(evidence::id.ne(""))),
        }
    }

    /// One part: the whole filter.
    pub fn whole<'a, T: 'a>(f: Filter<'a, T>) -> Vec<Filter<'a, T>> {
        vec![f]
    }

    pub fn units<'a>(
        who: &'a Who,
    ) -> Box<dyn BoxableExpression<units::table, Backend, SqlType = diesel::sql_types::Bool> + 'a>
    {
        match who {
            Who::Region { like, .. } => Box::new(units::region_code.like(like.as_str())),
            Who::Inspector { like, user } => Box::new(
                units::region_code
                    .like(like.as_str())
                    .or(units::id.eq_any(my_units(user))),
            ),
            Who::Unit { unit, .. } => Box::new(units::id.eq(unit.as_str())),
            Who::Nobody { .. } => Box::new(units::id.eq("").and(units::id.ne(""))),
        }
    }

    pub fn equipment<'a>(
        who: &'a Who,
    ) -> Box<dyn BoxableExpression<equipment::table, Backend, SqlType = diesel::sql_types::Bool> + 'a>
    {
        match who {
            Who::Region { like, .. } => Box::new(equipment::region_code.like(like.as_str())),
            Who::Inspector { like, user } => Box::new(
                equipment::region_code
                    .like(like.as_str())
                    .or(equipment::unit_id.eq_any(my_units(user))),
            ),
            Who::Unit { unit, .. } => Box::new(equipment::unit_id.eq(unit.as_str())),
            Who::Nobody { .. } => Box::new(equipment::id.eq("").and(equipment::id.ne(""))),
        }
    }

    pub fn hazards<'a>(
        who: &'a Who,
    ) -> Box<dyn BoxableExpression<hazards::table, Backend, SqlType = diesel::sql_types::Bool> + 'a>
    {
        match who {
            Who::Region { like, .. } => Box::new(hazards::region_code.like(like.as_str())),
            Who::Inspector { like, user } => Box::new(
                hazards::region_code
                    .like(like.as_str())
                    .or(hazards::unit_id.eq_any(my_units(user))),
            ),
            Who::Unit { unit, .. } => Box::new(hazards::unit_id.eq(unit.as_str())),
            Who::Nobody { .. } => Box::new(hazards::id.eq("").and(hazards::id.ne(""))),
        }
    }

    pub fn assignments<'a>(
        who: &'a Who,
    ) -> Box<
        dyn BoxableExpression<assignments::table, Backend, SqlType = diesel::sql_types::Bool> + 'a,
    > {
        match who {
            Who::Region { like, .. } => Box::new(assignments::region_code.like(like.as_str())),
            Who::Inspector { user, .. } => Box::new(exists(
                assignment_members::table
                    .filter(assignment_members::assignment_id.eq(assignments::id))
                    .filter(assignment_members::user_id.eq(user.as_str())),
            )),
            Who::Unit { .. } | Who::Nobody { .. } => {
                Box::new(assignments::id.eq("").and(assignments::id.ne("")))
            }
        }
    }

    pub fn users<'a>(
        who: &'a Who,
    ) -> Box<dyn BoxableExpression<users::table, Backend, SqlType = diesel::sql_types::Bool> + 'a>
    {
        match who {
            Who::Region { like, .. } => Box::new(users::region_code.like(like.as_str())),
            Who::Inspector { like, user } => {
                let mine = diesel::alias!(assignment_members as mine);
                let mates = assignment_members::table
                    .filter(
                        assignment_members::assignment_id.eq_any(
                            mine.filter(mine.field(assignment_members::user_id).eq(user.as_str()))
                                .select(mine.field(assignment_members::assignment_id)),
                        ),
                    )
                    .select(assignment_members::user_id);
                Box::new(
                    users::region_code
                        .like(like.as_str())
                        .and(users::role.eq_any(["inspector", "manager"]))
                        .or(users::id.eq_any(mates))
                        .or(users::id.eq(user.as_str())),
                )
            }
            Who::Unit { user, .. } | Who::Nobody { user } => Box::new(users::id.eq(user.as_str())),
        }
    }

    /// Tables everyone holds whole.
    pub fn codes<'a>(
        _: &'a Who,
    ) -> Box<dyn BoxableExpression<codes::table, Backend, SqlType = diesel::sql_types::Bool> + 'a>
    {
        Box::new(codes::id.ne(""))
    }

    pub fn checklist_templates<'a>(
        _: &'a Who,
    ) -> Box<
        dyn BoxableExpression<
                checklist_templates::table,
                Backend,
                SqlType = diesel::sql_types::Bool,
            > + 'a,
    > {
        Box::new(checklist_templates::id.ne(""))
    }
}
