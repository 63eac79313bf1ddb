//! The one write path to synced tables.
//!
//! [`sync_tx`] opens the write transaction, bumps the single `sync_clock` row first and hands
//! the new version to the closure through [`SyncTx`]; everything the closure writes to a
//! synced table is stamped with that version. The database refuses any other write: guard
//! triggers on every synced table require `sync_clock.writing` (true only inside a sync_tx,
//! never visible to another transaction) and `NEW.version = sync_clock.seq`.
//!
//! Why this orders correctly: on PostgreSQL the bump takes the clock row's lock, so writers
//! commit in version order; on SQLite the transaction starts with `BEGIN IMMEDIATE` and so
//! holds the single write lock throughout. A pull that reads the head and the rows in one
//! snapshot therefore never sees version N+1 committed while N is still to come.

use diesel::connection::{AnsiTransactionManager, Connection, TransactionManager};
use diesel::prelude::*;

use super::DbConn;
use super::schema::sync_clock;

/// A value of the sync clock.
pub type Version = i64;

/// An open sync write transaction: the connection, and the version to stamp rows with.
pub struct SyncTx<'c> {
    conn: &'c mut DbConn,
    version: Version,
    chain: ChainTail,
}

/// The newest entry of the audit chain as this writer knows it (writers take turns, so it
/// stays true until the commit), and whether the recorded head must be moved to it before
/// the commit: appends then read and write the head once per commit, not once per entry.
#[derive(Debug, Clone, Default)]
pub struct ChainTail {
    pub last: Option<(i64, String)>,
    pub moved: bool,
}

impl SyncTx<'_> {
    /// The version every row written in this transaction carries.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The connection inside the transaction.
    pub fn conn(&mut self) -> &mut DbConn {
        self.conn
    }

    /// The audit chain's tail as known in this transaction (see [`ChainTail`]).
    pub fn chain(&mut self) -> &mut ChainTail {
        &mut self.chain
    }
}

/// Moves the recorded audit head to the tail, if appends moved it.
fn record_chain_head(conn: &mut DbConn, tail: &ChainTail) -> QueryResult<()> {
    if let (true, Some((seq, hash))) = (tail.moved, &tail.last) {
        diesel::update(super::schema::server_meta::table.find(super::meta::AUDIT_HEAD))
            .set(super::schema::server_meta::value.eq(format!("{seq}:{hash}")))
            .execute(conn)?;
    }
    Ok(())
}

/// Runs `f` in a write transaction that has bumped the sync clock. Commits when `f` returns
/// `Ok`, rolls back (version unused) on `Err`. Cannot nest: one transaction, one version.
pub fn sync_tx<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut SyncTx<'_>) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let mut committed = 0;
    let out = write_tx(conn, |conn| -> Result<T, E> {
        let version = open_version(conn)?;
        let mut tx = SyncTx {
            conn,
            version,
            chain: ChainTail::default(),
        };
        let out = f(&mut tx)?;
        record_chain_head(tx.conn, &tx.chain)?;
        // The JSON devices get of the rows it wrote (see `crate::sync::stored`), done here so
        // that no write path can forget it.
        crate::sync::stored::store_versions(tx.conn, version, version)?;
        close_version(tx.conn)?;
        committed = version;
        Ok(out)
    })?;
    // Committed: the server's idea of the head may move (see `watch`).
    super::watch::note_committed(committed);
    Ok(out)
}

/// Bumps the clock and opens it for writes stamped with the new version.
fn open_version(conn: &mut DbConn) -> QueryResult<Version> {
    diesel::update(sync_clock::table.filter(sync_clock::id.eq(1)))
        .set((
            sync_clock::seq.eq(sync_clock::seq + 1),
            sync_clock::writing.eq(true),
        ))
        .execute(conn)?;
    sync_clock::table
        .filter(sync_clock::id.eq(1))
        .select(sync_clock::seq)
        .first::<Version>(conn)
}

/// Closes the clock for writes again (guard triggers refuse synced writes until the next
/// [`open_version`]).
fn close_version(conn: &mut DbConn) -> QueryResult<()> {
    diesel::update(sync_clock::table.filter(sync_clock::id.eq(1)))
        .set(sync_clock::writing.eq(false))
        .execute(conn)?;
    Ok(())
}

