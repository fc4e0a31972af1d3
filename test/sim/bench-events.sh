#!/usr/bin/env bash
# Event-path benchmark under xensim: notification round trip (against a pipe
# and a socketpair between two processes) and one-way C libxenvchan
# throughput with 64 KiB writes at several ring orders.
#   test/sim/bench-events.sh [ROUNDS] [BYTES]     (after `npm run build`)
# Needs Debian's Xen libraries in .cache/debian (any sim test fetches them).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:-20000}
BYTES=${2:-268435456}
DEB=$ROOT/.cache/debian/root
LIB=$DEB/usr/lib/x86_64-linux-gnu
[ -d "$LIB" ] || { echo "no Debian Xen libraries in $DEB: run the sim tests once" >&2; exit 1; }
OUT=$(mktemp -d /tmp/xsb-XXXXXX)
trap 'node "$ROOT/dist/sim/cli.js" stop >/dev/null 2>&1 || true; rm -rf "$OUT"' EXIT
for t in evtchn-pingpong vchan-bench; do
  "${CC:-cc}" -O2 -std=gnu11 -I"$DEB/usr/include" "$ROOT/test/sim/c/$t.c" -o "$OUT/$t" \
    -L"$LIB" -Wl,-rpath-link,"$LIB" -lxenevtchn -lxenvchan -lxentoollog
done
export LD_LIBRARY_PATH=$LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} XENSIM_DIR=$OUT/sim
XS=(node "$ROOT/dist/sim/cli.js")
"${XS[@]}" start
"$OUT/evtchn-pingpong" pipe "$ROUNDS"
"$OUT/evtchn-pingpong" socket "$ROUNDS"
"${XS[@]}" run --domid 0 -- "$OUT/evtchn-pingpong" evtchn "$ROUNDS"
# server (sender) in dom1 writes through a ring of RING bytes; orders (read,write)
for o in "1024,2048 10,11" "4096,4096 12,12" "1048576,1048576 20,20"; do
  set -- $o
  "${XS[@]}" run --domid 1 -- "$OUT/vchan-bench" server 2 data/b "$BYTES" 65536 "$1" > "$OUT/s" &
  "${XS[@]}" run --domid 2 -- "$OUT/vchan-bench" client 1 /local/domain/1/data/b "$BYTES" 65536 > "$OUT/c"
  wait
  echo "vchan ($2): sender $(cat "$OUT/s"); receiver $(cat "$OUT/c")"
done
