#!/usr/bin/env bash
# Builds what test/xen/run.sh boots, from Debian's packages and this checkout:
#   $CACHE/boot/{xen,vmlinuz,dom0.cpio.gz}  QEMU's kernel and modules
#   $CACHE/stage/                           shared with dom0 (9p) at /stage:
#     domu.cpio, vmlinuz, scenarios         the domU's ramdisk, kernel, the tests
#     payload/                              what both domains run: node, the
#                                           package (dist bundle + addon), C peers
# The domU gets no share (a PV guest would need QEMU in dom0 for 9p), so its
# ramdisk carries node and the payload: ~100 MB, uncompressed to save the
# emulated CPU an inflate.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${XEN_TEST_CACHE:-$REPO/.cache/xen}
say() { echo "xen-test: $*" >&2; }
die() { say "error: $*"; exit 1; }

bash "$HERE/fetch.sh" "$CACHE"
XR=$CACHE/root                          # hypervisor, kernel, busybox
DR=$REPO/.cache/debian/root             # Xen userspace (scripts/debian-packages.sh)
DLIB=$DR/usr/lib/x86_64-linux-gnu
KVER=$(ls "$XR/lib/modules")
[ -f "$REPO/dist/index.js" ] || die "dist/ is missing: run npm run build first"
# the addon node-gyp-build would load: a local node-gyp build, else the prebuild
ADDON=$REPO/build/Release/xen_vchan.node
[ -f "$ADDON" ] || ADDON=$REPO/prebuilds/linux-x64/xen-vchan.glibc.node
[ -f "$ADDON" ] || die "the native addon is missing: run npm run build first"

STAGE=$CACHE/stage PAY=$CACHE/stage/payload
rm -rf "$STAGE" "$CACHE/boot"; mkdir -p "$PAY/bin" "$PAY/pkg/build/Release" "$CACHE/boot"

# --- the payload ---------------------------------------------------------------
# C peers, static against Debian's libxenvchan: no Xen libraries needed in guests.
# (bench-peer: the C side of bench/, for the ratios the bench scenario prints)
for src in test/c/vchan-peer.c test/c/hostile-peer.c bench/c/bench-peer.c; do
  p=$(basename "$src" .c)
  cc -O2 -static -std=gnu11 -I"$DR/usr/include" "$REPO/$src" -o "$PAY/bin/$p" \
    "$DLIB/libxenvchan.a" "$DLIB/libxengnttab.a" "$DLIB/libxenevtchn.a" "$DLIB/libxenstore.a" \
    "$DLIB/libxentoolcore.a" "$DLIB/libxentoollog.a" -lpthread 2>"$CACHE/cc.log" ||
    die "building $p against Debian's static libraries failed (see $CACHE/cc.log)"
done
# The package as an installed copy would look: the addon is found from
# binding.gyp upwards and loaded through node-gyp-build.
# our test peer, the vchan command, the TS side of bench/
for entry in "$HERE/peer.ts:peer" "$REPO/src/cli/main.ts:vchan" "$REPO/bench/peer/main.ts:bench-peer"; do
  # The package's CommonJS build is bundled into ESM: give it the require() its
  # dependencies call (commander's node:events) and the __dirname it finds the
  # package root from (the bundle sits in pkg/xen/, under pkg/binding.gyp).
  "$REPO/node_modules/.bin/esbuild" "${entry%:*}" --bundle --platform=node --format=esm \
    --banner:js="import { createRequire as bannerRequire } from 'node:module'; import { fileURLToPath as bannerPath } from 'node:url'; const require = bannerRequire(import.meta.url); const __dirname = bannerPath(new URL('.', import.meta.url));" \
    --target=node20 --log-level=error --outfile="$PAY/pkg/xen/${entry##*:}.mjs"
