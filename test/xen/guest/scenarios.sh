#!/bin/sh
# The real-Xen scenarios, run in dom0 by its init. One domU ("xt") carries
# node, the package and the C peers; dom0 drives it through its agent.
#   scenarios.sh            boot the domU, run every scenario, exit 1 if any failed
#   scenarios.sh NAME ARGS  one scenario (how the list runs each, under a timeout)
# Each scenario's output is in /stage/results/NAME.log; the console gets
# "SCENARIO NAME PASS|FAIL <seconds>" lines (run.sh prints them).
. /stage/lib.sh

# --- transfers: both directions at once, each receiver checking every byte -------
# BYTES each way: enough to wrap each ring many times (the list below) and
# to time the C <-> C baseline; an in-page ring moves ~1 KiB per event round
# trip, ~0.05-0.3 MB/s under TCG.

# C client in the domU, TS (dom0) or C server in dom0.
dom0_server() { # IMPL LEFT_MIN RIGHT_MIN "ORDERS" BYTES
  p=$(port); path=data/vchan/$D/$p; n=$5
  if [ "$1" = ts ]; then $PEER server "$D" "$path" --bytes $n --left-min "$2" --right-min "$3" >$L/s.log 2>&1 &
  else vchan-peer server "$D" "$path" --bytes $n --left-min "$2" --right-min "$3" --timeout-ms 120000 --stall-ms 60000 >$L/s.log 2>&1 &
  fi
  s=$!
  wait_for $L/s.log listening 60 || fail "the dom0 server did not publish: $(cat $L/s.log)"
  u_wait "$(u_start vchan-peer client 0 "/local/domain/0/$path" --bytes $n --timeout-ms 60000 --stall-ms 60000)" 900 >$L/c.log
  crc=$?; wait $s; src=$?
  cat $L/s.log $L/c.log
  [ $src = 0 ] && [ $crc = 0 ] || fail "server exited $src, domU client $crc"
  check_c $L/c.log 1 "$4" $n
  echo "RATE $1-server/c-client $4 $(field $L/c.log mbps) MB/s"
}

# C server in the domU, TS client in dom0.
domu_c_server() { # LEFT_MIN RIGHT_MIN "ORDERS" BYTES
  p=$(port); path=data/vchan/0/$p; n=$4
  j=$(u_start vchan-peer server 0 "$path" --bytes $n --left-min "$1" --right-min "$2" --timeout-ms 120000 --stall-ms 60000)
  $PEER client "$D" "$H/$path" --bytes $n >$L/t.log 2>&1
  trc=$?
  u_wait "$j" 900 >$L/c.log; crc=$?
  cat $L/t.log $L/c.log
  [ $trc = 0 ] && [ $crc = 0 ] || fail "TS client exited $trc, domU server $crc"
  check_c $L/c.log 2 "$3" $n
  ok $L/t.log "the TS client"
}

# check_c LOG RX_SEED "L R" BYTES: the C peer hashed the other's exact pattern, with these orders.
check_c() {
  ok "$1" "the C peer"
  [ "$(field "$1" received)" = "$4" ] || fail "the C peer received $(field "$1" received) of $4 bytes"
  [ "$(field "$1" rxHash)" = "$(pattern_hash "$2" "$4")" ] || fail "the C peer's rxHash is not that of seed $2's pattern"
  [ -z "$3" ] || [ "$(field "$1" leftOrder) $(field "$1" rightOrder)" = "$3" ] ||
    fail "orders $(field "$1" leftOrder) $(field "$1" rightOrder), expected $3"
}

