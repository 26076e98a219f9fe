//! The embedded store: one SQLite file with the KV namespace, the queues and the job ledger.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction, so several processes may share one
//! file: SQLite serializes their writes, and WAL lets readers go on meanwhile.

mod kv;
mod queue;
#[cfg(test)]
mod queue_model;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

pub use queue::{BatchCommit, ClaimedMessage};

/// Schema migrations in order. `PRAGMA user_version` stores how many have run.
const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_initial.sql")];

/// Page size of new store files in bytes; an existing file keeps its own. The
/// 29,806-event drain ran about 10% faster with it than with SQLite's default 4 KiB,
/// and slower with 8, 32 or 64 KiB.
const PAGE_SIZE: i64 = 16_384;

/// SQLite's smallest page size, a floor that keeps the division below safe.
const MIN_PAGE_SIZE: i64 = 512;

/// WAL bytes written between automatic checkpoints.
const WAL_AUTOCHECKPOINT_BYTES: i64 = 64 << 20;

/// Page cache size in KiB. The queues and the ledger are written at their ends, so a
/// small cache keeps their hot pages. The 29,806-event drain peaked at 8 MB of RSS
/// with 2 MiB and at 14.5 MB with 8 MiB, and ran no slower.
const CACHE_KIB: i64 = 2_048;

/// Prepared statements kept per connection; more than the store uses, so none is parsed twice.
const STATEMENT_CACHE_CAPACITY: usize = 32;

/// How long a statement waits for another process's write lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// An error from the embedded store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be opened or created.
    #[error("failed to open the store")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// The file was written by a newer version of this binary.
    #[error(
        "the store has schema version {found}, newer than version {known} of this binary; \
         upgrade landscape-dispatcher or pass another --db"
    )]
    NewerSchema {
        path: PathBuf,
        found: usize,
        known: usize,
    },
    /// A statement failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// An open store.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens the store at `path` for reading and writing, creating it and running migrations.
    ///
    /// # Errors
    ///
    /// Fails if the file cannot be opened, is not an SQLite database, or has a newer schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;

        // The page size must be set before WAL mode, which fixes it for the new file.
        conn.pragma_update(None, "page_size", PAGE_SIZE)
            .map_err(open_error)?;

        // WAL lets readers run beside a writer; NORMAL skips the fsync per commit, which
        // in WAL mode can lose the last commits on power loss but never corrupts the file.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_error)?;

        // Each checkpoint costs two fsyncs, so a checkpoint every 64 MiB of WAL (16,384
        // pages of 4 KiB) instead of SQLite's default 1,000 pages keeps them rare in a drain.
        let page_size: i64 = conn
            .pragma_query_value(None, "page_size", |row| row.get(0))
            .map_err(open_error)?;
        conn.pragma_update(
            None,
            "wal_autocheckpoint",
            WAL_AUTOCHECKPOINT_BYTES / page_size.max(MIN_PAGE_SIZE),
        )
        .map_err(open_error)?;
        conn.pragma_update(None, "cache_size", -CACHE_KIB)
            .map_err(open_error)?;
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(open_error)?;

        // The bundled SQLite (3.50) plans with the value bound to `LIMIT ?`, so each new
        // bind parses the cached statement again. A stable query plan avoids that.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(open_error)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);

        let mut store = Self { conn };
        store.migrate(path)?;
        Ok(store)
    }

    /// Opens an existing store read-only; it must already have the current schema.
    ///
    /// # Errors
    ///
    /// Fails if the file is missing, unreadable or has another schema version.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;

        let found = schema_version(&conn)?;
        if found > MIGRATIONS.len() {
            return Err(StoreError::NewerSchema {
                path: path.to_owned(),
                found,
                known: MIGRATIONS.len(),
            });
        }
        Ok(Self { conn })
    }

    /// Runs the migrations the file has not seen yet, each in its own transaction.
    fn migrate(&mut self, path: &Path) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = schema_version(&tx)?;
        if found > MIGRATIONS.len() {
            return Err(StoreError::NewerSchema {
                path: path.to_owned(),
                found,
                known: MIGRATIONS.len(),
            });
        }

        for (index, sql) in MIGRATIONS.iter().enumerate().skip(found) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", index + 1)?;
            tracing::debug!(version = index + 1, "applied store migration");
        }
        tx.commit()?;
        Ok(())
    }
}

fn schema_version(conn: &Connection) -> Result<usize, StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    Ok(usize::try_from(version).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_twice_keeps_schema() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.db");

        Store::open(&path).expect("first open");
        let store = Store::open(&path).expect("second open");

        assert_eq!(
            schema_version(&store.conn).expect("version"),
            MIGRATIONS.len()
        );
    }

    #[test]
    fn new_file_uses_page_size() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("store.db")).expect("open");

        let pragma = |name| -> i64 {
            store
                .conn
                .pragma_query_value(None, name, |row| row.get(0))
                .expect("pragma")
        };

        assert_eq!(pragma("page_size"), PAGE_SIZE);
        assert_eq!(
            pragma("wal_autocheckpoint"),
            WAL_AUTOCHECKPOINT_BYTES / PAGE_SIZE
        );
    }

    #[test]
    fn newer_schema_is_rejected() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.db");
        let store = Store::open(&path).expect("open");
        store
            .conn
            .pragma_update(None, "user_version", 99)
            .expect("set version");
        drop(store);

        let result = Store::open(&path);

        assert!(matches!(
            result,
            Err(StoreError::NewerSchema { found: 99, .. })
        ));
    }
}
