//! The loop that runs a transform over a packed batch (contract 0.2):
//! what a plugin does inside the sandbox, in plain Rust so that it also
//! runs natively, where the benchmarks time the same path without the
//! sandbox.

use std::sync::Mutex;

use crate::view::EventReader;
use crate::{Config, Event, EventView, PluginError, RowMutation, Rows};

/// What a packed batch became: the rows, packed, and the refused events
/// by their index in the batch.
#[derive(Debug, Default)]
pub struct Answer {
    /// Every name, key and value of the rows.
    pub bytes: Vec<u8>,
    /// The rows and cells (see `mutation-batch` in `sdk/wit/plugin.wit`).
    pub words: Vec<u32>,
    /// Refused events.
    pub refused: Vec<(u32, PluginError)>,
}

/// Sizes of the previous batch's answer, so the next one allocates its
/// buffers once.
static LAST_SIZES: Mutex<(usize, usize)> = Mutex::new((0, 0));

/// Runs `f`, which reads borrowed views and writes rows in place, over
/// every event of a packed batch. Rows written for an event it refuses are
/// dropped.
pub fn transform_into(
    bytes: &[u8],
    words: &[u64],
    config: &Config,
    mut f: impl FnMut(&EventView<'_>, &Config, &mut Rows) -> Result<(), PluginError>,
) -> Answer {
    let (last_bytes, last_words) = *LAST_SIZES.lock().unwrap_or_else(|p| p.into_inner());
    // What the previous answer needed, not the size of the input: a
    // transform that filters would otherwise hold twice its batch.
    let mut rows = Rows::with_capacity(last_bytes, last_words);
    let mut refused = Vec::new();
    let mut reader = EventReader::new(bytes, words);
    for (i, view) in reader.by_ref().enumerate() {
        rows.event = i as u32;
        let mark = rows.mark();
        if let Err(err) = f(&view, config, &mut rows) {
            rows.rewind(mark);
            refused.push((i as u32, err));
        }
    }
    reader.finish();
    *LAST_SIZES.lock().unwrap_or_else(|p| p.into_inner()) = (rows.bytes.len(), rows.words.len());
    Answer {
        bytes: rows.bytes,
        words: rows.words,
        refused,
    }
}

/// Runs `f`, which takes an owned [`Event`] and returns mutations, over
/// every event of a packed batch: each event is copied into one reused
/// `Event`, and the mutations are packed as they come.
pub fn transform(
    bytes: &[u8],
    words: &[u64],
    config: &Config,
    f: impl Fn(&Event, &Config) -> Result<Vec<RowMutation>, PluginError>,
) -> Answer {
    let mut event = Event::default();
    transform_into(bytes, words, config, |view, config, rows| {
        view.copy_into(&mut event);
        for mutation in &f(&event, config)? {
            rows.push(mutation);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cell;
    use crate::view::pack_events;

    #[test]
    fn a_refused_event_keeps_its_place_and_leaves_no_rows() {
        let events = [
            Event::new(0, 1, 5, b"a"),
            Event::new(0, 2, 6, b"no"),
            Event::new(0, 3, 7, b"b"),
        ];
        let (bytes, words) = pack_events(&events);
        let answer = transform_into(&bytes, &words, &Config::default(), |e, _, rows| {
            rows.row("t", e.value, 1).put("d", "v", e.value);
            match e.value {
                b"no" => Err(PluginError::Malformed("no".into())),
                _ => Ok(()),
            }
        });
        assert_eq!(
            answer.refused,
            vec![(1, PluginError::Malformed("no".into()))]
        );
        let mut rows = Rows::new();
        (rows.bytes, rows.words) = (answer.bytes, answer.words);
        let keys: Vec<_> = rows.mutations().into_iter().map(|m| m.row_key).collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec()]);
        let owned = transform(&bytes, &words, &Config::default(), |e, _| {
            Ok(vec![
                RowMutation::new("t", &e.value, 1).with(Cell::DeleteRow),
            ])
        });
        assert!(owned.refused.is_empty());
        assert_eq!(owned.words.len(), 3 * (8 + 7));
    }
}