# TS in the domU (xenstore through /dev/xen/xenbus) against C or TS in dom0.
domu_ts() { # ROLE-IN-DOMU  DOM0-IMPL  BYTES
  p=$(port)
  if [ "$1" = server ]; then j=$(u_start $UPEER server 0 "data/vchan/0/$p" --bytes "$3"); path=$H/data/vchan/0/$p
    if [ "$2" = c ]; then vchan-peer client "$D" "$path" --bytes "$3" --timeout-ms 120000 --stall-ms 60000 >$L/d.log 2>&1
    else $PEER client "$D" "$path" --bytes "$3" >$L/d.log 2>&1; fi
  else path=data/vchan/$D/$p
    if [ "$2" = c ]; then vchan-peer server "$D" "$path" --bytes "$3" --left-min 65536 --right-min 65536 --timeout-ms 120000 --stall-ms 60000 >$L/d.log 2>&1 &
    else $PEER server "$D" "$path" --bytes "$3" >$L/d.log 2>&1 & fi
    s=$!
    wait_for $L/d.log listening 60 || fail "the dom0 server did not publish: $(cat $L/d.log)"
    j=$(u_start $UPEER client 0 "/local/domain/0/$path" --bytes "$3")
    wait $s
  fi
  drc=$?
  u_wait "$j" 600 >$L/u.log; urc=$?
  cat $L/d.log $L/u.log
  [ $drc = 0 ] && [ $urc = 0 ] || fail "dom0 side exited $drc, domU side $urc"
  ok $L/u.log "the domU's TS $1"
  ok $L/d.log "dom0's peer"
  if [ "$2" = c ]; then
    [ "$(field $L/d.log rxHash)" = "$(pattern_hash "$([ "$1" = server ] && echo 1 || echo 2)" "$3")" ] ||
      fail "the C peer's rxHash is not the TS pattern's"
  fi
}

# Debian's vchan-socket-proxy (client mode) in the domU: a unix socket there
# reaches the TS server in dom0.
proxy() {
  p=$(port); path=data/vchan/$D/$p; n=$((4 * MiB))
  $PEER server "$D" "$path" --bytes $n --linger >$L/s.log 2>&1 &
  s=$!
  wait_for $L/s.log listening 60 || fail "the TS server did not publish"
  px=$(u_start vchan-socket-proxy -m client 0 "/local/domain/0/$path" /tmp/front.sock)
  u_run "i=0; until [ -S /tmp/front.sock ]; do i=\$((i+1)); [ \$i -gt 300 ] && exit 1; sleep 0.2; done" ||
    fail "the proxy made no socket: $(u_wait "$px" 1)"
  u_run $UPEER unix /tmp/front.sock --bytes $n >$L/u.log; urc=$?
  wait $s; src=$?
  u_run killall vchan-socket-proxy; u_wait "$px" 30
  cat $L/s.log $L/u.log
  [ $src = 0 ] && [ $urc = 0 ] || fail "TS server exited $src, socket client $urc"
  ok $L/s.log "the TS server"; ok $L/u.log "the socket client"
}

# --- crashes ------------------------------------------------------------------------
# One kill -9 takes the peer under test and a C client of a second C server
# in dom0: that server times the kill notice of this boot (agent round trip
# included), and ours must come within max(1 s, that latency) of it.

# late_notice WHAT OURS BASE T0: fails unless OURS (uptime ms) is within
# max(1 s, BASE - T0) of BASE, the baseline's notice of what began at T0.
late_notice() {
  slack=$(($3 - $4)); [ $slack -gt 1000 ] || slack=1000
  echo "$1 $(($2 - $4)) ms after the kill was sent; the C baseline after $(($3 - $4)) ms"
  [ "$2" -le $(($3 + slack)) ] || fail "$1 $(($2 - $3)) ms after the C baseline (limit $slack)"
}

# kill_pair IMPL: a C server in dom0 for the domU's IMPL client (PATH,
# S.log) and one for its C client (BASE, B.log), both holding; the domU job
# in C_JOB, its pids in the domU's /tmp/hold.pids.
kill_pair() {
  path=data/vchan/$D/$(port) base=data/vchan/$D/$(port)
  vchan-peer server "$D" "$base" --mode hold --timeout-ms 120000 >$L/b.log 2>&1 &
  wait_for $L/b.log listening 60 || fail "the C baseline server did not publish"
  [ "$1" = c ] && client="vchan-peer client 0 /local/domain/0/$path --mode hold --timeout-ms 60000" ||
    client="$UPEER client 0 /local/domain/0/$path --mode hold"
  C_JOB=$(u_start "$client & echo \$! >/tmp/hold.pids; vchan-peer client 0 /local/domain/0/$base --mode hold --timeout-ms 60000 & echo \$! >>/tmp/hold.pids; wait")
  wait_for $L/b.log '"open"' 120 || fail "the C client did not connect to the C baseline server"
}

