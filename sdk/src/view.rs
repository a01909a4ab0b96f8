//! Borrowed views of events: what a transform reads without copying an
//! event out of the batch the host sent (contract 0.2 packs a batch into
//! one buffer; see `sdk/wit/plugin.wit`).

use crate::{Event, Header, PluginError};

/// One event of the log, borrowed from the batch it came in.
///
/// The fast form of a transform takes one (see [`transform`](crate::transform));
/// natively, [`Event::view`] makes one for tests.
///
/// ```
/// let event = switchyard_sdk::Event::new(0, 7, 10, b"hi");
/// let view = event.view();
/// assert_eq!((view.offset, view.value), (7, &b"hi"[..]));
/// assert_eq!(view.value_str().unwrap(), "hi");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct EventView<'a> {
    /// Partition of the topic (0 for a single-partition file).
    pub partition: i32,
    /// Position inside the partition.
    pub offset: i64,
    /// Event time in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The event key, if the producer set one.
    pub key: Option<&'a [u8]>,
    /// The event payload.
    pub value: &'a [u8],
    pub(crate) headers: Headers<'a>,
}

/// Where a view's headers are: inside a packed batch, or in an [`Event`].
#[cfg_attr(
    not(target_family = "wasm"),
    allow(
        dead_code,
        reason = "the wasm glue reads batches; natively only the tests do"
    )
)]
#[derive(Debug, Clone, Copy)]
pub(crate) enum Headers<'a> {
    /// Name and value lengths (two words per header) and the bytes they
    /// cover, back to back.
    Packed {
        lengths: &'a [u64],
        bytes: &'a [u8],
    },
    Owned(&'a [Header]),
}

impl<'a> EventView<'a> {
    /// The payload as UTF-8 text, or a [`PluginError::Malformed`] saying it is not.
    ///
    /// ```
    /// let bad = switchyard_sdk::Event::new(0, 0, 0, &[0xff]);
    /// assert!(bad.view().value_str().is_err());
    /// ```
    pub fn value_str(&self) -> Result<&'a str, PluginError> {
        std::str::from_utf8(self.value)
            .map_err(|e| PluginError::Malformed(format!("value is not UTF-8: {e}")))
    }

    /// The headers, names and values borrowed, in order.
    ///
    /// ```
    /// let mut e = switchyard_sdk::Event::new(0, 0, 0, b"");
    /// e.headers.push(switchyard_sdk::Header { key: "k".into(), value: b"v".to_vec() });
    /// assert_eq!(e.view().headers().collect::<Vec<_>>(), vec![("k", &b"v"[..])]);
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let (mut packed, owned) = match self.headers {
            Headers::Packed { lengths, bytes } => (Some((lengths.chunks_exact(2), bytes)), None),
            Headers::Owned(list) => (None, Some(list.iter())),
        };
        let mut owned = owned.into_iter().flatten();
        std::iter::from_fn(move || {
            if let Some((lengths, bytes)) = &mut packed {
                let pair = lengths.next()?;
                let (name, rest) = split(bytes, pair[0]);
                let (value, rest) = split(rest, pair[1]);
                *bytes = rest;
                // The host sends names as UTF-8; a name that is not reads
                // as empty rather than trapping the plugin.
                return Some((std::str::from_utf8(name).unwrap_or(""), value));
            }
            owned.next().map(|h| (h.key.as_str(), h.value.as_slice()))
        })
    }

    /// The value of the first header named `key`.
    ///
    /// ```
    /// let mut e = switchyard_sdk::Event::new(0, 0, 0, b"");
    /// e.headers.push(switchyard_sdk::Header { key: "k".into(), value: b"v".to_vec() });
    /// assert_eq!(e.view().header("k"), Some(&b"v"[..]));
    /// ```
    pub fn header(&self, key: &str) -> Option<&'a [u8]> {
        self.headers().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Copies the view into `event`, reusing its buffers.
    #[cfg_attr(
        not(target_family = "wasm"),
        allow(
            dead_code,
            reason = "the wasm glue reads batches; natively only the tests do"
        )
    )]
    pub(crate) fn copy_into(&self, event: &mut Event) {
        event.partition = self.partition;
        event.offset = self.offset;
        event.timestamp_ms = self.timestamp_ms;
        match (self.key, &mut event.key) {
            (Some(key), Some(kept)) => {
                kept.clear();
                kept.extend_from_slice(key);
            }
            (Some(key), slot) => *slot = Some(key.to_vec()),
            (None, slot) => *slot = None,
        }
        event.value.clear();
        event.value.extend_from_slice(self.value);
        event.headers.clear();
        event.headers.extend(self.headers().map(|(k, v)| Header {
            key: k.to_string(),
            value: v.to_vec(),
        }));
    }
}

