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

# Throughput figures and ratios (WASM vs native transform, replay vs read).
bench:
    cargo bench -p switchyard-tests --bench throughput

# Build the example plugins and print their sha256 pins.
plugins:
    cargo run --release --bin runner -- plugin build plugins/chat-transform
    cargo run --release --bin runner -- plugin build plugins/chat-check

# Format and lint.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
