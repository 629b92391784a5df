#!/bin/sh
# Installs what the build host needs (Debian 12 or 13, as root).
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
    mmdebstrap debian-archive-keyring util-linux coreutils ca-certificates openssl \
    build-essential pkg-config
if ! command -v cargo >/dev/null 2>&1; then
    apt-get install -y --no-install-recommends cargo rustc
fi
# The code uses std::fs::File::lock (Rust 1.89); Debian 12's own rustc is older.
minor=$(rustc --version | sed -n 's/^rustc 1\.\([0-9]*\).*/\1/p')
if [ "${minor:-0}" -lt 89 ]; then
    echo "error: $(rustc --version) is too old: Rust 1.89 or newer is needed (install it with rustup)" >&2
    exit 1
fi
