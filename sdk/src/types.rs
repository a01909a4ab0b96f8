//! Plain Rust types of the plugin contract, with no WebAssembly dependency,
//! so that plugin logic can be unit-tested natively with `cargo test`.

use std::fmt;

/// A header of an event, as Kafka carries them.
///
/// ```
/// let h = switchyard_sdk::Header { key: "type".into(), value: b"posted".to_vec() };
/// assert_eq!(h.key, "type");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// Header name.
    pub key: String,
    /// Header value, raw bytes.
    pub value: Vec<u8>,
}

/// One event of the log.
///
/// ```
/// let e = switchyard_sdk::Event::new(0, 7, 1_700_000_000_000, br#"{"type":"posted"}"#);
/// assert_eq!(e.offset, 7);
/// assert_eq!(e.value_str().unwrap(), r#"{"type":"posted"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// Partition of the topic (0 for a single-partition file).
    pub partition: i32,
    /// Position inside the partition.
    pub offset: i64,
    /// Event time in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The event key, if the producer set one.
    pub key: Option<Vec<u8>>,
    /// The event payload.
    pub value: Vec<u8>,
    /// The event headers.
    pub headers: Vec<Header>,
}

impl Event {
    /// An event with a value and no key or headers (handy in tests).
    ///
    /// ```
    /// let e = switchyard_sdk::Event::new(2, 0, 5, b"x");
    /// assert_eq!((e.partition, e.timestamp_ms), (2, 5));
    /// ```
    pub fn new(partition: i32, offset: i64, timestamp_ms: i64, value: &[u8]) -> Self {
        Event {
            partition,
            offset,
            timestamp_ms,
            key: None,
            value: value.to_vec(),
            headers: Vec::new(),
        }
    }

    /// The payload as UTF-8 text, or a [`PluginError::Malformed`] saying it is not.
    ///
    /// ```
    /// let bad = switchyard_sdk::Event::new(0, 0, 0, &[0xff]);
    /// assert!(bad.value_str().is_err());
    /// ```
    pub fn value_str(&self) -> Result<&str, PluginError> {
        std::str::from_utf8(&self.value)
            .map_err(|e| PluginError::Malformed(format!("value is not UTF-8: {e}")))
    }

    /// The value of the first header named `key`.
    ///
    /// ```
    /// let mut e = switchyard_sdk::Event::new(0, 0, 0, b"");
    /// e.headers.push(switchyard_sdk::Header { key: "k".into(), value: b"v".to_vec() });
    /// assert_eq!(e.header("k"), Some(&b"v"[..]));
    /// ```
    pub fn header(&self, key: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.key == key)
            .map(|h| h.value.as_slice())
    }
}

/// One change to a row. Deletes hide what was written at or before the
/// mutation's version, as HBase delete markers do.
///
/// ```
/// use switchyard_sdk::Cell;
/// let c = Cell::put("d", "text", "hello");
/// assert!(matches!(c, Cell::Put { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// Writes `value` to `family:qualifier`.
    Put {
        /// Column family.
        family: String,
        /// Column qualifier.
        qualifier: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Deletes one cell.
    DeleteCell {
        /// Column family.
        family: String,
        /// Column qualifier.
        qualifier: Vec<u8>,
    },
    /// Deletes every cell of a family.
    DeleteFamily {
        /// Column family.
        family: String,
    },
    /// Deletes the whole row.
    DeleteRow,
}