done
cp "$REPO/binding.gyp" "$REPO/package.json" "$PAY/pkg/"
cp "$ADDON" "$PAY/pkg/build/Release/xen_vchan.node"
mkdir -p "$PAY/pkg/node_modules"
cp -r "$REPO/node_modules/node-gyp-build" "$PAY/pkg/node_modules/"
strip -o "$PAY/bin/node" "$(command -v node)"
cp "$HERE/guest/scenarios.sh" "$HERE/guest/lib.sh" "$STAGE/"
install -m 755 "$HERE/guest/kill-rounds" "$PAY/bin/" # the domU's half of a scenario
install -m 644 "$HERE/guest/fifo.sh" "$PAY/bin/" # open_fifo, for both halves

# --- pieces of both ramdisks -----------------------------------------------------
libs_of() { # the shared libraries (and loader) the given binaries need, into $1
  local dest=$1; shift
  mkdir -p "$dest/lib/x86_64-linux-gnu" "$dest/lib64"
  # (some of Xen's bin/ are scripts: ldd fails on those, harmlessly)
  { LD_LIBRARY_PATH=$DLIB:$DR/usr/lib/xen-4.17/lib/x86_64-linux-gnu ldd "$@" 2>/dev/null || true; } |
    awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
    while read -r lib; do cp -L "$lib" "$dest/lib/x86_64-linux-gnu/"; done
  cp -L /lib64/ld-linux-x86-64.so.2 "$dest/lib64/"
}
modules() { # insmod-able copies, dependencies first, listed in load order
  local dest=$1/lib/modules; shift
  mkdir -p "$dest"; : >"$dest/order"
  add() {
    grep -qx "$1" "$dest/order" && return 0
    local f; f=$(find "$XR/lib/modules/$KVER" -name "$1.ko" | head -1)
    [ -n "$f" ] || return 0 # built in
    local d; for d in $(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | tr ',' ' '); do add "$d"; done
    cp "$f" "$dest/" && echo "$1" >>"$dest/order"
  }
  local m; for m in "$@"; do add "$m"; done
}
skeleton() {
  rm -rf "$1"; mkdir -p "$1"/{bin,sbin,etc,proc,sys,dev,run,tmp,var/log,root,usr/bin}
  cp "$XR/bin/busybox" "$1/bin/"
  ln -s busybox "$1/bin/sh"
}
cpio_of() { (cd "$1" && find . | LC_ALL=C sort | "$XR/bin/busybox" cpio -o -H newc 2>/dev/null); }
XENDEV="xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs"
XENBIN=$DR/usr/lib/xen-4.17/bin

# --- domU: node, the payload, the C tools, an agent that runs dom0's commands ----
T=$CACHE/domu-tree
skeleton "$T"
modules "$T" $XENDEV
cp -a "$PAY" "$T/payload"
cp -a "$DR/usr/bin/xenstore" "$DR"/usr/bin/xenstore-* "$T/usr/bin/"
cp "$XENBIN/vchan-socket-proxy" "$T/usr/bin/"
libs_of "$T" "$PAY/bin/node" "$ADDON" "$DR/usr/bin/xenstore" "$XENBIN/vchan-socket-proxy"
install -m 755 "$HERE/guest/domu-init" "$T/init"
cpio_of "$T" >"$STAGE/domu.cpio"
cp "$XR/boot/vmlinuz-$KVER" "$STAGE/vmlinuz"

# --- dom0: the toolstack and xenstored; node and the rest come over 9p -----------
T=$CACHE/dom0-tree
skeleton "$T"
modules "$T" $XENDEV virtio_pci 9pnet_virtio 9p
mkdir -p "$T/usr/lib/xen-4.17"
cp -a "$DR/usr/lib/xen-4.17/." "$T/usr/lib/xen-4.17/"
cp -a "$DR/usr/bin/xenstore" "$DR"/usr/bin/xenstore-* "$T/usr/bin/"
libs_of "$T" "$XENBIN"/* "$DR/usr/bin/xenstore" "$PAY/bin/node" "$ADDON"
install -m 755 "$HERE/guest/dom0-init" "$T/init"
cpio_of "$T" | gzip -1 >"$CACHE/boot/dom0.cpio.gz"

gunzip -c "$XR/boot/xen-4.17-amd64.gz" >"$CACHE/boot/xen"
cp "$XR/boot/vmlinuz-$KVER" "$CACHE/boot/vmlinuz"
