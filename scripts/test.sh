#!/usr/bin/env bash
# Runs every Baton test: unit, property, CLI and the netns end-to-end tests
# against real nginx, curl and wrk, and checks formatting and lints.
# `make test` calls it after `make deps`.
set -euo pipefail
cd "$(dirname "$0")/.."

# The end-to-end tests run the release build (what users run), so that
# traffic through Baton is not slowed by an unoptimised binary.
cargo build --release --locked
export BATON_BIN=$PWD/target/release/baton

# Doc tests first: nextest, whose summary closes the output, does not run them.
cargo test --workspace --doc --locked -q 2>&1 | tail -n 3

# Formatting and lints, as CI checks them.
if ! cargo fmt --all -- --check; then
    echo "test: code is not formatted (see the diff above); run \`cargo fmt --all\`" >&2
    exit 1
fi
echo "test: fmt ok"
if ! cargo clippy --workspace --all-targets --locked -q -- -D warnings; then
    echo "test: clippy found warnings (see above)" >&2
    exit 1
fi
echo "test: clippy ok"

cargo nextest run --workspace --locked --no-fail-fast
