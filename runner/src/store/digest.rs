//! Digests of key ranges: what a `hashed` compare asks of each side so
//! that equal ranges are skipped without comparing their rows. A digest is
//! the number of visible rows in the range and a SHA-256 over their keys
//! and cells in key order (values, not versions, as the built-in equality
//! has it), leaving out the cells a workflow names as legitimately
//! different. A store that can hash close to its data may compute it so;
//! the default reads the range through `scan`.

use sha2::{Digest as _, Sha256};

use crate::model::Row;

/// A range's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// Visible rows.
    pub rows: u64,
    /// SHA-256 over them.
    pub sum: [u8; 32],
}

/// Cells left out of digests: `(family, qualifier)`.
pub type Ignored = [(String, Vec<u8>)];

/// Builds a digest row by row, in key order.
pub struct DigestBuilder<'i> {
    hasher: Sha256,
    rows: u64,
    ignore: &'i Ignored,
}

impl<'i> DigestBuilder<'i> {
    /// An empty one.
    pub fn new(ignore: &'i Ignored) -> Self {
        DigestBuilder {
            hasher: Sha256::new(),
            rows: 0,
            ignore,
        }
    }

    /// Adds one row (each field length-prefixed, so no two rows hash alike
    /// by running into each other).
    pub fn add(&mut self, row: &Row) {
        self.rows += 1;
        let mut field = |bytes: &[u8]| {
            self.hasher.update((bytes.len() as u64).to_le_bytes());
            self.hasher.update(bytes);
        };
        field(&row.row_key);
        for c in &row.cells {
            if self
                .ignore
                .iter()
                .any(|(f, q)| *f == c.family && *q == c.qualifier)
            {
                continue;
            }
            field(c.family.as_bytes());
            field(&c.qualifier);
            field(&c.value);
        }
        // A row's end, so cells cannot move from one row to the next.
        field(b"");
    }

    /// The digest of the rows added.
    pub fn finish(self) -> Digest {
        Digest {
            rows: self.rows,
            sum: self.hasher.finalize().into(),
        }
    }
}

/// The digest of `rows`.
pub fn of_rows(rows: &[Row], ignore: &Ignored) -> Digest {
    let mut d = DigestBuilder::new(ignore);
    for row in rows {
        d.add(row);
    }
    d.finish()
}