# The C peer in the domU dies: the TS server in dom0 closes.
kill_c() {
  mkfifo /tmp/k.in; exec 3<>/tmp/k.in
  kill_pair c
  $PEER server "$D" "$path" --mode hold <&3 >$L/s.log 2>&1 &
  s=$!
  wait_for $L/s.log '"open"' 120 || fail "the C client did not connect to the TS server: $(cat $L/s.log)"
  echo mark >&3 # the clock starts before the command leaves dom0
  t0=$(ms); u_run 'kill -9 $(cat /tmp/hold.pids)'
  wait_for $L/s.log closed 60 || fail "the TS server did not close: $(cat $L/s.log)"
  wait_for $L/b.log closed 60 || fail "the C baseline server did not see its client die: $(cat $L/b.log)"
  exec 3>&-; kill $s; u_wait "$C_JOB" 10
  cat $L/s.log $L/b.log
  ts=$(line_field $L/s.log closed upMs); cs=$(line_field $L/b.log closed upMs)
  late_notice closed ${ts%.*} ${cs%.*} $t0
}

# Node in the domU dies: the C server in dom0 sees libxenvchan_is_open() == 0.
kill_node() {
  kill_pair ts
  vchan-peer server "$D" "$path" --mode hold --timeout-ms 120000 >$L/s.log 2>&1 &
  wait_for $L/s.log '"open"' 120 || fail "the TS client did not connect: $(cat $L/s.log)"
  sleep 1 # let the TS client settle into waiting
  t0=$(ms); u_run 'kill -9 $(cat /tmp/hold.pids)'
  wait_for $L/s.log closed 60 || fail "is_open() stayed non-zero for 60 s: $(cat $L/s.log)"
  wait_for $L/b.log closed 60 || fail "the C baseline server did not see its client die: $(cat $L/b.log)"
  u_wait "$C_JOB" 10
  cat $L/s.log $L/b.log
  grep closed $L/s.log | grep -q '"liveByte":0' || fail "the client's live byte is not 0"
  ts=$(line_field $L/s.log closed upMs); cs=$(line_field $L/b.log closed upMs)
  late_notice noticed ${ts%.*} ${cs%.*} $t0
}

# --- a hostile server in the domU against a TS client in dom0 -------------------------
# WANT: any (a protocol error or a close) or clean (a close: "end", or a
# write refused because the peer closed). The CPU bound is relative: just
# before, the same TS process faces an honest server for as long, one that
# only sends a spurious event every 20 ms (changing nothing, as a storm does
# 1000 times over); under attack it may use at most twice that CPU share. A
# spinning client burns a core. (Wake-ups are printed, not bounded: how many
# events coalesce depends on how starved the host leaves us.)
hostile() { # WANT HOSTILE-ARGS...
  want=$1; shift
  dur=$(echo "$*" | sed -n 's/.*--duration-ms \([0-9]*\).*/\1/p')
  path=data/vchan/0/$(port) base=
  if [ "${dur:-2000}" -gt 0 ]; then # an attack that lasts: its honest baseline
    base=data/vchan/0/$(port)
    b=$(u_start hostile-peer 0 "$base" --timeout-ms 300000 --attacks none --flood-us 20000 --interval-ms 20 --duration-ms "${dur:-2000}")
  fi
  j=$(u_start hostile-peer 0 "$path" --timeout-ms 300000 "$@")
  $PEER hostile "$D" "$H/$path" 60000 ${base:+"$H/$base"} >$L/t.log 2>&1; trc=$?
  # a server whose page we refused waits for a client that never comes
  [ "$(field $L/t.log connected)" = true ] || u_run killall -q hostile-peer
  [ -z "$base" ] || u_wait "$b" 120 >/dev/null
  u_wait "$j" 120 >$L/h.log
  cat $L/t.log; tail -2 $L/h.log
  [ $trc = 0 ] || fail "the TS client exited $trc"
  out=$(field $L/t.log outcome)
  [ "$out" = error ] || [ "$out" = end ] || fail "the TS client is $out"
  [ "$want" = any ] || [ "$out" = end ] || [ "$(field $L/t.log code)" = ERR_VCHAN_PEER_CLOSED ] ||
    fail "the TS client should have seen a clean close, not $out $(field $L/t.log code)"
  [ "$want" != any ] || [ "$out" = end ] || [ "$(field $L/t.log code)" = ERR_VCHAN_PROTOCOL ] || [ "$(field $L/t.log connected)" = false ] ||
    fail "ended with $(field $L/t.log code), not ERR_VCHAN_PROTOCOL"
  cpu=$(field $L/t.log cpuMs); wall=$(field $L/t.log wallMs); cpu=${cpu%.*} wall=${wall%.*}
  [ -n "$base" ] || { echo "cpu $cpu ms over $wall ms, $(field $L/t.log wakeups) wake-ups"; return 0; }
  bout=$(line_field $L/t.log baseline outcome)
  [ "$bout" = end ] || [ "$(line_field $L/t.log baseline code)" = ERR_VCHAN_PEER_CLOSED ] ||
    fail "facing the honest server, the TS client saw $bout $(line_field $L/t.log baseline code), not a clean close"
  bcpu=$(line_field $L/t.log baseline cpuMs); bwall=$(line_field $L/t.log baseline wallMs); bcpu=${bcpu%.*} bwall=${bwall%.*}
  echo "cpu $cpu ms over $wall ms, $(field $L/t.log wakeups) wake-ups;" \
    "honest baseline $bcpu ms over $bwall ms, $(line_field $L/t.log baseline wakeups) wake-ups"
  # over a short window startup costs dominate
  [ "$wall" -lt 1000 ] && return 0
  [ $((cpu * bwall)) -le $((2 * bcpu * wall)) ] ||
    fail "busy: $((cpu * 100 / wall))% CPU, more than twice the baseline's $((bcpu * 100 / bwall))%"
}

