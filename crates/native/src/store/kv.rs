//! The KV namespace.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{BatchCommit, Store, StoreError};

impl Store {
    /// Returns the value of `key`, or `None` if the key is missing.
    ///
    /// # Errors
    ///
    /// Fails if the read fails.
    pub fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let value = self
            .conn
            .prepare_cached("SELECT value FROM kv WHERE key = ?1")?
            .query_row([key], |row| row.get(0))
            .optional()?;
        Ok(value)
    }

    /// Returns the values of those `keys` that exist.
    ///
    /// # Errors
    ///
    /// Fails if the read fails.
    pub fn kv_get_many(&self, keys: &[String]) -> Result<HashMap<String, String>, StoreError> {
        read_values(&self.conn, keys)
    }

    /// Writes `value` under `key`, replacing any value it had.
    ///
    /// # Errors
    ///
    /// Fails if the write fails.
    pub fn kv_put(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.kv_put_many(&[(key.to_owned(), value.to_owned())])
    }

    /// Writes all `entries` in one transaction, replacing existing values.
    ///
    /// # Errors
    ///
    /// Fails if a write fails; then nothing is written.
    pub fn kv_put_many(&mut self, entries: &[(String, String)]) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut statement = tx.prepare_cached(
                "INSERT INTO kv (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?;
            for (key, value) in entries {
                statement.execute(params![key, value])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes `key` and returns whether it existed.
    ///
    /// # Errors
    ///
    /// Fails if the write fails.
    pub fn kv_delete(&mut self, key: &str) -> Result<bool, StoreError> {
        let deleted = self.conn.execute("DELETE FROM kv WHERE key = ?1", [key])?;
        Ok(deleted > 0)
    }

    /// Returns the keys that start with `prefix`, in byte order.
    ///
    /// # Errors
    ///
    /// Fails if the read fails.
    pub fn kv_list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // `substr` compares bytes exactly, where LIKE would treat `%` and `_` as wildcards.
        let mut statement = self
            .conn
            .prepare("SELECT key FROM kv WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key")?;
        let keys = statement
            .query_map([prefix], |row| row.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(keys)
    }
}

impl BatchCommit<'_> {
    /// Returns the values of those `keys` that exist, read inside this transaction.
    ///
    /// # Errors
    ///
    /// Fails if the read fails.
    pub fn kv_get_many(&self, keys: &[String]) -> Result<HashMap<String, String>, StoreError> {
        read_values(self.connection(), keys)
    }
}

fn read_values(conn: &Connection, keys: &[String]) -> Result<HashMap<String, String>, StoreError> {
    let mut statement = conn.prepare_cached("SELECT value FROM kv WHERE key = ?1")?;
    let mut values = HashMap::with_capacity(keys.len());

    for key in keys {
        let value: Option<String> = statement.query_row([key], |row| row.get(0)).optional()?;
        if let Some(value) = value {
            values.insert(key.clone(), value);
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("store.db")).expect("open");
        (dir, store)
    }

    #[test]
    fn put_get_replace_delete() {
        let (_dir, mut store) = temp_store();

        store
            .kv_put("formats:78729", "[\"rgb_light\"]")
            .expect("put");
        store
            .kv_put("formats:78729", "[\"rgb_light\", \"bw\"]")
            .expect("replace");

        assert_eq!(
            store.kv_get("formats:78729").expect("get").as_deref(),
            Some("[\"rgb_light\", \"bw\"]")
        );
        assert!(store.kv_delete("formats:78729").expect("delete"));
        assert!(!store.kv_delete("formats:78729").expect("second delete"));
        assert_eq!(store.kv_get("formats:78729").expect("get"), None);
    }

    #[test]
    fn list_matches_prefix_literally() {
        let (_dir, mut store) = temp_store();
        let entries = [("formats:1", "a"), ("formats%2", "b"), ("other", "c")]
            .map(|(key, value)| (key.to_owned(), value.to_owned()));
        store.kv_put_many(&entries).expect("put");

        assert_eq!(store.kv_list("formats:").expect("list"), ["formats:1"]);
        assert_eq!(store.kv_list("").expect("list").len(), 3);
    }
}