/// Several sync transactions committed together: each [`SyncBatch::tx`] runs in its own
/// nested transaction (a savepoint) with its own version, and rolls back alone; the batch
/// commits them with one commit, so one WAL write and one fsync serve them all instead of
/// one each. Nothing is visible to others, or acknowledged, before that commit. Between its
/// `tx` calls the clock is closed, so the batch's connection can read but not write synced
/// tables.
pub struct SyncBatch<'c> {
    conn: &'c mut DbConn,
    /// The first version kept (`None`: none yet).
    first: Option<Version>,
    last: Version,
    chain: ChainTail,
}

impl SyncBatch<'_> {
    /// The connection, between sync transactions (reads; writes to tables that are not
    /// synced).
    pub fn conn(&mut self) -> &mut DbConn {
        self.conn
    }

    /// Runs `f` as one sync transaction of the batch: its effects stay if it returns `Ok`,
    /// are rolled back (version unused) if it returns `Err`.
    pub fn tx<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut SyncTx<'_>) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        let chain = self.chain.clone();
        let (out, version, chain) =
            self.conn
                .transaction(|conn| -> Result<(T, Version, ChainTail), E> {
                    let version = open_version(conn)?;
                    let mut tx = SyncTx {
                        conn,
                        version,
                        chain,
                    };
                    let out = f(&mut tx)?;
                    close_version(tx.conn)?;
                    Ok((out, version, tx.chain))
                })?;
        // Kept only when the nested transaction is: a rolled-back append is no tail.
        self.chain = chain;
        self.first.get_or_insert(version);
        self.last = version;
        Ok(out)
    }
}

/// Runs `f` with a [`SyncBatch`] in one write transaction; commits when `f` returns `Ok`
/// (everything its `tx` calls kept), rolls back all of it on `Err`. Cannot nest.
pub fn sync_batch<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut SyncBatch<'_>) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let mut committed = 0;
    let out = write_tx(conn, |conn| -> Result<T, E> {
        let mut batch = SyncBatch {
            conn,
            first: None,
            last: 0,
            chain: ChainTail::default(),
        };
        let out = f(&mut batch)?;
        record_chain_head(batch.conn, &batch.chain)?;
        // The JSON of the rows its transactions wrote, stored once for all of them (see
        // `crate::sync::stored`); rolled-back transactions left no rows at their versions.
        if let Some(first) = batch.first {
            crate::sync::stored::store_versions(batch.conn, first, batch.last)?;
        }
        committed = batch.last;
        Ok(out)
    })?;
    super::watch::note_committed(committed);
    Ok(out)
}

/// The current head of the sync clock (the last committed version).
pub fn head(conn: &mut DbConn) -> QueryResult<Version> {
    sync_clock::table
        .filter(sync_clock::id.eq(1))
        .select(sync_clock::seq)
        .first(conn)
}

type Tm = <DbConn as Connection>::TransactionManager;