impl Event {
    /// This event as the borrowed view the fast form of a transform takes
    /// (handy in tests).
    ///
    /// ```
    /// let e = switchyard_sdk::Event::new(1, 2, 3, b"v");
    /// assert_eq!(e.view().partition, 1);
    /// ```
    pub fn view(&self) -> EventView<'_> {
        EventView {
            partition: self.partition,
            offset: self.offset,
            timestamp_ms: self.timestamp_ms,
            key: self.key.as_deref(),
            value: &self.value,
            headers: Headers::Owned(&self.headers),
        }
    }
}

/// The first `len` bytes and the rest (all of it, and nothing, when
/// `len` runs past the end).
fn split(bytes: &[u8], len: u64) -> (&[u8], &[u8]) {
    let len = usize::try_from(len).unwrap_or(usize::MAX).min(bytes.len());
    bytes.split_at(len)
}

/// Reads the events of a packed batch in order, without copying them.
/// The host builds the batch; one that does not add up is a broken host,
/// and the plugin traps (the runner names the trap) rather than skip an
/// event the host would take for one that gave no rows.
#[cfg_attr(
    not(target_family = "wasm"),
    allow(
        dead_code,
        reason = "the wasm glue reads batches; natively only the tests do"
    )
)]
pub(crate) struct EventReader<'a> {
    bytes: &'a [u8],
    words: &'a [u64],
}

/// Words per event before its headers' lengths.
#[cfg_attr(
    not(target_family = "wasm"),
    allow(
        dead_code,
        reason = "the wasm glue reads batches; natively only the tests do"
    )
)]
const EVENT_WORDS: usize = 6;
/// The key length that says an event has none.
#[cfg_attr(
    not(target_family = "wasm"),
    allow(
        dead_code,
        reason = "the wasm glue reads batches; natively only the tests do"
    )
)]
const NO_KEY: u64 = u64::MAX;

impl<'a> EventReader<'a> {
    #[cfg_attr(
        not(target_family = "wasm"),
        allow(
            dead_code,
            reason = "the wasm glue reads batches; natively only the tests do"
        )
    )]
    pub(crate) fn new(bytes: &'a [u8], words: &'a [u64]) -> Self {
        EventReader { bytes, words }
    }

    /// Traps unless every word and byte was read.
    pub(crate) fn finish(self) {
        assert!(
            self.words.is_empty() && self.bytes.is_empty(),
            "switchyard: the host's event batch has {} words and {} bytes after its last event",
            self.words.len(),
            self.bytes.len()
        );
    }
}

/// `len` bytes from the front of `bytes`, trapping when there are fewer.
fn take<'a>(bytes: &mut &'a [u8], len: u64) -> &'a [u8] {
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    assert!(
        len <= bytes.len(),
        "switchyard: the host's event batch ends inside an event"
    );
    let (taken, rest) = bytes.split_at(len);
    *bytes = rest;
    taken
}

impl<'a> Iterator for EventReader<'a> {
    type Item = EventView<'a>;

