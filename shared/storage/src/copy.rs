//! Moving an installation from SQLite to PostgreSQL (`quorum move-to-postgres`): every row
//! of every table, read from one SQLite snapshot and written in one PostgreSQL transaction,
//! so the copy is one moment's state and either complete or absent.
//!
//! The tables, their columns and their order come from PostgreSQL's own catalog after its
//! migrations ran (parents before the tables whose foreign keys point at them), so a table
//! added by a later migration is copied without a change here; a column one side has and
//! the other lacks stops the copy (the two databases are not at the same migration). Ids
//! keep their values (release markers and reply tokens name them), and each id sequence
//! continues after the highest id SQLite ever issued (`sqlite_sequence`, which remembers
//! deleted rows too): an id is never given twice.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{QueryBuilder, Row};

use crate::{Database, Postgres, Result, Sqlite, StorageError};

/// Rows copied into one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub table: String,
    pub rows: u64,
}

/// One value on its way, typed by the PostgreSQL column it goes to.
enum Value {
    Int(Option<i64>),
    Bool(Option<bool>),
    Real(Option<f64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Bool,
    Real,
    Text,
    Bytes,
}

impl Kind {
    fn of(data_type: &str) -> Option<Kind> {
        Some(match data_type {
            "bigint" | "integer" | "smallint" => Kind::Int,
            "boolean" => Kind::Bool,
            "double precision" | "real" => Kind::Real,
            "text" | "character varying" => Kind::Text,
            "bytea" => Kind::Bytes,
            _ => return None,
        })
    }

    /// Column `i` of a SQLite row, as the PostgreSQL column wants it.
    fn read(self, row: &sqlx::sqlite::SqliteRow, i: usize) -> Result<Value, sqlx::Error> {
        Ok(match self {
            Kind::Int => Value::Int(row.try_get(i)?),
            Kind::Bool => Value::Bool(row.try_get(i)?),
            Kind::Real => Value::Real(row.try_get(i)?),
            Kind::Text => Value::Text(row.try_get(i)?),
            Kind::Bytes => Value::Bytes(row.try_get(i)?),
        })
    }
}

/// Rows per page read and INSERT written (PostgreSQL takes at most 65,535 parameters per
/// statement), and bytes per INSERT.
const BATCH_ROWS: usize = 500;
const BATCH_BYTES: usize = 16 << 20;

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Copies every row of `from` into `to`, which is migrated first and must hold no
/// subscriber and no operator (rows its migrations seed, like the provider table, are
/// replaced by SQLite's own). Returns the rows copied per table, in copy order.
pub async fn sqlite_to_postgres(from: &Sqlite, to: &Postgres) -> Result<Vec<Copied>> {
    to.migrate().await?;
    let mut pg = to.pool().begin().await?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *pg)
    .await?;
    for table in ["subscribers", "operators"] {
        let used: bool =
            sqlx::query_scalar(&format!("SELECT EXISTS (SELECT 1 FROM {})", quoted(table))).fetch_one(&mut *pg).await?;
        if used {
            return Err(StorageError::Conflict(format!(
                "the PostgreSQL database is in use already (its {table} table has rows): move into an empty database"
            )));
        }
    }
    let references: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, p.relname::text FROM pg_constraint k \
         JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE k.contype = 'f' AND n.nspname = current_schema()",
    )
    .fetch_all(&mut *pg)
    .await?;
    let order = parents_first(&tables, &references)?;
    // Seeded rows go first, children before parents.
    for table in order.iter().rev() {
        sqlx::query(&format!("DELETE FROM {}", quoted(table))).execute(&mut *pg).await?;
    }

    // One read transaction: every table as of the same moment (WAL readers see a snapshot).
    let mut lite = from.pool().begin().await?;
    let issued: BTreeMap<String, i64> = sqlx::query_as::<_, (String, i64)>("SELECT name, seq FROM sqlite_sequence")
        .fetch_all(&mut *lite)
        .await?
        .into_iter()
        .collect();
    let mut copied = Vec::with_capacity(order.len());
    for table in &order {
        let columns: Vec<(String, String, bool)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text, COALESCE(is_identity = 'YES' OR column_default LIKE 'nextval(%', FALSE) \
             FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 \
             ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(&mut *pg)
        .await?;
        let present: BTreeSet<String> = sqlx::query_scalar::<_, String>("SELECT name FROM pragma_table_info($1)")
            .bind(table)
            .fetch_all(&mut *lite)
            .await?
            .into_iter()
            .collect();
        if present.is_empty() {
            return Err(StorageError::Conflict(format!(
                "table {table} is missing in SQLite: run `quorum migrate` on the SQLite database first"
            )));
        }
        let wanted: BTreeSet<String> = columns.iter().map(|(c, _, _)| c.clone()).collect();
        if let Some(c) = wanted.symmetric_difference(&present).next() {
            return Err(StorageError::Conflict(format!(
                "column {table}.{c} is in one database and not the other: run `quorum migrate` on both with the same quorum binary first"
            )));
        }
        let kinds: Vec<Kind> = columns
            .iter()
            .map(|(c, t, _)| {
                Kind::of(t)
                    .ok_or_else(|| StorageError::Corrupt(format!("{table}.{c} has a type the copy does not know: {t}")))
            })
            .collect::<Result<_>>()?;
        let list = columns.iter().map(|(c, _, _)| quoted(c)).collect::<Vec<_>>().join(", ");
        // Pages in rowid order (every Quorum table has one), bounded in rows and bytes.
        let select = format!("SELECT rowid, {list} FROM {} WHERE rowid > $1 ORDER BY rowid LIMIT $2", quoted(table));
        let (mut after, mut count) = (i64::MIN, 0u64);
        loop {
            let page = sqlx::query(&select).bind(after).bind(BATCH_ROWS as i64).fetch_all(&mut *lite).await?;
            let Some(last) = page.last() else { break };
            after = last.try_get(0)?;
            let (mut batch, mut bytes) = (Vec::with_capacity(page.len()), 0usize);
            for row in &page {
                // Column 0 is the rowid.
                let values =
                    kinds.iter().enumerate().map(|(i, kind)| kind.read(row, i + 1)).collect::<Result<Vec<_>, _>>()?;
                bytes += values.iter().map(Value::size).sum::<usize>();
                batch.push(values);
                if bytes >= BATCH_BYTES {
                    count += insert(&mut pg, table, &list, std::mem::take(&mut batch)).await?;
                    bytes = 0;
                }
            }
            count += insert(&mut pg, table, &list, batch).await?;
        }
        for (column, _, _) in columns.iter().filter(|(_, _, generated)| *generated) {
            // Next id: after the highest SQLite ever issued, deleted rows included.
            let floor = issued.get(table).copied().unwrap_or(0);
            sqlx::query(&format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), GREATEST(COALESCE(MAX({c}), 0), $3, 1), \
                 GREATEST(COALESCE(MAX({c}), 0), $3) > 0) FROM {t}",
                c = quoted(column),
                t = quoted(table)
            ))
            .bind(table)
            .bind(column)
            .bind(floor)
            .execute(&mut *pg)
            .await?;
        }
        copied.push(Copied { table: table.clone(), rows: count });
    }
    lite.rollback().await?;
    pg.commit().await?;
    Ok(copied)
}

