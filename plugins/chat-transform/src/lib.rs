//! Chat events into message rows.
//!
//! Events are JSON objects with a `type` of `message_posted`,
//! `message_edited` or `message_deleted`, and the fields `room`,
//! `message_id`, `user`, `text`, `posted_at` (when the message was first
//! posted, in ms) and `at` (when this event happened, in ms).
//!
//! Rows live in the table named by the `table` setting (default `messages`),
//! keyed `ROOM#POSTED_AT#MESSAGE_ID` with the time zero-padded, so one room's
//! messages scan in the order they were posted. Cells are in family `d`;
//! `m:writer` records which updater wrote the row (setting `writer`), a field
//! that legitimately differs between blue and green.
//!
//! Every mutation's version is the event time, so replaying an event writes
//! the same cells at the same version again: replay is idempotent.

use serde::Deserialize;
use switchyard_sdk::{Cell, Config, Event, PluginError, RowMutation};

#[derive(Deserialize)]
struct ChatEvent<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    room: &'a str,
    message_id: &'a str,
    #[serde(default)]
    user: Option<&'a str>,
    #[serde(default, borrow)]
    text: Option<std::borrow::Cow<'a, str>>,
    posted_at: i64,
}

/// Turns one chat event into the mutation of its message row.
#[switchyard_sdk::transform(init = check_config)]
pub fn to_rows(event: &Event, config: &Config) -> Result<Vec<RowMutation>, PluginError> {
    let chat: ChatEvent =
        serde_json::from_slice(&event.value).map_err(|e| PluginError::Malformed(e.to_string()))?;
    let table = config.get_or("table", "messages");
    let version = u64::try_from(event.timestamp_ms).map_err(|_| {
        PluginError::Malformed(format!("negative timestamp {}", event.timestamp_ms))
    })?;
    let key = row_key(chat.room, chat.posted_at, chat.message_id)?;
    let row = RowMutation::new(table, key, version);
    let text = || {
        chat.text
            .as_deref()
            .ok_or_else(|| PluginError::Malformed(format!("`{}` event without `text`", chat.kind)))
    };
    let mutation = match chat.kind {
        "message_posted" => {
            let user = chat
                .user
                .ok_or_else(|| PluginError::Malformed("`message_posted` without `user`".into()))?;
            row.with(Cell::put("d", "room", chat.room))
                .with(Cell::put("d", "user", user))
                .with(Cell::put("d", "text", text()?))
                .with(Cell::put("d", "posted_at", chat.posted_at.to_string()))
                .with(Cell::put("m", "writer", config.get_or("writer", "rmu")))
        }
        "message_edited" => row
            .with(Cell::put("d", "text", text()?))
            .with(Cell::put("d", "edited_at", event.timestamp_ms.to_string()))
            .with(Cell::put("m", "writer", config.get_or("writer", "rmu"))),
        "message_deleted" => row.with(Cell::DeleteRow),
        other => {
            return Err(PluginError::Unsupported(format!(
                "unknown event type `{other}`"
            )));
        }
    };
    Ok(vec![mutation])
}

fn check_config(config: &Config) -> Result<(), PluginError> {
    match config.get("table") {
        Some("") => Err(PluginError::Config("`table` must not be empty".into())),
        _ => Ok(()),
    }
}

/// `ROOM#POSTED_AT#MESSAGE_ID`, the time zero-padded to 13 digits.
fn row_key(room: &str, posted_at: i64, message_id: &str) -> Result<String, PluginError> {
    if room.contains('#') || message_id.contains('#') {
        return Err(PluginError::Malformed(
            "`room` and `message_id` must not contain `#`".into(),
        ));
    }
    if posted_at < 0 {
        return Err(PluginError::Malformed(format!(
            "negative `posted_at` {posted_at}"
        )));
    }
    Ok(format!("{room}#{posted_at:013}#{message_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str, ts: i64) -> Event {
        Event::new(0, 0, ts, json.as_bytes())
    }

    #[test]
    fn posted_message_becomes_a_row_keyed_by_room_and_time() {
        let e = event(
            r#"{"type":"message_posted","room":"r1","message_id":"m1","user":"u1","text":"hi","posted_at":1000}"#,
            1000,
        );
        let rows = to_rows(&e, &Config::default()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].row_key, b"r1#0000000001000#m1");
        assert_eq!(rows[0].version, 1000);
        assert!(rows[0].cells.contains(&Cell::put("d", "text", "hi")));
        assert!(rows[0].cells.contains(&Cell::put("m", "writer", "rmu")));
    }

    #[test]
    fn edit_and_delete_address_the_same_row() {
        let edit = event(
            r#"{"type":"message_edited","room":"r1","message_id":"m1","text":"hello","posted_at":1000}"#,
            2000,
        );
        let delete = event(
            r#"{"type":"message_deleted","room":"r1","message_id":"m1","posted_at":1000}"#,
            3000,
        );
        let config = Config::from_pairs([("writer", "rmu2"), ("table", "msgs")]);
        let edited = &to_rows(&edit, &config).unwrap()[0];
        let deleted = &to_rows(&delete, &config).unwrap()[0];
        assert_eq!(edited.row_key, deleted.row_key);
        assert_eq!(edited.table, "msgs");
        assert!(edited.cells.contains(&Cell::put("m", "writer", "rmu2")));
        assert_eq!(deleted.cells, vec![Cell::DeleteRow]);
        assert_eq!(deleted.version, 3000);
    }

    #[test]
    fn the_same_event_always_yields_the_same_mutation() {
        let e = event(
            r#"{"type":"message_posted","room":"r","message_id":"m","user":"u","text":"t","posted_at":5}"#,
            5,
        );
        assert_eq!(
            to_rows(&e, &Config::default()),
            to_rows(&e, &Config::default())
        );
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let err = to_rows(&event("{not json", 1), &Config::default()).unwrap_err();
        assert!(matches!(err, PluginError::Malformed(_)), "{err}");
        let err = to_rows(
            &event(
                r#"{"type":"reaction_added","room":"r","message_id":"m","posted_at":1}"#,
                1,
            ),
            &Config::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported input: unknown event type `reaction_added`"
        );
    }
}