    fn next(&mut self) -> Option<EventView<'a>> {
        if self.words.is_empty() {
            return None;
        }
        let lengths = self
            .words
            .get(..EVENT_WORDS)
            .and_then(|head| usize::try_from(head[5]).ok())
            .and_then(|count| count.checked_mul(2)?.checked_add(EVENT_WORDS))
            .and_then(|end| self.words.get(EVENT_WORDS..end));
        let Some(lengths) = lengths else {
            panic!("switchyard: the host's event batch ends inside an event's words");
        };
        let head = &self.words[..EVENT_WORDS];
        self.words = &self.words[EVENT_WORDS + lengths.len()..];
        let key = match head[3] {
            NO_KEY => None,
            len => Some(take(&mut self.bytes, len)),
        };
        let value = take(&mut self.bytes, head[4]);
        let header_bytes: u64 = lengths.iter().fold(0, |sum, l| sum.saturating_add(*l));
        let headers = take(&mut self.bytes, header_bytes);
        Some(EventView {
            partition: head[0] as i32,
            offset: head[1] as i64,
            timestamp_ms: head[2] as i64,
            key,
            value,
            headers: Headers::Packed {
                lengths,
                bytes: headers,
            },
        })
    }
}

/// Packs events the way the host does (for the SDK's own tests).
#[cfg(test)]
pub(crate) fn pack_events(events: &[Event]) -> (Vec<u8>, Vec<u64>) {
    let (mut bytes, mut words) = (Vec::new(), Vec::new());
    for e in events {
        words.extend([
            e.partition as u64,
            e.offset as u64,
            e.timestamp_ms as u64,
            e.key.as_ref().map_or(NO_KEY, |k| k.len() as u64),
            e.value.len() as u64,
            e.headers.len() as u64,
        ]);
        bytes.extend(e.key.iter().flatten());
        bytes.extend(&e.value);
        for h in &e.headers {
            words.extend([h.key.len() as u64, h.value.len() as u64]);
            bytes.extend(h.key.as_bytes());
            bytes.extend(&h.value);
        }
    }
    (bytes, words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Vec<Event> {
        let mut with_all = Event::new(3, -1, 99, b"value");
        with_all.key = Some(b"key".to_vec());
        with_all.headers = vec![
            Header {
                key: "a".into(),
                value: b"1".to_vec(),
            },
            Header {
                key: "bb".into(),
                value: Vec::new(),
            },
        ];
        vec![
            Event::new(0, 1, 2, b""),
            with_all,
            Event::new(1, 5, -7, b"x"),
        ]
    }

    #[test]
    fn a_packed_batch_reads_back_as_the_events_it_was_made_of() {
        let events = events();
        let (bytes, words) = pack_events(&events);
        let mut copy = Event::default();
        let read: Vec<Event> = EventReader::new(&bytes, &words)
            .map(|view| {
                view.copy_into(&mut copy);
                copy.clone()
            })
            .collect();
        assert_eq!(read, events);
        let second = EventReader::new(&bytes, &words).nth(1).unwrap();
        assert_eq!(second.header("bb"), Some(&b""[..]));
        assert_eq!(second.header("c"), None);
    }

    #[test]
    #[should_panic(expected = "ends inside an event's words")]
    fn too_many_headers_trap() {
        let (bytes, mut words) = pack_events(&events());
        words[11] = u64::MAX / 2;
        EventReader::new(&bytes, &words).for_each(drop);
    }

    #[test]
    #[should_panic(expected = "ends inside an event")]
    fn missing_bytes_trap() {
        let (_, words) = pack_events(&events());
        EventReader::new(b"", &words).for_each(drop);
    }

    #[test]
    #[should_panic(expected = "after its last event")]
    fn bytes_left_over_trap() {
        let (mut bytes, words) = pack_events(&events());
        bytes.push(0);
        let mut reader = EventReader::new(&bytes, &words);
        reader.by_ref().for_each(drop);
        reader.finish();
    }
}