# --- the vchan command: listen in dom0, connect in the domU, a file each way at once
cli() {
  p=$(port); n=$((4 * MiB))
  head -c $n /dev/urandom >/tmp/cli.out
  $VCHAN listen --peer "$D" --port "$p" --progress </tmp/cli.out >/tmp/cli.in 2>$L/l.log &
  s=$!
  wait_for $L/l.log listening 60 || fail "vchan listen did not publish: $(cat $L/l.log)"
  u_wait "$(u_start "head -c $n /dev/urandom >/tmp/cli.out && $UVCHAN connect --peer 0 --port $p </tmp/cli.out >/tmp/cli.in && sha256sum /tmp/cli.out /tmp/cli.in")" 300 >$L/c.log
  crc=$?; wait $s; src=$?
  sed -i 's/\\n/\n/g' $L/c.log # the agent's output comes back through xenstore, newlines escaped
  cat $L/l.log $L/c.log
  [ $src = 0 ] && [ $crc = 0 ] || fail "vchan listen exited $src, vchan connect in the domU $crc"
  domu_sent=$(awk '$2 == "/tmp/cli.out" {print $1}' $L/c.log)
  domu_got=$(awk '$2 == "/tmp/cli.in" {print $1}' $L/c.log)
  [ -n "$domu_sent" ] && [ "$(sha256sum </tmp/cli.in | cut -d' ' -f1)" = "$domu_sent" ] || fail "dom0 did not receive the domU's file intact"
  [ "$(sha256sum </tmp/cli.out | cut -d' ' -f1)" = "$domu_got" ] || fail "the domU did not receive dom0's file intact"
  [ "$(wc -c </tmp/cli.in)" -eq $n ] || fail "dom0 received $(wc -c </tmp/cli.in) of $n bytes"
  echo "closed: both files intact, $n bytes each way"
  rm -f /tmp/cli.out /tmp/cli.in
}

