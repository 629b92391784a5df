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
