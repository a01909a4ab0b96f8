//! Table administration: create, describe, enable, disable, delete, as
//! HBase's master does it. A table must be disabled before it is deleted.

use std::collections::BTreeMap;

use hbase_thrift::hbase::{ColumnDescriptor, TRegionInfo};

use super::errors::{self, show};
use super::state::{State, now_ms, parse_column};
use super::table::Table;

/// `createTable`.
pub fn create(
    state: &mut State,
    name: &[u8],
    descriptors: Vec<ColumnDescriptor>,
) -> thrift::Result<()> {
    check_table_name(name)?;
    if state.tables.contains_key(name) {
        return Err(errors::already_exists("table name already in use"));
    }
    if descriptors.is_empty() {
        return Err(errors::io(
            "org.apache.hadoop.hbase.DoNotRetryIOException: Table should have at least one column family. Set hbase.table.sanity.checks to false at conf or table descriptor if you want to bypass sanity checks",
            false,
        ));
    }
    let mut families = BTreeMap::new();
    for d in descriptors {
        let (family, descriptor) = normalise(d)?;
        if families.insert(family.clone(), descriptor).is_some() {
            return Err(errors::illegal(format!(
                "java.lang.IllegalArgumentException: Column family '{}' already exists",
                show(&family)
            )));
        }
    }
    state
        .tables
        .insert(name.to_vec(), Table::new(families, now_ms()));
    Ok(())
}

/// Compression names HBase knows (lower case).
const COMPRESSIONS: &[&str] = &[
    "none", "gz", "lzo", "snappy", "lz4", "bzip2", "zstd", "lzma",
];

/// Bloom filter types HBase knows.
const BLOOM_TYPES: &[&str] = &["NONE", "ROW", "ROWCOL", "ROWPREFIX_FIXED_LENGTH"];

/// A family's descriptor with Thrift1's defaults filled in and its name
/// written `family:`, as `getColumnDescriptors` returns it.
fn normalise(d: ColumnDescriptor) -> thrift::Result<(Vec<u8>, ColumnDescriptor)> {
    let written = d.name.clone().unwrap_or_default();
    let (family, _) = parse_column(&written);
    let bad = |why: &str| {
        errors::illegal(format!(
            "java.lang.IllegalArgumentException: Column Family name `{}` {why}",
            show(&family)
        ))
    };
    if family.is_empty() {
        return Err(bad("is empty"));
    }
    if family[0] == b'.' {
        return Err(bad("cannot start with a period (.)"));
    }
    if family.iter().any(|b| b.is_ascii_control()) {
        return Err(bad("cannot contain control characters or colons"));
    }
    // HBase parses these by name, so the empty strings of the generated
    // `ColumnDescriptor::default()` (not the IDL's "NONE") are refused.
    let compression = d.compression.unwrap_or_else(|| "NONE".into());
    if !COMPRESSIONS.contains(&compression.to_ascii_lowercase().as_str()) {
        return Err(errors::illegal(format!(
            "java.lang.IllegalArgumentException: Unsupported compression algorithm name: {}",
            compression.to_ascii_lowercase()
        )));
    }
    let bloom = d.bloom_filter_type.unwrap_or_else(|| "NONE".into());
    if !BLOOM_TYPES.contains(&bloom.as_str()) {
        return Err(errors::illegal(format!(
            "java.lang.IllegalArgumentException: No enum constant org.apache.hadoop.hbase.regionserver.BloomType.{bloom}"
        )));
    }
    let max_versions = d.max_versions.unwrap_or(3);
    if max_versions < 1 {
        return Err(errors::illegal(format!(
            "java.lang.IllegalArgumentException: Maximum versions must be positive; got {max_versions} for family {}",
            show(&family)
        )));
    }
    let mut name = family.clone();
    name.push(b':');
    let descriptor = ColumnDescriptor {
        name: Some(name),
        max_versions: Some(max_versions),
        compression: Some(compression.to_ascii_uppercase()),
        in_memory: Some(d.in_memory.unwrap_or(false)),
        bloom_filter_type: Some(bloom),
        bloom_filter_vector_size: Some(d.bloom_filter_vector_size.unwrap_or(0)),
        bloom_filter_nb_hashes: Some(d.bloom_filter_nb_hashes.unwrap_or(0)),
        block_cache_enabled: Some(d.block_cache_enabled.unwrap_or(false)),
        // No time to live (or 0) means forever. The emulator keeps the
        // setting but expires nothing.
        time_to_live: Some(d.time_to_live.filter(|t| *t > 0).unwrap_or(i32::MAX)),
    };
    Ok((family, descriptor))
}

