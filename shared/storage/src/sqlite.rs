//! SQLite: the embedded default. One file, WAL journal (readers never wait for the writer),
//! `synchronous = FULL` so a committed quarantine survives a power cut, not only a crash,
//! before its message is deleted from the POP3 server.

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use crate::{Result, StorageError, common::impl_database};

#[derive(Clone)]
pub struct Sqlite {
    pool: SqlitePool,
}

impl Sqlite {
    /// Opens (creating the file and its folder if needed) a `sqlite://` database.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        if let Some(dir) = Path::new(options.get_filename()).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StorageError::Sqlx(sqlx::Error::Io(e)))?;
        }
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Writes a consistent copy of the database to `path` (which must not exist) while it
    /// is in use: `VACUUM INTO` reads it in one transaction, so writers go on meanwhile
    /// (WAL) and the copy is one moment's state, compacted.
    pub async fn backup_into(&self, path: &Path) -> Result<()> {
        let target = path.to_str().ok_or_else(|| StorageError::Corrupt(format!("{} is not UTF-8", path.display())))?;
        sqlx::query("VACUUM INTO $1").bind(target).execute(&self.pool).await?;
        Ok(())
    }
}

// SQLite runs one writer at a time, so each single-statement lease is atomic without a
// row-locking clause.
impl_database!(Sqlite, "../../migrations/sqlite", "");
