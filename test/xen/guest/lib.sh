# Helpers for scenarios.sh, sourced in dom0. The domU ("xt") runs commands
# for us through its agent (see domu-init); D is its domid.
P=/stage/payload
export PATH=$P/bin:$PATH
NODE=$P/bin/node
PEER="$NODE $P/pkg/xen/peer.mjs"
UPEER="node /payload/pkg/xen/peer.mjs" # the same, as the domU names it
VCHAN="$NODE $P/pkg/xen/vchan.mjs"      # the vchan command
UVCHAN="node /payload/pkg/xen/vchan.mjs"
BPEER="$NODE $P/pkg/xen/bench-peer.mjs"  # bench/'s TS peer (bench-peer, in bin/, is its C side)
MiB=1048576
L=/tmp/sc # the running scenario's peer logs
[ -f /tmp/domid ] && D=$(cat /tmp/domid) && H=/local/domain/$D

fail() { echo "FAIL: $*"; exit 1; }
say() { echo "-- $*"; }
# ms: milliseconds of uptime (10 ms steps), without starting a process
ms() { read -r u _ </proc/uptime; echo $((${u%.*}${u#*.} * 10)); }

# A fresh vchan port per use, so no scenario sees another's leftovers.
port() { n=$(cat /tmp/port 2>/dev/null || echo 100); echo $((n + 1)) >/tmp/port; echo "$n"; }

# u_start CMD: run CMD in the domU in the background; prints a job id.
u_start() {
  id=$(cat /tmp/job 2>/dev/null || echo 1); echo $((id + 1)) >/tmp/job
  xenstore-write "$H/data/cmd/$id" "$*" || fail "cannot hand the domU job $id"
  echo "$id"
}
# u_wait ID [SECONDS]: its output tail on stdout, its status as ours.
u_wait() {
  i=0; limit=$((${2:-300} * 5))
  until rc=$(xenstore-read "$H/data/rc/$1" 2>/dev/null); do
    i=$((i + 1)); [ $i -gt $limit ] && { echo "domU job $1 gave no result in ${2:-300} s"; return 124; }
    sleep 0.2
  done
  xenstore-read "$H/data/out/$1"
  xenstore-rm "$H/data/cmd/$1" "$H/data/out/$1" "$H/data/rc/$1"
  return "$rc"
}
u_run() { u_wait "$(u_start "$*")" 300; }

# wait_for FILE TEXT [SECONDS]: until FILE holds TEXT.
wait_for() {
  i=0; while ! grep -q "$2" "$1" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt $((${3:-60} * 5)) ] && return 1; sleep 0.2
  done
}
# field FILE KEY: KEY's value in FILE's last JSON line with an "ok" field.
field() { grep '"ok":' "$1" | tail -1 | sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }
# line_field FILE TEXT KEY: KEY's value in FILE's last line holding TEXT.
line_field() { grep -F "$2" "$1" | tail -1 | sed -n "s/.*\"$3\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }
# gntdev_maps PID: how many mappings of a peer's pages (gntdev) the process holds.
gntdev_maps() { grep -c /dev/xen/gntdev "/proc/$1/maps"; }
ok() { [ "$(field "$1" ok)" = true ] || fail "$2 did not succeed: $(tail -3 "$1")"; }
# pattern_hash SEED BYTES: what a C receiver must report (computed once).
pattern_hash() {
  f=/tmp/hash.$1.$2
  [ -s "$f" ] || vchan-peer --dump-pattern "$2" "$1" --hash-only >"$f"
  cat "$f"
}