# --- bench/'s peers on real Xen, both ends in dom0: this library against C
# libxenvchan in the same boot, as ratios (TCG: absolute figures mean little).
# One run of each (a TS run starts two node processes, ~5-8 s each here).
# Measures, never fails on a ratio; fails only if a peer does.
bench() {
  for c in "send recv 65536 1048576" "send recv 512 1048576" "send recv 65536 4096" "echo ping 64 65536"; do
    set -- $c
    for impl in c ts; do
      p=$(port); path=data/vchan/0/b$p
      if [ $impl = c ]; then run_peer="bench-peer"; else run_peer="$BPEER"; fi
      api=; [ $impl = ts ] && api="vchan vchan"
      $run_peer $1 $api 0 "$path" "$4" "$3" 1 >$L/bs.log 2>&1 &
      s=$!
      wait_for $L/bs.log listening 60 || fail "$impl bench server did not publish: $(cat $L/bs.log)"
      $run_peer $2 $api 0 "/local/domain/0/$path" "$4" "$3" 1 >$L/bc.log 2>&1 || fail "$impl bench client: $(cat $L/bc.log)"
      wait $s || fail "$impl bench server: $(cat $L/bs.log)"
      if [ $2 = ping ]; then v=$(field $L/bc.log p50); else
        v=$(awk -v rx="$(field $L/bc.log rx)" -v t="$(field $L/bc.log seconds)" 'BEGIN { printf "%.1f", rx / t / 1e6 }'); fi
      echo "$impl $2 w=$3 ring=$4: $v $([ $2 = ping ] && echo 'µs p50' || echo MB/s)," \
        "client CPU $(field $L/bc.log cpu) s over $(field $L/bc.log seconds) s"
      [ $impl = c ] && c_v=$v || ts_v=$v
    done
    echo "RATE bench $2 w=$3 ring=$4 TS/C $(awk -v t=$ts_v -v c=$c_v 'BEGIN { printf "%.2f", t / c }')"
  done
}

# --- a dead peer is released at once --------------------------------------------------
# One TS client process in dom0 (peer keeper) outlives 50 C servers and 3 TS
# servers in the domU, each killed with kill -9 after a little traffic. It
# keeps every stream it was given and never ends, destroys or closes one.
# Each kill also takes a C server whose C client in dom0 times the kill
# notice of this boot: within 1 s of that client seeing it, the keeper must
# map no page of the dead server (gntdev lines in /proc/PID/maps). At the end
# no entry of the domU's grant table is mapped by dom0 beyond those mapped
# before (its console and xenstore pages), and a 51st C server still moves
# 1 MiB each way, byte-exact, through the same process.

# grants_by_dom0: the refs of the domU's grant table that dom0 maps (Xen's 'g' key).
grants_by_dom0() {
  xl dmesg -c >/dev/null
  xl debug-keys g
  i=0; until xl dmesg | grep -q 'gnttab_usage_print_all ] done'; do
    i=$((i + 1)); [ $i -gt 50 ] && { echo "no grant table dump in xl dmesg" >&2; return 1; }; sleep 0.1
  done
  xl dmesg >$L/gnttab.txt
  # "(XEN) grant-table for remote d<N> (v1)" heads each domain's entries:
  # "(XEN) [0x<ref>] <mapping domain> <mfn> <pin> <granted-to domain> <gmfn> <flags>"
  awk -v d="d$D" '/grant-table for remote/ { mine = ($5 == d) } mine && $2 ~ /^\[0x/ && $3 == 0 { print $2 }' $L/gnttab.txt
}

