//! The kafka source against a real broker (Tansu): time starts by both
//! lookups, positions committed only when told, lag per partition.

use std::collections::BTreeMap;

use switchyard_runner::source::kafka::KafkaConfig;
use switchyard_runner::source::kafka::KafkaSource;
use switchyard_runner::source::kafka::by_time::Found;
use switchyard_runner::source::kafka::config::TimeLookup;
use switchyard_runner::source::{Checkpoint, Follow, Source, Start};
use switchyard_tests::broker::Broker;

fn config(broker: &Broker, topic: &str, group: &str, lookup: TimeLookup) -> KafkaConfig {
    KafkaConfig {
        brokers: broker.addr(),
        topic: topic.into(),
        group: Some(group.into()),
        scale_out: false,
        client: BTreeMap::new(),
        client_env: BTreeMap::new(),
        time_lookup: lookup,
    }
}

/// 2 partitions × 50 records, partition p record i at time 1000 + 10·i.
fn fill(broker: &Broker, topic: &str) {
    broker.create_topic(topic, 2);
    let values: Vec<(i32, String, i64)> = (0..2)
        .flat_map(|p| (0..50).map(move |i| (p, format!("p{p}-{i}"), 1000 + 10 * i as i64)))
        .collect();
    let records: Vec<(i32, &str, &[u8], i64)> = values
        .iter()
        .map(|(p, v, t)| (*p, "k", v.as_bytes(), *t))
        .collect();
    broker.produce_raw(topic, &records);
}

/// Reads until the end; returns the (partition, offset, time) of every event.
fn read_all(source: &mut KafkaSource) -> Vec<(i32, i64, i64)> {
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while let Some(batch) = source.next_batch(events(30)).unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "not at the end after 60s; read {out:?}"
        );
        out.extend(
            batch
                .events
                .iter()
                .map(|e| (e.partition, e.offset, e.timestamp_ms)),
        );
    }
    out.sort_unstable();
    out
}

fn time_start_reads_from_the_first_record_at_the_time(
    broker: Broker,
    lookup: TimeLookup,
) -> BTreeMap<i32, Found> {
    fill(&broker, "events");
    let cfg = config(&broker, "events", "g", lookup);
    let mut source = KafkaSource::open("events", &cfg, "g", Follow::UntilEnd).unwrap();
    // Time 1255 is between records 25 (1250) and 26 (1260).
    source.seek(&Start::Timestamp(1255), None).unwrap();
    let events = read_all(&mut source);
    assert_eq!(events.len(), 2 * 24, "{events:?}");
    assert!(events.iter().all(|(_, o, t)| *o >= 26 && *t >= 1260));
    source.time_lookups().clone()
}

#[test]
fn a_time_start_trusts_a_broker_that_answers_offsets_for_times_right() {
    let found =
        time_start_reads_from_the_first_record_at_the_time(Broker::start(), TimeLookup::Auto);
    assert_eq!(found.values().collect::<Vec<_>>(), [&Found::Broker; 2]);
}

#[test]
fn a_time_start_searches_the_records_when_the_broker_answers_wrong() {
    // Tansu's memory storage answers offset 0 for any time.
    let found = time_start_reads_from_the_first_record_at_the_time(
        Broker::start_in_memory(),
        TimeLookup::Auto,
    );
    assert_eq!(found.values().collect::<Vec<_>>(), [&Found::Search; 2]);
}

#[test]
fn a_time_start_can_search_the_records_instead_of_asking_the_broker() {
    // What `auto` falls back to when the broker's answer fails the check.
    let found =
        time_start_reads_from_the_first_record_at_the_time(Broker::start(), TimeLookup::Search);
    assert_eq!(found.values().collect::<Vec<_>>(), [&Found::Search; 2]);
}

#[test]
fn positions_are_committed_only_when_told_and_a_new_consumer_of_the_group_resumes_there() {
    let broker = Broker::start();
    fill(&broker, "events");
    let cfg = config(&broker, "events", "g", TimeLookup::Auto);

    let mut first = KafkaSource::open("events", &cfg, "g", Follow::UntilEnd).unwrap();
    first.seek(&Start::Earliest, None).unwrap();
    let mut seen = Vec::new();
    let mut acked: Option<Checkpoint> = None;
    while seen.len() < 60 {
        let batch = first.next_batch(events(20)).unwrap().expect("more events");
        seen.extend(batch.events.iter().map(|e| (e.partition, e.offset)));
        if seen.len() <= 40 {
            acked = Some(batch.checkpoint.clone());
        }
    }
    // Only what "the store acknowledged" is committed; the rest was read, not committed.
    let acked = acked.expect("a checkpoint");
    first.commit(&acked).unwrap();
    first.close().unwrap();
    drop(first);

    let mut second = KafkaSource::open("events", &cfg, "g", Follow::UntilEnd).unwrap();
    second.seek(&Start::Latest, None).unwrap();
    let rest = read_all(&mut second);
    let expected: usize = (0..2)
        // A partition without a commit starts at the latest: nothing to read.
        .map(|p| acked.next.get(&p).map_or(0, |o| 50 - *o as usize))
        .sum();
    assert_eq!(rest.len(), expected, "acked {:?}", acked.next);
    for (p, o, _) in &rest {
        assert!(*o >= *acked.next.get(p).unwrap_or(&0));
    }
    let ends = second.ends().expect("ends known at the end");
    assert_eq!(ends.len(), 2);
    for (p, e) in ends {
        assert_eq!((e.high, e.read), (50, 50), "partition {p}");
    }
}

/// Nothing is left to read, yet every partition has reached the time of
/// its last record: the watermark says so from the first batch (found by
/// reading the record before each start, all partitions in one go).
#[test]
fn a_source_that_starts_at_the_end_knows_the_time_every_partition_reached() {
    let broker = Broker::start();
    fill(&broker, "events");
    let cfg = config(&broker, "events", "g", TimeLookup::Auto);
    let mut source = KafkaSource::open("events", &cfg, "g", Follow::UntilEnd).unwrap();
    source.seek(&Start::Latest, None).unwrap();
    let batch = source.next_batch(events(10)).unwrap();
    let watermark = batch.map(|b| b.watermark);
    // With nothing to read the source may end at once; then ask once more.
    assert_eq!(watermark.unwrap_or(Some(1490)), Some(1490));
    let mut again = KafkaSource::open("events", &cfg, "g2", Follow::Tail).unwrap();
    again.seek(&Start::Latest, None).unwrap();
    let batch = again
        .next_batch(events(10))
        .unwrap()
        .expect("a live source goes on");
    assert!(batch.events.is_empty());
    assert_eq!(
        batch.watermark,
        Some(1490),
        "the last record of each partition is at 1490"
    );
}

fn events(n: usize) -> switchyard_runner::source::BatchLimit {
    switchyard_runner::source::BatchLimit {
        events: n,
        bytes: u64::MAX,
    }
}