impl Cell {
    /// A put of `value` into `family:qualifier`.
    ///
    /// ```
    /// let c = switchyard_sdk::Cell::put("d", "user", b"u1".to_vec());
    /// # let _ = c;
    /// ```
    pub fn put(
        family: impl Into<String>,
        qualifier: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Self {
        Cell::Put {
            family: family.into(),
            qualifier: qualifier.as_ref().to_vec(),
            value: value.as_ref().to_vec(),
        }
    }

    /// A delete of the cell `family:qualifier`.
    ///
    /// ```
    /// let c = switchyard_sdk::Cell::delete_cell("d", "text");
    /// # let _ = c;
    /// ```
    pub fn delete_cell(family: impl Into<String>, qualifier: impl AsRef<[u8]>) -> Self {
        Cell::DeleteCell {
            family: family.into(),
            qualifier: qualifier.as_ref().to_vec(),
        }
    }
}

/// A versioned change to one row of one table.
///
/// The version must come from the event (its time, a sequence number in the
/// payload), never from the clock: the same event must always yield the same
/// mutation, which is what makes replay idempotent.
///
/// **Ties.** When two events write the same cell at the same version, the
/// later one in log order wins, as in HBase, and every store behaves the
/// same: `qty` 2 then `qty` 10 in one millisecond stores 10. Events of one
/// key in one partition (Kafka's default when the key is the entity id)
/// are applied in log order, so this is usually what you want. Events of
/// different partitions have no order between them, though, and a replay
/// stopped between the two leaves the earlier one on top until it goes on.
/// When ties matter, make versions unique with something the event fixes,
/// such as a per-entity sequence number it carries. (Versions are then no
/// longer event times, so give the compare step an explicit `as_of`.)
///
/// ```
/// use switchyard_sdk::{Cell, Event, PluginError, RowMutation};
/// fn to_rows(event: &Event) -> Result<Vec<RowMutation>, PluginError> {
///     // {"order":"order-7","seq":12,"qty":10}: `seq` grows with every
///     // change of one order, so no two changes share a version.
///     let text = event.value_str()?;
///     let field = |name: &str| {
///         text.split(&format!("\"{name}\":"))
///             .nth(1)
///             .and_then(|rest| rest.split([',', '}']).next())
///             .map(|v| v.trim_matches('"').to_string())
///             .ok_or_else(|| PluginError::Malformed(format!("no `{name}`")))
///     };
///     let seq: u64 = field("seq")?.parse().map_err(|_| PluginError::Malformed("bad `seq`".into()))?;
///     Ok(vec![RowMutation::new("orders", field("order")?, seq).with(Cell::put("d", "qty", field("qty")?))])
/// }
/// let rows = to_rows(&Event::new(0, 5, 1, br#"{"order":"order-7","seq":12,"qty":10}"#)).unwrap();
/// assert_eq!((rows[0].version, &rows[0].row_key[..]), (12, &b"order-7"[..]));
/// ```
///
/// ```
/// use switchyard_sdk::{Cell, RowMutation};
/// let m = RowMutation::new("messages", "room-1/0001", 42).with(Cell::put("d", "text", "hi"));
/// assert_eq!(m.cells.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowMutation {
    /// Logical table name.
    pub table: String,
    /// Row key; rows scan in byte order of their keys.
    pub row_key: Vec<u8>,
    /// The changes, applied together.
    pub cells: Vec<Cell>,
    /// Version of every change in this mutation.
    pub version: u64,
}

impl RowMutation {
    /// An empty mutation of one row at `version`.
    ///
    /// ```
    /// let m = switchyard_sdk::RowMutation::new("t", b"k", 1);
    /// assert!(m.cells.is_empty());
    /// ```
    pub fn new(table: impl Into<String>, row_key: impl AsRef<[u8]>, version: u64) -> Self {
        RowMutation {
            table: table.into(),
            row_key: row_key.as_ref().to_vec(),
            cells: Vec::new(),
            version,
        }
    }

    /// Adds a change and returns the mutation (builder style).
    ///
    /// ```
    /// use switchyard_sdk::{Cell, RowMutation};
    /// let m = RowMutation::new("t", b"k", 1).with(Cell::DeleteRow);
    /// assert_eq!(m.cells, vec![Cell::DeleteRow]);
    /// ```
    pub fn with(mut self, cell: Cell) -> Self {
        self.cells.push(cell);
        self
    }
}

/// A cell read back from a store.
///
/// ```
/// let c = switchyard_sdk::StoredCell { family: "d".into(), qualifier: b"q".to_vec(), value: b"v".to_vec(), version: 3 };
/// assert_eq!(c.version, 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCell {
    /// Column family.
    pub family: String,
    /// Column qualifier.
    pub qualifier: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// The version it was written at.
    pub version: u64,
}

/// A row read back from a store, cells ordered by family then qualifier.
///
/// ```
/// let r = switchyard_sdk::Row { row_key: b"k".to_vec(), cells: vec![] };
/// assert!(r.cell("d", "text").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    /// Row key.
    pub row_key: Vec<u8>,
    /// The visible cells.
    pub cells: Vec<StoredCell>,
}

impl Row {
    /// The cell `family:qualifier`, if the row has it.
    ///
    /// ```
    /// use switchyard_sdk::{Row, StoredCell};
    /// let r = Row { row_key: b"k".to_vec(), cells: vec![StoredCell { family: "d".into(), qualifier: b"q".to_vec(), value: b"v".to_vec(), version: 1 }] };
    /// assert_eq!(r.cell("d", "q").unwrap().value, b"v");
    /// ```
    pub fn cell(&self, family: &str, qualifier: impl AsRef<[u8]>) -> Option<&StoredCell> {
        let qualifier = qualifier.as_ref();
        self.cells
            .iter()
            .find(|c| c.family == family && c.qualifier == qualifier)
    }
}

