#!/bin/sh
# Installs what the tests need on top of the build host's tools (as root).
set -eu
"$(dirname "$0")/setup-host.sh"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends \
    qemu-system-x86 ovmf cryptsetup-bin fdisk dosfstools mtools openssl python3-pip \
    squashfs-tools-ng sbsigntool cpio
# virt-fw-vars enrolls the test Secure Boot keys into a copy of OVMF's variables.
if ! command -v virt-fw-vars >/dev/null 2>&1; then
    python3 -m pip install --quiet virt-firmware \
        || python3 -m pip install --quiet --break-system-packages virt-firmware
fi
