//! The tables a store uses: HBase's rules for their names, creating the
//! missing ones, and checking that existing ones have the families the
//! workflow lists.

use std::collections::{BTreeMap, BTreeSet};

use hbase_thrift::hbase::{ColumnDescriptor, THbaseSyncClient};

use super::errors::{Failure, already_exists};
use super::pool::Pool;

/// HBase's rules for a table name: an optional `namespace:`, then letters,
/// digits, `_`, `-` and `.`, not starting with `.` or `-`.
pub fn check_table_name(name: &str) -> Result<(), String> {
    let (namespace, table) = match name.split_once(':') {
        Some((ns, t)) => (Some(ns), t),
        None => (None, name),
    };
    let ok_namespace = namespace.is_none_or(|ns| {
        !ns.is_empty() && ns.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    let ok_table = !table.is_empty()
        && !table.starts_with(['.', '-'])
        && table
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok_namespace && ok_table {
        Ok(())
    } else {
        Err(format!(
            "invalid HBase table name `{name}`; use letters, digits, `_`, `-` and `.` (not first), optionally after `namespace:`"
        ))
    }
}

/// HBase's rules for a column family name: not empty, no `:`, no control
/// characters, not starting with `.`.
pub fn check_family_name(family: &str) -> Result<(), String> {
    if family.is_empty()
        || family.starts_with('.')
        || family.chars().any(|c| c == ':' || c.is_control())
    {
        return Err(format!(
            "invalid column family name `{family}`; it must not be empty, start with `.` or hold `:`"
        ));
    }
    Ok(())
}

/// The families of `table`, `None` when it does not exist.
pub fn families(pool: &Pool, table: &str) -> Result<Option<BTreeSet<String>>, Failure> {
    Ok(versions(pool, table)?.map(|v| v.into_keys().collect()))
}

/// The families of `table` with the versions each keeps, `None` when the
/// table does not exist.
pub fn versions(pool: &Pool, table: &str) -> Result<Option<BTreeMap<String, i32>>, Failure> {
    let described = pool.call(&format!("getColumnDescriptors `{table}`"), |c| {
        c.get_column_descriptors(table.as_bytes().to_vec())
    });
    match described {
        Ok(map) => Ok(Some(
            map.into_iter()
                .map(|(name, descriptor)| {
                    let name = String::from_utf8_lossy(&name).into_owned();
                    let name = name.strip_suffix(':').map(str::to_string).unwrap_or(name);
                    // HBase's default when a server leaves it out.
                    (name, descriptor.max_versions.unwrap_or(1))
                })
                .collect(),
        )),
        Err(f) if f.table_not_found => Ok(None),
        Err(f) => Err(f),
    }
}

/// Why `table` cannot serve reads as of a time, if it cannot: a family
/// that keeps a single version loses a row's history at the next write,
/// so a restore or compare as of an earlier time sees rows that did not
/// exist then, or none at all.
pub fn too_few_versions(table: &str, versions: &BTreeMap<String, i32>) -> Option<String> {
    let (family, kept) = versions.iter().find(|(_, v)| **v < MIN_VERSIONS)?;
    Some(format!(
        "family `{family}` of table `{table}` keeps {kept} version{}, too few for reads as of a time (restore, compare): keep more in HBase (`alter '{table}', {{NAME => '{family}', VERSIONS => 1000}}`)",
        if *kept == 1 { "" } else { "s" }
    ))
}

/// The fewest versions a family must keep for as-of reads.
pub const MIN_VERSIONS: i32 = 2;

/// Creates `table` with `families`, each keeping `max_versions` versions.
/// A table that appeared meanwhile (another runner, or a retried call
/// that had succeeded) is fine.
pub fn create(
    pool: &Pool,
    table: &str,
    families: &[String],
    max_versions: i32,
) -> Result<(), Failure> {
    let descriptors: Vec<ColumnDescriptor> = families
        .iter()
        .map(|f| ColumnDescriptor {
            name: Some(format!("{f}:").into_bytes()),
            max_versions: Some(max_versions),
            // HBase's own defaults. The generated `Default` has empty
            // names here, which HBase refuses, and a time to live of 0.
            compression: Some("NONE".into()),
            in_memory: Some(false),
            bloom_filter_type: Some("NONE".into()),
            bloom_filter_vector_size: Some(0),
            bloom_filter_nb_hashes: Some(0),
            block_cache_enabled: Some(true),
            time_to_live: Some(i32::MAX),
        })
        .collect();
    pool.call(&format!("createTable `{table}`"), |c| {
        match c.create_table(table.as_bytes().to_vec(), descriptors.clone()) {
            Err(e) if already_exists(&e) => Ok(()),
            other => other,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_hbase_rules() {
        assert!(check_table_name("messages").is_ok());
        assert!(check_table_name("chat:messages.v2").is_ok());
        assert!(check_table_name(".meta").is_err());
        assert!(check_table_name("a b").is_err());
        assert!(check_table_name("ns:").is_err());
        assert!(check_family_name("d").is_ok());
        assert!(check_family_name("d:x").is_err());
        assert!(check_family_name("").is_err());
    }
}