# kr_round N OPEN: dom0's half of round N (the domU's is kill-rounds): the
# keeper and the baseline C client connect, the domU kills both servers.
# Deadline: 1 s after the later of the C client's and the keeper's own
# notice of the death (its 'end'; under a starved host node wakes up to
# seconds after C: kill-c-peer bounds that lag). Late: a look (the keeper's
# own, every 50 ms, or ours) that began after it still saw a mapping.
kr_round() {
  n=$1 k="\"n\":$n," r0=$(ms)
  vchan-peer client "$D" "$H/$KP$n-b" --mode hold --timeout-ms 120000 >$L/b.log 2>&1 &
  bc=$!
  echo "$H/$KP$n-a 4096 $2" >&3
  wait_for $L/k.log "\"exchanged\",$k" 300 || fail "round $n: the keeper did not exchange with its server: $(tail -3 $L/k.log)"
  before=$(line_field $L/k.log "\"exchanged\",$k" before) held=$(line_field $L/k.log "\"exchanged\",$k" mapped)
  [ "$held" -gt "$before" ] || fail "round $n: the keeper's connected stream maps nothing ($held, $before before)"
  rx=$(ms)
  # the domU's job has ended if one of its servers could not be started: its words first
  wait $bc || fail "round $n: the baseline C client failed: $(cat $L/b.log); the domU: $(u_wait "$j" 5)"
  seen=$(line_field $L/b.log closed upMs); seen=${seen%.*}
  late= ended=
  until grep -q "\"released\",$k" $L/k.log; do
    t=$(ms)
    [ -n "$ended" ] || { ended=$(line_field $L/k.log "\"event\":\"end\",$k" upMs); ended=${ended%.*}; }
    if [ -n "$ended" ]; then
      dl=$(( (ended > seen ? ended : seen) + 1000 ))
      [ "$t" -gt $dl ] && [ "$(gntdev_maps $K)" -gt "$before" ] && { late=$((t - dl + 1000)); break; }
    elif [ "$t" -gt $((seen + 60000)) ]; then
      fail "round $n: the keeper showed no sign of its server's death 60 s after the C client saw it"
    fi
    sleep 0.1
  done
  xenstore-rm "$H/$KP$n-a" "$H/$KP$n-b" # a killed server leaves its entries
  [ -n "$ended" ] || { ended=$(line_field $L/k.log "\"event\":\"end\",$k" upMs); ended=${ended%.*}; }
  dl=$(( (${ended:-0} > seen ? ${ended:-0} : seen) + 1000 ))
  what="round $n ($2, $(line_field $L/k.log "\"exchanged\",$k" readSize) B rings, $((held - before)) mapped;"
  what="$what exchanged after $(secs $((rx - r0))) s, killed $(secs $((seen - rx))) s later, round $(secs $(($(ms) - r0))) s)"
  if [ -z "$late" ]; then
    last=$(line_field $L/k.log "\"released\",$k" lastMappedUpMs) gone=$(line_field $L/k.log "\"released\",$k" goneUpMs)
    last=${last%.*} gone=${gone%.*}
    [ "$last" -le $dl ] || late=$((last - dl + 1000))
    [ "$(gntdev_maps $K)" -le "$before" ] || fail "$what: the keeper said released, /proc/$K/maps disagrees"
  fi
  [ -n "$ended" ] && ended="$((ended - seen)) ms" || ended=never
  if [ -n "$late" ]; then
    LATE="$LATE $n"
    echo "$what: still mapped $late ms after the later notice; the keeper's 'end' at $ended after the C client's"
  else
    echo "$what: the keeper's 'end' at $ended after the C client's, its mappings gone by $((gone - seen)) ms"
  fi
}

released() {
  g_before=$(grants_by_dom0) || fail "cannot read Xen's grant table"
  echo "the domU's grants mapped by dom0 before: $(echo $g_before)"
  mkfifo /tmp/keep.in; $PEER keeper "$D" </tmp/keep.in >$L/k.log 2>&1 &
  K=$!; open_fifo 3 /tmp/keep.in '>' || fail "cannot open the keeper's input"
  KP=data/vchan/0/$(port)- LATE=
  j=$(u_start kill-rounds 50 3 "$KP")
  n=0; while [ $n -lt 53 ]; do
    n=$((n + 1))
    # allowHalfOpen true (nothing closes the stream), or the library's default
    [ $((n % 2)) = 1 ] || [ $n -gt 50 ] && open=half || open=default
    kr_round $n $open
  done
  u_wait "$j" 60 >$L/r.log || fail "the domU's rounds failed: $(cat $L/r.log)"
  # The 51st C server, through the same process.
  a=data/vchan/0/$(port) n=$((n + 1))
  j=$(u_start vchan-peer server 0 "$a" --bytes $MiB --left-min 65536 --right-min 65536 --timeout-ms 120000 --stall-ms 60000)
  echo "$H/$a $MiB half" >&3
  wait_for $L/k.log "\"exchanged\",\"n\":$n," 300 || fail "the keeper did not exchange 1 MiB with the 51st C server: $(tail -3 $L/k.log)"
  u_wait "$j" 300 >$L/c.log || fail "the 51st C server failed: $(cat $L/c.log)"
  check_c $L/c.log 2 "16 16" $MiB
  echo "the 51st C server: 1 MiB each way, byte-exact, $(line_field $L/k.log "\"exchanged\",\"n\":$n," mbps) MB/s"
  # It closed after the transfer: the keeper lets go of that one too.
  i=0; while [ "$(gntdev_maps $K)" -gt 0 ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
  left=$(gntdev_maps $K)
  after=$(grants_by_dom0) || fail "cannot read Xen's grant table"
  # refs compared field by field, blind to stray whitespace or CRs in the dump
  # (a line-exact grep -vxF once reported the same two refs as new)
  echo "$g_before" >$L/grants-before.txt
  extra=$(echo "$after" | awk '{ gsub(/[\r \t]/, "") } NR == FNR { seen[$0] = 1; next } $0 != "" && !($0 in seen)' $L/grants-before.txt -)
  [ -z "$extra" ] || { echo "grant dumps, before and after:"; od -c $L/grants-before.txt | head; echo "$after" | od -c | head; }
  echo "the domU's grants mapped by dom0 at the end: $(echo $after | head -c 600)"
  echo "streams that saw their end: $(grep -c '"event":"end"' $L/k.log) of $n"
  exec 3>&-; wait $K
  tail -1 $L/k.log
  [ -z "$LATE" ] || fail "still mapped 1 s after the C client saw the kill, rounds:$LATE"
  [ "$left" = 0 ] || fail "the keeper still maps $left regions of dead servers"
  [ -z "$extra" ] || fail "dom0 still maps $(echo "$extra" | wc -l) grants of the domU: $(echo $extra | head -c 300)"
  echo "released: $n streams kept, none maps anything; no grant of the domU mapped by dom0 beyond the $(echo "$g_before" | grep -c .) before"
}

