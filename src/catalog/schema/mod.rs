//! The catalog's schema, versioned: each backend's migrations in order, and which of them
//! a database still needs.
//!
//! A database records the version it is at in `schema_version` (one row). Opening the
//! catalog applies the migrations after that version, each in one transaction with its
//! version update, so a crash leaves the database at a version it fully has. A database
//! at a later version than this build knows (a newer layerpipe wrote it) is refused
//! rather than written with assumptions that no longer hold. A change to the schema is a
//! new migration at the end of both lists, never an edit of one that has shipped.

/// One step of the schema.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// The version the database is at once the step has run, from 1.
    pub version: u32,
    /// The statements, run as one batch.
    pub sql: &'static str,
}

/// SQLite's migrations, in order.
pub const SQLITE: &[Migration] = &[
    Migration { version: 1, sql: include_str!("sqlite_1.sql") },
    Migration { version: 2, sql: include_str!("sqlite_2.sql") },
];

/// PostgreSQL's migrations, in order.
pub const POSTGRES: &[Migration] = &[
    Migration { version: 1, sql: include_str!("postgres_1.sql") },
    Migration { version: 2, sql: include_str!("postgres_2.sql") },
];

/// Creates the version table; `schema_version` then holds at most one row.
pub const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)";

/// The migrations a database at `current` (0: new) still needs, or why it cannot be used.
pub fn pending(migrations: &'static [Migration], current: u32) -> Result<&'static [Migration], String> {
    let latest = migrations.last().map_or(0, |m| m.version);
    if current > latest {
        return Err(format!(
            "the catalog's schema is at version {current}, newer than this layerpipe knows ({latest}): \
             upgrade layerpipe, or point catalog.url at another catalog"
        ));
    }
    Ok(&migrations[migrations.iter().position(|m| m.version > current).unwrap_or(migrations.len())..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_up_from_one_in_both_lists() {
        for list in [SQLITE, POSTGRES] {
            for (i, m) in list.iter().enumerate() {
                assert_eq!(m.version as usize, i + 1);
            }
        }
        assert_eq!(SQLITE.len(), POSTGRES.len(), "the backends move together");
    }

    #[test]
    fn only_later_migrations_run_and_a_newer_database_is_refused() {
        assert_eq!(pending(SQLITE, 0).unwrap().len(), SQLITE.len());
        assert!(pending(SQLITE, SQLITE.len() as u32).unwrap().is_empty());
        let e = pending(SQLITE, 99).unwrap_err();
        assert!(e.contains("version 99") && e.contains("newer"), "{e}");
    }
}
