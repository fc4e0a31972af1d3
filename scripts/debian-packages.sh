#!/usr/bin/env bash
# Fetches Debian's Xen userspace (libxenvchan, libxenstore, xenstore-utils,
# vchan-socket-proxy, headers) with `apt-get download` + `dpkg -x` into an
# ignored cache, without installing anything on the host. Idempotent.
# Prints the extracted root directory on stdout; fails loudly otherwise.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${XEN_VCHAN_CACHE:-$HERE/.cache}/debian
DEBS=$CACHE/debs ROOT=$CACHE/root
say() { echo "debian-packages: $*" >&2; }
die() { say "error: $*"; exit 1; }

PKGS="libxen-dev libxenmisc4.17 xen-utils-4.17 xenstore-utils libxencall1 libxenevtchn1
  libxenforeignmemory1 libxengnttab1 libxenstore4 libxentoollog1 libxentoolcore1
  libxendevicemodel1 libxenhypfs1 libyajl2"

if [ -f "$ROOT/.done" ]; then echo "$ROOT"; exit 0; fi
command -v apt-get >/dev/null || die "apt-get not found: Debian's Xen packages cannot be fetched on this machine"
mkdir -p "$DEBS"
# Test files run in parallel and may all ask at once: one fetches, the others wait.
exec 9>"$CACHE/.lock"
flock 9
if [ -f "$ROOT/.done" ]; then echo "$ROOT"; exit 0; fi
missing=""
for p in $PKGS; do ls "$DEBS/${p}_"*.deb >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  # apt-get download needs package lists; a fresh machine may have none.
  [ -n "$(apt-cache policy libxenmisc4.17 2>/dev/null | grep 'Candidate: [0-9]')" ] ||
    apt-get update -q >"$CACHE/update.log" 2>&1 || die "apt-get update failed (see $CACHE/update.log)"
  say "downloading:$missing"
  (cd "$DEBS" && apt-get download -q $missing >"$CACHE/download.log" 2>&1) ||
    die "apt-get download failed (see $CACHE/download.log)"
fi
# Extract beside the final place, then rename: nobody ever sees half a tree.
TMP=$ROOT.tmp.$$
rm -rf "$TMP" "$ROOT"; mkdir -p "$TMP"
for d in "$DEBS"/*.deb; do dpkg -x "$d" "$TMP"; done
[ -e "$TMP/usr/lib/x86_64-linux-gnu/libxenvchan.so.4.17" ] || die "libxenvchan.so.4.17 missing after extraction"
touch "$TMP/.done"
mv "$TMP" "$ROOT"
echo "$ROOT"