/// Why a plugin refused its input. The workflow's error policy decides what
/// happens next: fail the step, or dead-letter the input and go on.
///
/// ```
/// let e = switchyard_sdk::PluginError::Malformed("missing `room`".into());
/// assert_eq!(e.to_string(), "malformed input: missing `room`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginError {
    /// The input could not be understood (bad JSON, a missing field).
    Malformed(String),
    /// The input is well formed but of a kind this plugin cannot handle.
    Unsupported(String),
    /// The plugin's configuration is wrong.
    Config(String),
    /// Anything else.
    Other(String),
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginError::Malformed(m) => write!(f, "malformed input: {m}"),
            PluginError::Unsupported(m) => write!(f, "unsupported input: {m}"),
            PluginError::Config(m) => write!(f, "bad configuration: {m}"),
            PluginError::Other(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for PluginError {}

/// The two sides of one key, as a check plugin sees them.
///
/// ```
/// let p = switchyard_sdk::Pair { table: "t".into(), row_key: b"k".to_vec(), blue: None, green: None };
/// assert!(p.blue.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// Logical table name.
    pub table: String,
    /// The key both rows share.
    pub row_key: Vec<u8>,
    /// The row in the blue (old) store, if present.
    pub blue: Option<Row>,
    /// The row in the green (new) store, if present.
    pub green: Option<Row>,
}

/// A check plugin's answer for one pair.
///
/// ```
/// let v = switchyard_sdk::Verdict::Different("text differs".into());
/// assert_ne!(v, switchyard_sdk::Verdict::Equal);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The rows agree.
    Equal,
    /// The rows differ; the text says how, for the report.
    Different(String),
    /// This key is not to be counted either way.
    Ignore,
}

/// The facts of a read request, as a route plugin sees them.
///
/// ```
/// let r = switchyard_sdk::Request { method: "GET".into(), path: "/rooms/1".into(), query: String::new(), headers: vec![("x-user".into(), "u1".into())] };
/// assert_eq!(r.header("X-User"), Some("u1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The query string, without `?`.
    pub query: String,
    /// The headers the workflow selects, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first header named `name`, compared without regard to case.
    ///
    /// ```
    /// let r = switchyard_sdk::Request::default();
    /// assert_eq!(r.header("x-user"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Which side serves a request.
///
/// ```
/// assert_ne!(switchyard_sdk::Side::Blue, switchyard_sdk::Side::Green);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The old store.
    Blue,
    /// The new store.
    Green,
    /// Follow the current percentage shift, bucketed on the sticky key.
    Shift,
}

/// A route plugin's answer.
///
/// ```
/// let d = switchyard_sdk::Decision { side: switchyard_sdk::Side::Shift, sticky_key: Some("u1".into()), mirror: true };
/// assert!(d.mirror);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Where the request goes.
    pub side: Side,
    /// The key to bucket on so one user stays on one side.
    pub sticky_key: Option<String>,
    /// Also send the request to the other side and compare the answers.
    pub mirror: bool,
}

/// One side's answer to a mirrored read, as a response-check plugin sees
/// it.
///
/// ```
/// let r = switchyard_sdk::Response { status: 200, headers: vec![("content-type".into(), "application/json".into())], body: b"{}".to_vec() };
/// assert_eq!(r.header("Content-Type"), Some("application/json"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers the workflow compares, names in lower case; absent ones
    /// are left out.
    pub headers: Vec<(String, String)>,
    /// The body, up to the router's `mirror_body_limit`.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name`, compared without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A read and two answers to it: the primary side's and the other side's,
/// or, when the runner measures noise, two answers of the same side. A
/// response-check plugin does not need to know which.
///
/// ```
/// let e = switchyard_sdk::Exchange { method: "GET".into(), path: "/rows/t/k".into(), ..Default::default() };
/// assert_eq!(e.first, e.second);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Exchange {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The query string, without `?`.
    pub query: String,
    /// One answer.
    pub first: Response,
    /// The other answer.
    pub second: Response,
}

/// A response-check plugin's answer for one exchange.
///
/// ```
/// let c = switchyard_sdk::Comparison::Differ(vec!["/rows/0/cells/d:text".into()]);
/// assert_ne!(c, switchyard_sdk::Comparison::Same);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// The answers agree.
    Same,
    /// They differ at these places, each named the same way every time (a
    /// JSON path, `status`): the runner takes out the places that also
    /// differ between two reads of one side (noise) and counts the rest.
    Differ(Vec<String>),
    /// This read is not to be compared (counted as skipped).
    Ignore,
}

/// A row of the old store, as a row-map plugin sees it during the initial
/// copy: its table and the row as the store reads it as of the restore
/// point (every visible cell with its version).
///
/// ```
/// let r = switchyard_sdk::SourceRow { table: "messages".into(), row: switchyard_sdk::Row { row_key: b"k".to_vec(), cells: vec![] } };
/// assert_eq!(r.newest_version(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRow {
    /// Logical table name in the old store.
    pub table: String,
    /// The row.
    pub row: Row,
}

impl SourceRow {
    /// The highest version among the row's cells: the version to give a
    /// mapped row, so that events replayed after the copy (at later
    /// versions) overwrite it and those before it do not.
    pub fn newest_version(&self) -> Option<u64> {
        self.row.cells.iter().map(|c| c.version).max()
    }
}
