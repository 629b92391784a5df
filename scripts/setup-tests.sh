#!/bin/sh
# Installs what the tests need on top of the build host's tools (as root).
set -eu
"$(dirname "$0")/setup-host.sh"
export DEBIAN_FRONTEND=noninteractive
# (fonts-dejavu-core and xkb-data: the overlay's unit tests draw with the font the
# image carries and decode keys with real keymaps; libcharon-extauth-plugins: the
# lab gateway's EAP-MSCHAPv2 password round; libnss3-tools: the NSS database of
# the emulated smartcard, made by the token scenario.)
apt-get install -y --no-install-recommends \
    qemu-system-x86 ovmf cryptsetup-bin fdisk dosfstools mtools openssl python3-pip \
    squashfs-tools-ng sbsigntool cpio \
    nftables dnsmasq-base wireguard-tools strongswan-charon strongswan-swanctl \
    libstrongswan-standard-plugins libcharon-extra-plugins libcharon-extauth-plugins \
    janus curl \
    fonts-dejavu-core xkb-data libnss3-tools
# The conference scenario starts its own Janus in a network namespace; the
# package's system service is not needed (and would hold ports on the host).
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now janus.service >/dev/null 2>&1 || true
fi
# The VPN scenarios' WireGuard gateway runs in userspace (boringtun), so that the
# tests do not depend on the host kernel having WireGuard (or ESP: the IPsec
# gateway uses strongSwan's kernel-libipsec from libcharon-extra-plugins).
if ! command -v boringtun-cli >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/boringtun-cli" ]; then
    cargo install --locked boringtun-cli
fi
# virt-fw-vars enrolls the test Secure Boot keys into a copy of OVMF's variables.
if ! command -v virt-fw-vars >/dev/null 2>&1; then
    python3 -m pip install --quiet virt-firmware \
        || python3 -m pip install --quiet --break-system-packages virt-firmware
fi