/// A write transaction that holds the write lock from its first statement: `BEGIN IMMEDIATE`
/// on SQLite (a deferred transaction that reads before it writes can fail with a stale
/// snapshot instead of waiting), a plain `BEGIN` on PostgreSQL (row locks order writers).
/// For writes to tables that are not synced; synced tables take [`sync_tx`], which uses this.
/// Cannot nest.
pub fn write_tx<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    if Tm::transaction_manager_status_mut(conn)
        .transaction_depth()?
        .is_some()
    {
        return Err(diesel::result::Error::AlreadyInTransaction.into());
    }
    match conn {
        DbConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?,
        DbConn::Pg(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    match f(conn) {
        Ok(value) => {
            Tm::commit_transaction(conn)?;
            Ok(value)
        }
        Err(err) => match Tm::rollback_transaction(conn) {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(err),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

/// How a scope event names whose scope it concerns.
#[derive(Debug, Clone, Copy)]
pub enum ScopeKey<'a> {
    /// One user (team membership, reveals).
    User(&'a str),
    /// Everyone whose region covered this code (the row moved out of it).
    Region(&'a str),
    /// The users of one unit.
    Unit(&'a str),
}

impl SyncTx<'_> {
    /// Records that `row_id` of `table` entered (`enter == true`) or left the scope `key`
    /// names, at this transaction's version. Pulls turn entries into full puts of the row
    /// and its dependents, exits into evicts.
    pub fn scope_event(
        &mut self,
        enter: bool,
        table: &str,
        row_id: &str,
        key: ScopeKey<'_>,
        now: chrono::NaiveDateTime,
    ) -> QueryResult<()> {
        use super::schema::sync_scope_events as e;
        let (user, region, unit) = match key {
            ScopeKey::User(u) => (Some(u), None, None),
            ScopeKey::Region(r) => (None, Some(r), None),
            ScopeKey::Unit(u) => (None, None, Some(u)),
        };
        diesel::insert_into(e::table)
            .values((
                e::id.eq(uuid::Uuid::now_v7().hyphenated().to_string()),
                e::version.eq(self.version),
                e::kind.eq(if enter { "enter" } else { "exit" }),
                e::table_name.eq(table),
                e::row_id.eq(row_id),
                e::user_id.eq(user),
                e::region_code.eq(region),
                e::unit_id.eq(unit),
                e::created_at.eq(now),
            ))
            .execute(self.conn)?;
        Ok(())
    }

    /// [`SyncTx::scope_event`] entries for many (row, user) pairs of `table` at once: one
    /// insert per 500 (a draw creates dozens of assignments with their teams).
    pub fn enter_users(
        &mut self,
        table: &str,
        pairs: &[(String, String)],
        now: chrono::NaiveDateTime,
    ) -> QueryResult<()> {
        use super::schema::sync_scope_events as e;
        for chunk in pairs.chunks(500) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|(row_id, user)| {
                    (
                        e::id.eq(uuid::Uuid::now_v7().hyphenated().to_string()),
                        e::version.eq(self.version),
                        e::kind.eq("enter"),
                        e::table_name.eq(table),
                        e::row_id.eq(row_id),
                        e::user_id.eq(Some(user)),
                        e::created_at.eq(now),
                    )
                })
                .collect();
            crate::with_engine!(&mut *self.conn, |c| diesel::insert_into(e::table)
                .values(&rows)
                .execute(c))?;
        }
        Ok(())
    }

    /// Records the deletion of `row_id` of `table` (call with the delete), with what decided
    /// who could see it, so that pulls send `delete` to those who may hold it.
    pub fn tombstone(
        &mut self,
        table: &str,
        row_id: &str,
        region_code: Option<&str>,
        unit_id: Option<&str>,
        user_ids: &[String],
        now: chrono::NaiveDateTime,
    ) -> QueryResult<()> {
        use super::schema::sync_tombstones as t;
        let users = if user_ids.is_empty() {
            None
        } else {
            Some(serde_json::to_string(user_ids).unwrap_or_else(|_| "[]".into()))
        };
        diesel::insert_into(t::table)
            .values((
                t::table_name.eq(table),
                t::row_id.eq(row_id),
                t::version.eq(self.version),
                t::region_code.eq(region_code),
                t::unit_id.eq(unit_id),
                t::user_ids.eq(users),
                t::deleted_at.eq(now),
            ))
            .execute(self.conn)?;
        Ok(())
    }
}

/// Runs `f` on one consistent snapshot of the database, read only: REPEATABLE READ on
/// PostgreSQL; on SQLite a read transaction (WAL keeps its snapshot until it ends).
pub fn read_snapshot<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        DbConn::Sqlite(_) => conn.transaction(f),
        DbConn::Pg(c) => {
            AnsiTransactionManager::begin_transaction_sql(
                c,
                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            )?;
            match f(conn) {
                Ok(v) => {
                    Tm::commit_transaction(conn)?;
                    Ok(v)
                }
                Err(e) => {
                    let _ = Tm::rollback_transaction(conn);
                    Err(e)
                }
            }
        }
    }
}

/// Inside a write transaction: the device's push position, locked until commit so that two
/// pushes of one device apply one after the other (PostgreSQL: `FOR UPDATE`; SQLite: the
/// transaction already holds the single write lock).
pub fn lock_device_seq(conn: &mut DbConn, device_pk: &str) -> QueryResult<i64> {
    use super::schema::devices;
    match conn {
        DbConn::Pg(c) => devices::table
            .find(device_pk)
            .select(devices::last_mutation_seq)
            .for_update()
            .first(c),
        DbConn::Sqlite(c) => devices::table
            .find(device_pk)
            .select(devices::last_mutation_seq)
            .first(c),
    }
}
