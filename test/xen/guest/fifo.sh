# open_fifo FD PATH MODE: opens the fifo PATH on FD of this shell, MODE '<' to
# read or '>' to write. Such an open blocks until the other end comes, and a
# background child's death (SIGCHLD) can interrupt it: busybox sh then says
# "can't open PATH: Interrupted system call" and a plain exec ends the whole
# script. `command` keeps the shell alive, so the open is retried.
open_fifo() {
  _tries=0
  until command eval "exec $1$3\"\$2\"" 2>/dev/null; do
    _tries=$((_tries + 1))
    [ $_tries -lt 50 ] || { echo "cannot open $2 on fd $1"; return 1; }
  done
}
