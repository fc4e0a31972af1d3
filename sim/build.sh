#!/bin/sh
# Builds the emulator's LD_PRELOAD library with the system C compiler:
# sim/preload/*.c -> build/sim/libxensim.so (or $1).
set -eu
HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$HERE/build/sim/libxensim.so}
CC=${CC:-cc}
command -v "$CC" >/dev/null 2>&1 || { echo "sim/build.sh: no C compiler ($CC) found; libxensim.so needs one" >&2; exit 1; }
mkdir -p "$(dirname "$OUT")"
"$CC" -std=gnu11 -O2 -g -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden \
  -o "$OUT.tmp" "$HERE"/sim/preload/*.c -ldl -lpthread
mv "$OUT.tmp" "$OUT"
