#!/usr/bin/env bash
# npm run test:xen: builds the images (build.sh), boots Debian's Xen 4.17 and
# kernel in QEMU (TCG: no KVM needed), runs guest/scenarios.sh in dom0 and
# exits 0 only if every scenario passed. On failure it prints the failing
# scenarios' logs. Needs root on a Debian 12 machine (apt for QEMU).
#   XEN_TEST_TIMEOUT  seconds before QEMU is killed (default 1200)
#   XEN_TEST_VERBOSE=1  copy the whole console to stderr as it runs
#   XEN_TEST_ONLY=regex  run only the scenarios whose names match
set -uo pipefail
# One block, read whole before it runs: editing this file mid-run is safe.
{
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${XEN_TEST_CACHE:-$REPO/.cache/xen}
export XEN_TEST_CACHE=$CACHE
LOG=$CACHE/console.log
say() { echo "xen-test: $*" >&2; }

# Two runs would rebuild and share one stage directory and console log.
mkdir -p "$CACHE"
exec 8>"$CACHE/.run.lock"
flock -n 8 || { say "another run is using $CACHE"; exit 1; }
t0=$SECONDS
bash "$HERE/build.sh" || { say "building the images failed"; exit 1; }
say "images built in $((SECONDS - t0)) s"

# XEN_TEST_ONLY=regex: only the scenarios whose names match (destroy ends the domU: keep it last).
echo "${XEN_TEST_ONLY:-}" >"$CACHE/stage/only"
B=$CACHE/boot
# Xen on the serial port; dom0 (512 MB is plenty for busybox and node) and one
# 512 MB domU. Multiboot modules: the kernel with its command line, the ramdisk.
# A console ring large enough for a grant table dump (xl debug-keys g).
QEMU=(qemu-system-x86_64 -accel tcg,thread=multi -cpu qemu64 -smp 2 -m 2048
  -display none -no-reboot -monitor none -serial "file:$LOG"
  -kernel "$B/xen" -append "dom0_mem=1024M,max:1024M console=com1 com1=115200,8n1 loglvl=warning guest_loglvl=warning noreboot conring_size=256k"
  -initrd "$B/vmlinuz console=hvc0 earlyprintk=xen rdinit=/init quiet,$B/dom0.cpio.gz"
  -virtfs "local,path=$CACHE/stage,mount_tag=stage,security_model=none,id=stage")
: >"$LOG"
t1=$SECONDS
timeout -k 10 "${XEN_TEST_TIMEOUT:-1200}" "${QEMU[@]}" &
qemu=$!
# Progress lines as they come; the whole console with XEN_TEST_VERBOSE=1.
if [ "${XEN_TEST_VERBOSE:-0}" = 1 ]; then tail -n +1 -F "$LOG" --pid=$qemu >&2 &
else tail -n +1 -F "$LOG" --pid=$qemu 2>/dev/null | grep --line-buffered -a -E '^(XEN-TEST|DOMU-(CREATED|UP|BOOT)|SCENARIO)' >&2 & fi
wait $qemu
qrc=$?
sleep 0.5
secs=$((SECONDS - t1))
rc=$(grep -a '^XEN-TEST-EXIT' "$LOG" | tail -1 | tr -dc '0-9 ' | awk '{print $1}')
if [ -z "$rc" ]; then
  [ $qrc = 124 ] || [ $qrc = 137 ] && say "timed out after ${XEN_TEST_TIMEOUT:-1200} s" || say "QEMU exited ($qrc) without a result"
  say "last console lines ($LOG):"; tail -n 40 "$LOG" >&2
  rc=1
fi
for f in $(grep -a '^SCENARIO .* FAIL' "$LOG" | awk '{print $2}'); do
  say "---- $f ----"; cat "$CACHE/stage/results/$f.log" >&2
done
say "boot to dom0 ready: $(grep -a '^XEN-TEST-READY' "$LOG" | awk '{print $2}') s of dom0 uptime; QEMU ran $secs s; exit $rc"
say "total: $((SECONDS - t0)) s (images $((t1 - t0)) s, QEMU $secs s)"
exit "$rc"
}
