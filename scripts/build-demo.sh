#!/bin/sh
# One command from a fresh Debian machine to the signed demo image in out/.
# Arguments go to `image-builder build` (e.g. `--compression zstd:3`).
set -eu
cd "$(dirname "$0")/.."
./scripts/setup-host.sh
cargo build --release -p image-builder -p kiosk
./target/release/image-builder build examples/demo.toml -o out "$@"
