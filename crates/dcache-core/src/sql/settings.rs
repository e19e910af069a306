//! The statements on the `Settings` table: a setting's value, the counters (`count`, `size`,
//! `hits`, `misses`), storing a setting.

use dcache_disk::{SqlRef, SqlValue};

use crate::error::Result;
use crate::sql::Db;
use crate::sqlval::{Bind, from_rusqlite, opt_f64};

const SETTING_VALUE: &str = "SELECT value FROM Settings WHERE key = ?1";
const ADD_TO_SETTING: &str = "UPDATE Settings SET value = value + ?2 WHERE key = ?1";
const PUT_SETTING: &str = "INSERT OR REPLACE INTO Settings VALUES (?1, ?2)";
const PUT_METADATA: &str = "INSERT OR IGNORE INTO Settings VALUES (?1, 0)";
const SET_COUNTER: &str = "UPDATE Settings SET value = ?1 WHERE key = ?2";

impl Db<'_> {
    /// A counter row of `Settings` (`count`, `size`, `hits`, `misses`); 0 when missing or not
    /// a number.
    pub(crate) fn counter(&self, name: &str) -> Result<i64> {
        let value = self.first_row(SETTING_VALUE, [name], |r| r.get_ref(0).map(opt_f64))?;
        Ok(value.flatten().map_or(0, |v| v as i64))
    }

    /// A setting's value as stored, `None` without its row.
    pub(crate) fn setting(&self, name: &str) -> Result<Option<SqlValue>> {
        self.first_row(SETTING_VALUE, [name], |r| r.get(0).map(from_rusqlite))
    }

    /// Sets a counter row that exists.
    pub(crate) fn set_counter(&self, name: &str, value: i64) -> Result<()> {
        self.execute(SET_COUNTER, (value, name)).map(drop)
    }

    /// Adds `delta` to a counter row.
    pub(crate) fn add_to_counter(&self, name: &str, delta: i64) -> Result<()> {
        self.execute(ADD_TO_SETTING, (name, delta)).map(drop)
    }

    /// Creates a counter row at 0 unless it exists.
    pub(crate) fn create_counter(&self, name: &str) -> Result<()> {
        self.execute(PUT_METADATA, [name]).map(drop)
    }

    /// Stores a setting, replacing its value.
    pub(crate) fn put_setting(&self, name: &str, value: SqlRef<'_>) -> Result<()> {
        self.execute(PUT_SETTING, (name, Bind(value))).map(drop)
    }
}
