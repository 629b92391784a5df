#!/bin/sh
# One command from a fresh Debian machine to every test passing, QEMU boots included.
set -eu
cd "$(dirname "$0")/.."
./scripts/setup-tests.sh
cargo build --release -p image-builder -p kiosk
if ! command -v cargo-nextest >/dev/null 2>&1; then
    cargo install --locked cargo-nextest
fi
cargo nextest run --workspace --no-fail-fast
