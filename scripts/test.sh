#!/bin/sh
# One command from a fresh Debian machine to every test passing, QEMU boots included.
set -eu
cd "$(dirname "$0")/.."
./scripts/setup-tests.sh
# The layout rules of docs/layout.md: no function in the product crates over 100
# lines, no import circle between modules or folders.
python3 scripts/longest-functions.py image-builder/src kiosk/src --top 3 --max 100
python3 scripts/module-cycles.py image-builder/src kiosk/src qemu-tests/src
cargo build --release -p image-builder -p kiosk
if ! command -v cargo-nextest >/dev/null 2>&1; then
    cargo install --locked cargo-nextest
fi
cargo nextest run --workspace --no-fail-fast
