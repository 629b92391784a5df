#!/bin/sh
# Issue 19's compression measurement: the root of a built image, repacked with
# other squashfs settings by the builder's own tools tree (mksquashfs), printing
# size and time for each. Decompression speed at boot is not measured here.
#   scripts/bench-compression.sh target/qemu-tests/demo/demo-0.1.0.raw
set -eu
image=${1:?usage: $0 IMAGE.raw [CACHE_DIR]}
cache=${2:-/var/cache/secure-stick}
tools=$(ls -d "$cache"/trees/tools-*/root 2>/dev/null | head -n 1)
[ -n "$tools" ] || { echo "no tools tree in $cache/trees: build an image first" >&2; exit 1; }
# The root partition (UAPI type for x86-64 roots): start and size in sectors.
set -- $(sfdisk -d "$image" | awk -F'[=,]' \
    '/4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709/ {gsub(/ /, "", $2); gsub(/ /, "", $4); print $2, $4}')
[ $# -eq 2 ] || { echo "$image: no x86-64 root partition" >&2; exit 1; }
work=$(mktemp -d "$tools/tmp/bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
dd if="$image" of="$work/root.sqfs" bs=512 skip="$1" count="$2" status=none
inside=/tmp/$(basename "$work")
chroot "$tools" unsquashfs -q -d "$inside/tree" "$inside/root.sqfs" >/dev/null
echo "image root: $(stat -c %s "$work/root.sqfs") bytes; unpacked $(du -sb "$work/tree" | cut -f1) bytes"
while read -r name options; do
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    chroot "$tools" mksquashfs "$inside/tree" "$inside/out.sqfs" -noappend -no-progress \
        -quiet $options
    end=$(date +%s.%N)
    printf '%-24s %11d bytes %7.1f s  (%s)\n' "$name" "$(stat -c %s "$work/out.sqfs")" \
        "$(awk "BEGIN { print $end - $start }")" "$options"
done <<'VARIANTS'
zstd-3-128K    -comp zstd -Xcompression-level 3 -b 128K
zstd-15-128K   -comp zstd -b 128K
zstd-19-128K   -comp zstd -Xcompression-level 19 -b 128K
zstd-19-1M     -comp zstd -Xcompression-level 19 -b 1M
zstd-22-1M     -comp zstd -Xcompression-level 22 -b 1M
xz-128K        -comp xz -b 128K
xz-bcj-128K    -comp xz -Xbcj x86 -b 128K
xz-bcj-1M      -comp xz -Xbcj x86 -b 1M
VARIANTS