/// HBase's rules for table names: an optional `namespace:`, then
/// letters, digits, `_`, `-` and `.`, not starting with `.` or `-`.
fn check_table_name(name: &[u8]) -> thrift::Result<()> {
    let (namespace, qualifier) = match name.iter().position(|&b| b == b':') {
        Some(i) => (Some(&name[..i]), &name[i + 1..]),
        None => (None, name),
    };
    let illegal = |message: String| {
        Err(errors::illegal(format!(
            "java.lang.IllegalArgumentException: {message}"
        )))
    };
    if let Some(ns) = namespace
        && (ns.is_empty() || !ns.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_'))
    {
        return illegal(format!(
            "Illegal character in namespace of {}; namespaces may only contain 'alphanumeric characters' and '_'",
            show(name)
        ));
    }
    if qualifier.is_empty() {
        return illegal("Table qualifier must not be empty".into());
    }
    if matches!(qualifier[0], b'.' | b'-') {
        return illegal(format!(
            "Illegal first character <{}> at 0. User-space table qualifiers can only start with 'alphanumeric characters' from any language: {}",
            qualifier[0],
            show(qualifier)
        ));
    }
    if let Some((i, b)) = qualifier
        .iter()
        .enumerate()
        .find(|(_, b)| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')))
    {
        return illegal(format!(
            "Illegal character code:{b}, <{}> at {i}. User-space table qualifiers may only contain 'alphanumeric characters' and digits: {}",
            show(&[*b]),
            show(qualifier)
        ));
    }
    Ok(())
}

/// `getColumnDescriptors`: keyed `family:`.
pub fn describe(state: &State, name: &[u8]) -> thrift::Result<BTreeMap<Vec<u8>, ColumnDescriptor>> {
    let table = state
        .tables
        .get(name)
        .ok_or_else(|| errors::table_not_found(name))?;
    Ok(table
        .families
        .values()
        .map(|d| (d.name.clone().unwrap_or_default(), d.clone()))
        .collect())
}

/// `getTableRegions`: the emulator serves every table as one region.
pub fn regions(state: &State, name: &[u8]) -> thrift::Result<Vec<TRegionInfo>> {
    let table = state
        .tables
        .get(name)
        .ok_or_else(|| errors::table_not_found(name))?;
    let mut region = name.to_vec();
    region.extend_from_slice(format!(",,{}.", table.created_ms).as_bytes());
    Ok(vec![TRegionInfo::new(
        Vec::new(),
        Vec::new(),
        table.created_ms,
        region,
        1,
        b"127.0.0.1".to_vec(),
        16020,
    )])
}

/// `enableTable` / `disableTable`.
pub fn set_enabled(state: &mut State, name: &[u8], enabled: bool) -> thrift::Result<()> {
    let table = state.existing_mut(name)?;
    if table.enabled == enabled {
        let class = if enabled {
            "TableNotDisabledException"
        } else {
            "TableNotEnabledException"
        };
        return Err(errors::io(
            format!("org.apache.hadoop.hbase.{class}: {}", show(name)),
            false,
        ));
    }
    table.enabled = enabled;
    Ok(())
}

/// `deleteTable`: only a disabled table.
pub fn delete(state: &mut State, name: &[u8]) -> thrift::Result<()> {
    if state.existing_mut(name)?.enabled {
        return Err(errors::io(
            format!(
                "org.apache.hadoop.hbase.TableNotDisabledException: {}",
                show(name)
            ),
            false,
        ));
    }
    state.tables.remove(name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_follow_hbase_rules() {
        for good in ["messages", "a.b-c_d", "ns:t1", "T"] {
            assert!(check_table_name(good.as_bytes()).is_ok(), "{good}");
        }
        for bad in ["", ".x", "-x", "a b", "ns:", ":t", "bad/name"] {
            assert!(check_table_name(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