impl Value {
    fn size(&self) -> usize {
        match self {
            Value::Text(Some(s)) => s.len(),
            Value::Bytes(Some(b)) => b.len(),
            _ => 8,
        }
    }
}

async fn insert(pg: &mut sqlx::PgConnection, table: &str, list: &str, rows: Vec<Vec<Value>>) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut q = QueryBuilder::<sqlx::Postgres>::new(format!("INSERT INTO {} ({list}) ", quoted(table)));
    q.push_values(rows, |mut b, row| {
        for v in row {
            match v {
                Value::Int(x) => b.push_bind(x),
                Value::Bool(x) => b.push_bind(x),
                Value::Real(x) => b.push_bind(x),
                Value::Text(x) => b.push_bind(x),
                Value::Bytes(x) => b.push_bind(x),
            };
        }
    });
    Ok(q.build().execute(pg).await?.rows_affected())
}

/// The tables ordered so that every table comes after the tables it references (a
/// reference to itself does not count).
fn parents_first(tables: &[String], references: &[(String, String)]) -> Result<Vec<String>> {
    let mut pending: BTreeMap<&str, BTreeSet<&str>> = tables.iter().map(|t| (t.as_str(), BTreeSet::new())).collect();
    for (child, parent) in references.iter().filter(|(c, p)| c != p) {
        if let Some(parents) = pending.get_mut(child.as_str()) {
            parents.insert(parent.as_str());
        }
    }
    let mut order = Vec::with_capacity(tables.len());
    while !pending.is_empty() {
        let ready: Vec<&str> = pending.iter().filter(|(_, p)| p.is_empty()).map(|(t, _)| *t).collect();
        if ready.is_empty() {
            return Err(StorageError::Corrupt(format!("foreign keys form a cycle among {:?}", pending.keys())));
        }
        for t in ready {
            pending.remove(t);
            for parents in pending.values_mut() {
                parents.remove(t);
            }
            order.push(t.to_string());
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_come_first_and_cycles_are_refused() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let r = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        let order = parents_first(
            &t(&["messages", "mailboxes", "subscribers", "tree"]),
            &r(&[
                ("messages", "mailboxes"),
                ("mailboxes", "subscribers"),
                ("messages", "subscribers"),
                ("tree", "tree"),
            ]),
        )
        .unwrap();
        let at = |x: &str| order.iter().position(|t| t == x).unwrap();
        assert!(at("subscribers") < at("mailboxes") && at("mailboxes") < at("messages"), "{order:?}");
        assert!(parents_first(&t(&["a", "b"]), &r(&[("a", "b"), ("b", "a")])).is_err());
    }
}
