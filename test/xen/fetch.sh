#!/usr/bin/env bash
# Fetches what booting real Xen needs and the host lacks: QEMU (installed
# with apt when missing), and from Debian, unpacked without installing:
# the Xen userspace (scripts/debian-packages.sh), the hypervisor, the kernel
# with its modules and a static busybox. Idempotent; prints nothing on stdout.
# Usage: fetch.sh <cache-dir>   (extracted tree: <cache-dir>/root)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
mkdir -p "$1"; CACHE=$(cd "$1" && pwd)
DEBS=$CACHE/debs ROOT=$CACHE/root
say() { echo "xen-test: $*" >&2; }
die() { say "error: $*"; exit 1; }

# apt needs package lists, which a fresh CI machine may not have yet.
have_lists() { apt-cache policy xen-hypervisor-4.17-amd64 2>/dev/null | grep -q 'Candidate: [0-9]'; }
command -v apt-get >/dev/null || die "apt-get not found: Xen, its kernel and QEMU are fetched from Debian"
have_lists || apt-get update -q >/dev/null 2>&1 || die "apt-get update failed"

if ! command -v qemu-system-x86_64 >/dev/null; then
  say "installing qemu-system-x86"
  apt-get install -y -q --no-install-recommends qemu-system-x86 >"$CACHE.qemu.log" 2>&1 ||
    die "could not install qemu-system-x86 (see $CACHE.qemu.log; needs root)"
fi

# The Xen userspace the other tests use (libxenvchan, xenstore tools, proxy).
bash "$REPO/scripts/debian-packages.sh" >/dev/null || die "scripts/debian-packages.sh failed"

[ -f "$ROOT/.done" ] && exit 0
# linux-image-amd64 is a metapackage: take the versioned image it depends on.
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$KPKG" ] || die "cannot resolve linux-image-amd64 to a kernel package"
mkdir -p "$DEBS"
missing=""
for p in xen-hypervisor-4.17-amd64 busybox-static "$KPKG"; do
  ls "$DEBS/${p}_"*.deb >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  say "downloading:$missing"
  (cd "$DEBS" && apt-get download -q $missing >"$CACHE/download.log" 2>&1) ||
    die "apt-get download of$missing failed (see $CACHE/download.log)"
fi
TMP=$ROOT.tmp.$$
rm -rf "$TMP" "$ROOT"; mkdir -p "$TMP"
for d in "$DEBS"/*.deb; do dpkg -x "$d" "$TMP"; done
ls "$TMP"/boot/xen-4.17-amd64.gz "$TMP"/boot/vmlinuz-* "$TMP"/bin/busybox >/dev/null || die "expected files missing after extraction"
touch "$TMP/.done"
mv "$TMP" "$ROOT"