# --- the domU is destroyed under an open channel ---------------------------------------
destroy() {
  p=$(port); path=data/vchan/$D/$p
  mkfifo /tmp/x.in; $PEER server "$D" "$path" --mode hold </tmp/x.in >$L/s.log 2>&1 &
  s=$!; open_fifo 3 /tmp/x.in '>' || fail "cannot open the TS server's input"
  wait_for $L/s.log listening 60 || fail "the TS server did not publish"
  u_start vchan-peer client 0 "/local/domain/0/$path" --mode hold --timeout-ms 60000 >/dev/null
  wait_for $L/s.log '"open"' 120 || fail "the C client did not connect"
  grep -q gntalloc /proc/$s/maps || fail "the open channel holds no gntalloc pages (wrong pid?)"
  echo mark >&3
  t0=$(ms); xl destroy xt || fail "xl destroy failed"
  t1=$(ms) # the toolstack is done: the domain and its xenstore home are gone
  wait_for $L/s.log closed 60 || fail "the TS server did not close: $(cat $L/s.log)"
  cat $L/s.log
  t=$(line_field $L/s.log closed upMs); t=${t%.*}
  # within max(1 s, what xl destroy took) of its return
  slack=$((t1 - t0)); [ $slack -gt 1000 ] || slack=1000
  echo "closed $((t - t0)) ms after xl destroy began; xl destroy took $((t1 - t0)) ms"
  [ "$t" -le $((t1 + slack)) ] || fail "closed $((t - t1)) ms after xl destroy returned (limit $slack)"
  # still running: nothing of the channel may remain
  grep -E 'gntalloc|gntdev' /proc/$s/maps && fail "grant mappings remain"
  ls -l /proc/$s/fd | grep /dev/xen && fail "Xen device files remain open"
  xenstore-ls "/local/domain/0/data/vchan/$D" 2>/dev/null | grep . && fail "xenstore entries remain"
  exec 3>&-; wait $s
  echo "released: no grant mappings, no /dev/xen files, no xenstore entries"
}

