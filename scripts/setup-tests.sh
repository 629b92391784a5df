#!/bin/sh
# Installs what the tests need on top of the build host's tools (as root).
set -eu
"$(dirname "$0")/setup-host.sh"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends \
    qemu-system-x86 ovmf cryptsetup-bin fdisk dosfstools mtools
