/*
 * evtchn-pingpong: round-trip latency of event channel notifications
 * between two processes, next to the same ping-pong over a pipe pair and a
 * unix socketpair (the floor any emulated wake-up can hope for).
 *
 *   evtchn-pingpong evtchn ROUNDS   two forked processes in one domain
 *                                   ($PINGPONG_DOMID, default 0),
 *                                   libxenevtchn as libxenvchan uses it:
 *                                   notify, poll, pending, unmask
 *   evtchn-pingpong pipe ROUNDS     the same over two pipes
 *   evtchn-pingpong socket ROUNDS   the same over a socketpair
 * Prints "<mode> <us> us/round-trip <rounds> rounds".
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xenevtchn.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

/* One side of a byte ping-pong over fds: the baseline. */
static void fd_side(int in, int out, long rounds, int first) {
  char b = 0;
  for (long i = 0; i < rounds; i++) {
    if (first && write(out, &b, 1) != 1) die("write");
    struct pollfd p = {in, POLLIN, 0};
    if (poll(&p, 1, -1) != 1 || read(in, &b, 1) != 1) die("read");
    if (!first && write(out, &b, 1) != 1) die("write");
  }
}

/* Wait for our port the way libxenvchan_wait does, then unmask it. */
static void ev_wait(xenevtchn_handle *h, evtchn_port_t port) {
  struct pollfd p = {xenevtchn_fd(h), POLLIN, 0};
  if (poll(&p, 1, -1) != 1) die("poll");
  xenevtchn_port_or_error_t got = xenevtchn_pending(h);
  if (got != (xenevtchn_port_or_error_t)port) die("pending");
  if (xenevtchn_unmask(h, port) < 0) die("unmask");
}

static void ev_side(xenevtchn_handle *h, evtchn_port_t port, long rounds, int first) {
  for (long i = 0; i < rounds; i++) {
    if (first && xenevtchn_notify(h, port) < 0) die("notify");
    ev_wait(h, port);
    if (!first && xenevtchn_notify(h, port) < 0) die("notify");
  }
}

int main(int argc, char **argv) {
  if (argc < 3) return fprintf(stderr, "usage: evtchn-pingpong evtchn|pipe|socket ROUNDS\n"), 2;
  const char *mode = argv[1];
  long rounds = atol(argv[2]);
  int a[2], b[2], down[2], up[2]; /* down: parent to child, up: back */
  if (pipe(down) < 0 || pipe(up) < 0) die("pipe");
  if (!strcmp(mode, "pipe")) {
    if (pipe(a) < 0 || pipe(b) < 0) die("pipe");
  } else if (!strcmp(mode, "socket")) {
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, a) < 0) die("socketpair");
  } else if (strcmp(mode, "evtchn")) {
    return fprintf(stderr, "unknown mode %s\n", mode), 2;
  }
  int evt = !strcmp(mode, "evtchn");
  /* both processes are in one domain: $PINGPONG_DOMID (default 0) */
  uint32_t domid = getenv("PINGPONG_DOMID") ? (uint32_t)atoi(getenv("PINGPONG_DOMID")) : 0;
  pid_t child = fork();
  if (child < 0) die("fork");
  double t0 = 0;
  if (evt) {
    /* The parent offers a port to its own domain, the child binds it. */
    xenevtchn_handle *h = xenevtchn_open(NULL, 0);
    if (!h) die("xenevtchn_open");
    uint32_t port;
    if (child) {
      xenevtchn_port_or_error_t p = xenevtchn_bind_unbound_port(h, domid);
      if (p < 0) die("bind_unbound_port");
      port = (uint32_t)p;
      if (write(down[1], &port, 4) != 4) die("write");
      char ok;
      if (read(up[0], &ok, 1) != 1) die("sync"); /* the child bound */
      t0 = now();
      ev_side(h, port, rounds, 1);
    } else {
      uint32_t remote;
      if (read(down[0], &remote, 4) != 4) die("read");
      xenevtchn_port_or_error_t p = xenevtchn_bind_interdomain(h, domid, remote);
      if (p < 0) die("bind_interdomain");
      if (write(up[1], "k", 1) != 1) die("write");
      ev_side(h, (uint32_t)p, rounds, 0);
      _exit(0);
    }
    xenevtchn_close(h);
  } else if (child) {
    t0 = now();
    if (!strcmp(mode, "pipe")) fd_side(b[0], a[1], rounds, 1);
    else fd_side(a[0], a[0], rounds, 1);
  } else {
    if (!strcmp(mode, "pipe")) fd_side(a[0], b[1], rounds, 0);
    else fd_side(a[1], a[1], rounds, 0);
    _exit(0);
  }
  double s = now() - t0;
  int st;
  if (waitpid(child, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) return fprintf(stderr, "child failed\n"), 1;
  printf("%s %.2f us/round-trip %ld rounds\n", mode, s / rounds * 1e6, rounds);
  return 0;
}