# --- the list -----------------------------------------------------------------------
if [ $# -gt 0 ]; then "$@"; exit; fi

mkdir -p /stage/results
failed=0
only=$(cat /stage/only 2>/dev/null)
run() { # NAME LIMIT-SECONDS FUNCTION ARGS...
  name=$1 limit=$2; shift 2
  [ -z "$only" ] || echo "$name" | grep -qE "$only" || return 0
  t0=$(ms); rm -rf "$L"; mkdir -p "$L"
  out=/stage/results/$name.log
  timeout -s KILL "$limit" sh /stage/scenarios.sh "$@" >"$out" 2>&1; rc=$?
  [ $rc = 0 ] && r=PASS || { r=FAIL; failed=1; }
  if [ $rc = 137 ]; then # killed mid-way: show what its peers had said
    echo "TIMEOUT after $limit s" >>"$out"
    for f in "$L"/*.log; do [ -f "$f" ] && { echo "== $f"; cat "$f"; }; done >>"$out"
    { echo "== the domU's console, last lines"; tail -150 /var/log/xen/console/guest-xt.log; } >>"$out" 2>&1
  fi
  echo "SCENARIO $name $r $(( ($(ms) - t0) / 1000 )) s $(grep -h '^RATE\|^closed\|^noticed\|^cpu\|^released' /stage/results/$name.log | tr '\n' ' ')"
  # whatever a failed or killed scenario left running
  killall -9 node vchan-peer hostile-peer 2>/dev/null
  [ $r = PASS ] || [ "$name" = destroy ] ||
    u_wait "$(u_start killall -9 node vchan-peer hostile-peer vchan-socket-proxy)" 20 >/dev/null 2>&1
  rm -f /tmp/*.in
}

cat >/tmp/xt.cfg <<CFG
name = "xt"
kernel = "/stage/vmlinuz"
ramdisk = "/stage/domu.cpio"
extra = "console=hvc0 rdinit=/init quiet"
memory = 512
vcpus = 1
on_poweroff = "destroy"
on_crash = "destroy"
CFG
t0=$(ms)
xl create /tmp/xt.cfg >/tmp/xt.log 2>&1 || { cat /tmp/xt.log; exit 1; }
echo "DOMU-CREATED $(( ($(ms) - t0) / 1000 )) s"
xl domid xt >/tmp/domid; . /stage/lib.sh
until [ "$(xenstore-read "$H/data/agent" 2>/dev/null)" = ready ]; do
  [ $(($(ms) - t0)) -gt 300000 ] && { echo "the domU's agent never came up"; tail -30 /var/log/xen/console/guest-xt.log; exit 1; }
  sleep 0.5
done
echo "DOMU-UP $(( ($(ms) - t0) / 1000 )) s (domid $D)"
grep -a -E 'initramfs|Run /init|DOMU-READY' /var/log/xen/console/guest-xt.log | sed 's/^/DOMU-BOOT /' 

# in-page rings: 256 KiB wraps them 128-256 times; 1 MiB rings: 8 MiB, 8 times
for o in "1024 2048 10 11 $((MiB / 4))" "4096 4096 12 12 $MiB" "1048576 1048576 20 20 $((8 * MiB))"; do
  set -- $o
  run "c-server-dom0.c-client-domU.$3-$4" 300 dom0_server c "$1" "$2" "$3 $4" "$5"
  run "ts-server-dom0.c-client-domU.$3-$4" 300 dom0_server ts "$1" "$2" "$3 $4" "$5"
  run "c-server-domU.ts-client-dom0.$3-$4" 300 domu_c_server "$1" "$2" "$3 $4" "$5"
done
run ts-server-domU.c-client-dom0 300 domu_ts server c $((4 * MiB))
run c-server-dom0.ts-client-domU 300 domu_ts client c $((4 * MiB))
run ts-server-dom0.ts-client-domU 300 domu_ts client ts $((4 * MiB))
run ts-server-domU.ts-client-dom0 300 domu_ts server ts $((4 * MiB))
run vchan-socket-proxy-domU.ts-server-dom0 300 proxy
run vchan-command.listen-dom0.connect-domU 300 cli
run kill-c-peer 180 kill_c
run kill-node 180 kill_node
run hostile.bad-orders 180 hostile any --pre left_order=9 --attacks none --duration-ms 0
run hostile.all-attacks 180 hostile any --attacks all --interval-ms 20 --duration-ms 3000 --seed 3
# notify bytes scribbled, each with an event, every 20 ms: we wake for each
# and look, as for the baseline's bare events, but must not spin
run hostile.notify-bytes 180 hostile clean --attacks notify --interval-ms 20 --duration-ms 4000 --seed 5
# 1000-event storms and a flood of events without pause: we survive them, see
# the peer's close, and cost no more than the baseline's one event per 20 ms
# (wake-ups that find nothing new delay the port's unmask, up to 32 ms;
# before that a storm cost 0.15-1 core)
run hostile.event-storm 180 hostile clean --attacks storm --interval-ms 20 --duration-ms 4000 --seed 5
run hostile.event-flood 180 hostile clean --attacks none --flood-us 0 --interval-ms 20 --duration-ms 4000
run bench.ts-vs-c.dom0 300 bench
run dead-peer-released 900 released
run destroy 180 destroy
cp /var/log/xen/console/guest-xt.log /stage/results/domu-console.log 2>/dev/null
exit $failed
