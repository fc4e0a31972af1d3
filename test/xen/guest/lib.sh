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

. $P/bin/fifo.sh # open_fifo

fail() { echo "FAIL: $*"; exit 1; }
say() { echo "-- $*"; }
# ms: milliseconds of uptime (10 ms steps), without starting a process
ms() { read -r u _ </proc/uptime; echo $((${u%.*}${u#*.} * 10)); }
# secs MS: as seconds with one decimal
secs() { [ "$1" -lt 0 ] && { printf -- -; secs $((-$1)); return; }; echo "$(($1 / 1000)).$(($1 % 1000 / 100))"; }

# A fresh vchan port per use, so no scenario sees another's leftovers.
port() { n=$(cat /tmp/port 2>/dev/null || echo 100); echo $((n + 1)) >/tmp/port; echo "$n"; }

# u_start CMD: run CMD in the domU in the background; prints a job id.
u_start() {
  id=$(cat /tmp/job 2>/dev/null || echo 1); echo $((id + 1)) >/tmp/job
  xenstore-write "$H/data/cmd/$id" "$*" || fail "cannot hand the domU job $id"
  echo "$id"
}
# u_wait ID [SECONDS]: its output tail on stdout, its status as ours. Sleeps
# in a xenstore watch on its status node rather than polling (starting a
# process costs ~0.1 s here): the watch's first line says it is set, so a
# status that came before is read then, a later one on the next line.
u_wait() {
  f=/tmp/u_wait.$1; rm -f $f; mkfifo $f
  timeout "${2:-300}" xenstore-watch "$H/data/rc/$1" >$f 2>/dev/null &
  w=$! rc=
  while read -r _; do rc=$(xenstore-read "$H/data/rc/$1" 2>/dev/null) && break; done <$f
  kill $w 2>/dev/null; rm -f $f
  [ -n "$rc" ] || { echo "domU job $1 gave no result in ${2:-300} s"; return 124; }
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
# line_field FILE TEXT KEY: KEY's value in FILE's last JSON line holding
# TEXT (no / in it), in one process: sed keeps the last such line.
line_field() { sed -n "/$2/h; \${x; s/.*\"$3\":\"\{0,1\}\([^\",}]*\).*/\1/p}" "$1"; }
# field FILE KEY: KEY's value in FILE's last JSON line with an "ok" field.
field() { line_field "$1" '"ok":' "$2"; }
# gntdev_maps PID: how many mappings of a peer's pages (gntdev) the process holds.
gntdev_maps() { grep -c /dev/xen/gntdev "/proc/$1/maps"; }
ok() { [ "$(field "$1" ok)" = true ] || fail "$2 did not succeed: $(tail -3 "$1")"; }
# pattern_hash SEED BYTES: what a C receiver must report (computed once).
pattern_hash() {
  f=/tmp/hash.$1.$2
  [ -s "$f" ] || vchan-peer --dump-pattern "$2" "$1" --hash-only >"$f"
  cat "$f"
}
