# Switchyard tasks. `cargo` alone does everything too; these are shortcuts.
# Install just with `cargo install just` if you want it.

# Add the WebAssembly target plugins are built for.
setup:
    rustup target add wasm32-wasip2

# Run the quickstart migration (no servers needed).
demo *ARGS:
    cargo run --release --bin runner -- exec workflows/quickstart.toml {{ARGS}}

# Run every test (the README's test command).
test:
    cargo test --workspace

# Throughput figures and ratios (WASM vs native transform, replay vs read;
# Kafka replay vs a bare consumer, into HBase, and peak memory by backlog;
# the router vs direct and vs nginx).
# Scale the Kafka bench with SWITCHYARD_BENCH_EVENTS and friends (see
# tests/benches/kafka.rs).
bench:
    cargo bench -p switchyard-tests --bench throughput
    cargo bench -p switchyard-tests --bench kafka
    cargo bench -p switchyard-tests --bench router
    cargo bench -p switchyard-tests --bench postgres
    cargo bench -p switchyard-tests --bench compare

# HBase store throughput against the in-process emulator, pool 1 vs 2 vs 4.
bench-hbase:
    cargo bench -p switchyard-tests --bench hbase

# The HBase Thrift1 emulator on 127.0.0.1, to run the HBase workflows by hand.
hbase-emulator PORT="9090":
    cargo run -p switchyard-tests --bin hbase-emulator -- --port {{PORT}}

# Build the example plugins and print their sha256 pins.
plugins:
    cargo run --release --bin runner -- plugin build plugins/chat-transform
    cargo run --release --bin runner -- plugin build plugins/chat-check

# Format and lint.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
