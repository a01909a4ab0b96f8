//! The Thrift1 service: every call of `Hbase.thrift`, handed to the module
//! that does it under the emulator's one lock. Calls HBase has but the
//! runner never makes (increments, appends, checkAndPut, ACLs, region
//! lookups by row) answer with an `ApplicationError`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use hbase_thrift::hbase::{
    BatchMutation, ColumnDescriptor, HbaseSyncHandler, Mutation, ScannerID, TAccessControlEntity,
    TAppend, TCell, TIncrement, TRegionInfo, TRowResult, TScan, TThriftServerType, Text,
};

use super::read::LATEST;
use super::scanner::{self, ScanSpec};
use super::state::{State, now_ms};
use super::{admin, errors, mutate, read};

type Attributes = BTreeMap<Text, Text>;

/// Serves Thrift1 calls from the shared state.
#[derive(Debug, Clone)]
pub struct Handler {
    state: Arc<Mutex<State>>,
}

impl Handler {
    /// A handler of `state`.
    pub fn new(state: Arc<Mutex<State>>) -> Self {
        Handler { state }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl HbaseSyncHandler for Handler {
    fn handle_enable_table(&self, table_name: Vec<u8>) -> thrift::Result<()> {
        admin::set_enabled(&mut self.lock(), &table_name, true)
    }

    fn handle_disable_table(&self, table_name: Vec<u8>) -> thrift::Result<()> {
        admin::set_enabled(&mut self.lock(), &table_name, false)
    }

    fn handle_is_table_enabled(&self, table_name: Vec<u8>) -> thrift::Result<bool> {
        Ok(self.lock().existing_mut(&table_name)?.enabled)
    }

    fn handle_compact(&self, table_name: Vec<u8>) -> thrift::Result<()> {
        // A minor compaction changes nothing a read can see.
        self.lock().existing_mut(&table_name).map(|_| ())
    }

    fn handle_major_compact(&self, table_name: Vec<u8>) -> thrift::Result<()> {
        self.lock().existing_mut(&table_name)?.major_compact();
        Ok(())
    }

    fn handle_get_table_names(&self) -> thrift::Result<Vec<Text>> {
        Ok(self.lock().tables.keys().cloned().collect())
    }

    fn handle_get_table_names_with_is_table_enabled(&self) -> thrift::Result<BTreeMap<Text, bool>> {
        Ok(self
            .lock()
            .tables
            .iter()
            .map(|(name, t)| (name.clone(), t.enabled))
            .collect())
    }

    fn handle_get_column_descriptors(
        &self,
        table_name: Text,
    ) -> thrift::Result<BTreeMap<Text, ColumnDescriptor>> {
        admin::describe(&self.lock(), &table_name)
    }

    fn handle_get_table_regions(&self, table_name: Text) -> thrift::Result<Vec<TRegionInfo>> {
        admin::regions(&self.lock(), &table_name)
    }

    fn handle_create_table(
        &self,
        table_name: Text,
        column_families: Vec<ColumnDescriptor>,
    ) -> thrift::Result<()> {
        admin::create(&mut self.lock(), &table_name, column_families)
    }

    fn handle_delete_table(&self, table_name: Text) -> thrift::Result<()> {
        admin::delete(&mut self.lock(), &table_name)
    }

    fn handle_get(
        &self,
        table_name: Text,
        row: Text,
        column: Text,
        _: Attributes,
    ) -> thrift::Result<Vec<TCell>> {
        read::versions(&self.lock(), &table_name, &row, &column, LATEST, 1)
    }

    fn handle_get_ver(
        &self,
        table_name: Text,
        row: Text,
        column: Text,
        num_versions: i32,
        _: Attributes,
    ) -> thrift::Result<Vec<TCell>> {
        read::versions(
            &self.lock(),
            &table_name,
            &row,
            &column,
            LATEST,
            num_versions,
        )
    }

    fn handle_get_ver_ts(
        &self,
        table_name: Text,
        row: Text,
        column: Text,
        timestamp: i64,
        num_versions: i32,
        _: Attributes,
    ) -> thrift::Result<Vec<TCell>> {
        read::versions(
            &self.lock(),
            &table_name,
            &row,
            &column,
            timestamp,
            num_versions,
        )
    }

    fn handle_get_row(
        &self,
        table_name: Text,
        row: Text,
        _: Attributes,
    ) -> thrift::Result<Vec<TRowResult>> {
        read::rows(&self.lock(), &table_name, &[row], &[], LATEST)
    }

    fn handle_get_row_with_columns(
        &self,
        table_name: Text,
        row: Text,
        columns: Vec<Text>,
        _: Attributes,
    ) -> thrift::Result<Vec<TRowResult>> {
        read::rows(&self.lock(), &table_name, &[row], &columns, LATEST)
    }

    fn handle_get_row_ts(
        &self,
        table_name: Text,
        row: Text,
        timestamp: i64,
        _: Attributes,
    ) -> thrift::Result<Vec<TRowResult>> {
        read::rows(&self.lock(), &table_name, &[row], &[], timestamp)
    }

    fn handle_get_row_with_columns_ts(
        &self,
        table_name: Text,
        row: Text,
        columns: Vec<Text>,
        timestamp: i64,
        _: Attributes,
    ) -> thrift::Result<Vec<TRowResult>> {
        read::rows(&self.lock(), &table_name, &[row], &columns, timestamp)
    }

    fn handle_get_rows(
        &self,
        table_name: Text,
        rows: Vec<Text>,
        _: Attributes,
    ) -> thrift::Result<Vec<TRowResult>> {
        read::rows(&self.lock(), &table_name, &rows, &[], LATEST)
    }

    fn handle_get_rows_with_columns(
        &self,
        table_name: Text,
        rows: Vec<Text>,
        columns: Vec<Text>,
        _: Attributes,
    ) -> thrift::Result<Vec<TRowResult>> {
        read::rows(&self.lock(), &table_name, &rows, &columns, LATEST)
    }

    fn handle_get_rows_ts(
        &self,
        table_name: Text,
        rows: Vec<Text>,
        timestamp: i64,
        _: Attributes,
    ) -> thrift::Result<Vec<TRowResult>> {
        read::rows(&self.lock(), &table_name, &rows, &[], timestamp)
    }

    fn handle_get_rows_with_columns_ts(
        &self,
        table_name: Text,
        rows: Vec<Text>,
        columns: Vec<Text>,
        timestamp: i64,
        _: Attributes,
    ) -> thrift::Result<Vec<TRowResult>> {
        read::rows(&self.lock(), &table_name, &rows, &columns, timestamp)
    }

    fn handle_mutate_row(
        &self,
        table_name: Text,
        row: Text,
        mutations: Vec<Mutation>,
        _: Attributes,
    ) -> thrift::Result<()> {
        mutate::row(&mut self.lock(), &table_name, row, mutations, now_ms())
    }

    fn handle_mutate_row_ts(
        &self,
        table_name: Text,
        row: Text,
        mutations: Vec<Mutation>,
        timestamp: i64,
        _: Attributes,
    ) -> thrift::Result<()> {
        mutate::row(&mut self.lock(), &table_name, row, mutations, timestamp)
    }

    fn handle_mutate_rows(
        &self,
        table_name: Text,
        row_batches: Vec<BatchMutation>,
        _: Attributes,
    ) -> thrift::Result<()> {
        mutate::rows(
            &mut self.lock(),
            &table_name,
            batches(row_batches),
            now_ms(),
        )
    }

    fn handle_mutate_rows_ts(
        &self,
        table_name: Text,
        row_batches: Vec<BatchMutation>,
        timestamp: i64,
        _: Attributes,
    ) -> thrift::Result<()> {
        mutate::rows(
            &mut self.lock(),
            &table_name,
            batches(row_batches),
            timestamp,
        )
    }

    fn handle_atomic_increment(&self, _: Text, _: Text, _: Text, _: i64) -> thrift::Result<i64> {
        Err(errors::not_implemented("atomicIncrement"))
    }

    fn handle_delete_all(
        &self,
        table_name: Text,
        row: Text,
        column: Text,
        _: Attributes,
    ) -> thrift::Result<()> {
        mutate::delete_column(&mut self.lock(), &table_name, &row, &column, now_ms())
    }

    fn handle_delete_all_ts(
        &self,
        table_name: Text,
        row: Text,
        column: Text,
        timestamp: i64,
        _: Attributes,
    ) -> thrift::Result<()> {
        mutate::delete_column(&mut self.lock(), &table_name, &row, &column, timestamp)
    }

    fn handle_delete_all_row(
        &self,
        table_name: Text,
        row: Text,
        _: Attributes,
    ) -> thrift::Result<()> {
        mutate::delete_row(&mut self.lock(), &table_name, &row, now_ms())
    }

    fn handle_increment(&self, _: TIncrement) -> thrift::Result<()> {
        Err(errors::not_implemented("increment"))
    }

    fn handle_increment_rows(&self, _: Vec<TIncrement>) -> thrift::Result<()> {
        Err(errors::not_implemented("incrementRows"))
    }

    fn handle_delete_all_row_ts(
        &self,
        table_name: Text,
        row: Text,
        timestamp: i64,
        _: Attributes,
    ) -> thrift::Result<()> {
        mutate::delete_row(&mut self.lock(), &table_name, &row, timestamp)
    }

    fn handle_scanner_open_with_scan(
        &self,
        table_name: Text,
        scan: TScan,
        _: Attributes,
    ) -> thrift::Result<ScannerID> {
        let spec = ScanSpec::from_tscan(scan)?;
        scanner::open(&mut self.lock(), &table_name, spec)
    }

    fn handle_scanner_open(
        &self,
        table_name: Text,
        start_row: Text,
        columns: Vec<Text>,
        _: Attributes,
    ) -> thrift::Result<ScannerID> {
        let spec = spec(start_row, Vec::new(), columns, LATEST);
        scanner::open(&mut self.lock(), &table_name, spec)
    }

    fn handle_scanner_open_with_stop(
        &self,
        table_name: Text,
        start_row: Text,
        stop_row: Text,
        columns: Vec<Text>,
        _: Attributes,
    ) -> thrift::Result<ScannerID> {
        let spec = spec(start_row, stop_row, columns, LATEST);
        scanner::open(&mut self.lock(), &table_name, spec)
    }

    fn handle_scanner_open_with_prefix(
        &self,
        table_name: Text,
        start_and_prefix: Text,
        columns: Vec<Text>,
        _: Attributes,
    ) -> thrift::Result<ScannerID> {
        let stop = scanner::prefix_end(&start_and_prefix);
        let spec = spec(start_and_prefix, stop, columns, LATEST);
        scanner::open(&mut self.lock(), &table_name, spec)
    }

    fn handle_scanner_open_ts(
        &self,
        table_name: Text,
        start_row: Text,
        columns: Vec<Text>,
        timestamp: i64,
        _: Attributes,
    ) -> thrift::Result<ScannerID> {
        let spec = spec(start_row, Vec::new(), columns, timestamp);
        scanner::open(&mut self.lock(), &table_name, spec)
    }

    fn handle_scanner_open_with_stop_ts(
        &self,
        table_name: Text,
        start_row: Text,
        stop_row: Text,
        columns: Vec<Text>,
        timestamp: i64,
        _: Attributes,
    ) -> thrift::Result<ScannerID> {
        let spec = spec(start_row, stop_row, columns, timestamp);
        scanner::open(&mut self.lock(), &table_name, spec)
    }

    fn handle_scanner_get(&self, id: ScannerID) -> thrift::Result<Vec<TRowResult>> {
        scanner::next(&mut self.lock(), id, 1)
    }

    fn handle_scanner_get_list(
        &self,
        id: ScannerID,
        nb_rows: i32,
    ) -> thrift::Result<Vec<TRowResult>> {
        scanner::next(&mut self.lock(), id, nb_rows)
    }

    fn handle_scanner_close(&self, id: ScannerID) -> thrift::Result<()> {
        scanner::close(&mut self.lock(), id)
    }

    fn handle_get_region_info(&self, _: Text) -> thrift::Result<TRegionInfo> {
        Err(errors::not_implemented("getRegionInfo"))
    }

    fn handle_append(&self, _: TAppend) -> thrift::Result<Vec<TCell>> {
        Err(errors::not_implemented("append"))
    }

    fn handle_check_and_put(
        &self,
        _: Text,
        _: Text,
        _: Text,
        _: Text,
        _: Mutation,
        _: Attributes,
    ) -> thrift::Result<bool> {
        Err(errors::not_implemented("checkAndPut"))
    }

    fn handle_get_thrift_server_type(&self) -> thrift::Result<TThriftServerType> {
        Ok(TThriftServerType::ONE)
    }

    fn handle_get_cluster_id(&self) -> thrift::Result<String> {
        Ok("switchyard-hbase-emulator".into())
    }

    fn handle_grant(&self, _: TAccessControlEntity) -> thrift::Result<bool> {
        Err(errors::not_implemented("grant"))
    }

    fn handle_revoke(&self, _: TAccessControlEntity) -> thrift::Result<bool> {
        Err(errors::not_implemented("revoke"))
    }
}

fn batches(row_batches: Vec<BatchMutation>) -> Vec<(Vec<u8>, Vec<Mutation>)> {
    row_batches
        .into_iter()
        .map(|b| (b.row.unwrap_or_default(), b.mutations.unwrap_or_default()))
        .collect()
}

fn spec(start: Text, stop: Text, columns: Vec<Text>, before: i64) -> ScanSpec {
    ScanSpec {
        start,
        stop,
        columns,
        before,
        ..ScanSpec::default()
    }
}
