/*
 * bench-peer: the C side of the benchmark, on Debian's libxenvchan.so.4.17.
 * Nothing on the data path but the library calls (no pattern, no hash), so
 * C<->C is the reference the TypeScript figures are divided by.
 *
 *   bench-peer MODE PEER PATH RING SIZE SECONDS
 *     send     server: write SIZE-byte pieces for SECONDS, then close
 *     recv     client: read SIZE-byte pieces until the peer closes
 *     bidir    server or client (PATH absolute = client): both at once
 *     echo     server: send back whatever arrives, until the peer closes
 *     ping     client: SIZE-byte round trips for SECONDS
 *     cserver  server: publish PATH/i, 1 byte, wait for the client to go, close; repeat
 *     cclient  client: connect to PATH/i, read the byte, close; 'E' ends
 *
 * Servers print {"event":"listening"} once published; every mode ends with
 * one JSON result line on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <libxenvchan.h>
#include <xentoollog.h>

static xentoollog_logger *logger;
static int peer;
static size_t ring, size;
static double seconds;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu(void) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
}

static void die(const char *what) {
  printf("{\"ok\":false,\"error\":\"%s\"}\n", what);
  exit(1);
}

/* Ring sizes as the TS peer asks for them: data flows server->client (right). */
static struct libxenvchan *serve(const char *path) {
  size_t left = ring == 1024 ? 2048 : ring; /* keeps the 1 KiB ring in the page */
  struct libxenvchan *c = libxenvchan_server_init(logger, peer, path, left, ring);
  if (!c) die("server_init");
  return c;
}

static struct libxenvchan *join(const char *path) {
  /* client_init fails until the server's entries exist: retry briefly */
  for (int i = 0; i < 200000; i++) {
    struct libxenvchan *c = libxenvchan_client_init(logger, peer, path);
    if (c) return c;
    usleep(50);
  }
  die("client_init");
  return NULL;
}

static void listening(void) {
  printf("{\"event\":\"listening\"}\n");
  fflush(stdout);
}

static void await_client(struct libxenvchan *c) {
  while (c->ring->cli_live == 2) libxenvchan_wait(c);
}

/* Time checks cost ~20 ns: with small pieces, look at the clock every few calls. */
static int batch(void) {
  return size >= 4096 ? 1 : (int)(4096 / size);
}

static int run_send(const char *path, char *buf) {
  struct libxenvchan *c = serve(path);
  c->blocking = 1;
  listening();
  await_client(c);
  double c0 = cpu(), t0 = now(), t;
  long long tx = 0;
  int k = batch();
  do {
    for (int i = 0; i < k; i++) {
      if (libxenvchan_write(c, buf, size) < 0) die("write");
      tx += (long long)size;
    }
  } while ((t = now()) - t0 < seconds);
  double cs = cpu() - c0;
  libxenvchan_close(c);
  printf("{\"ok\":true,\"tx\":%lld,\"seconds\":%.6f,\"cpu\":%.6f}\n", tx, t - t0, cs);
  return 0;
}

static int run_recv(const char *path, char *buf) {
  struct libxenvchan *c = join(path);
  c->blocking = 1;
  double c0 = cpu(), first = 0, last = 0;
  long long rx = 0;
  int n;
  while ((n = libxenvchan_read(c, buf, size)) > 0) {
    if (!rx) first = now();
    rx += n;
  }
  last = now(); /* read() failed: the peer closed and the ring is drained */
  double cs = cpu() - c0;
  libxenvchan_close(c);
  printf("{\"ok\":true,\"rx\":%lld,\"seconds\":%.6f,\"cpu\":%.6f}\n", rx, last - first, cs);
  return 0;
}

static int run_bidir(const char *path, char *out, char *in) {
  int server = path[0] != '/';
  struct libxenvchan *c = server ? serve(path) : join(path);
  c->blocking = 0; /* one thread moves both directions, sleeping in wait() when stuck */
  if (server) {
    listening();
    await_client(c);
  }
  double c0 = cpu(), t0 = now(), t = t0;
  long long tx = 0, rx = 0;
  size_t off = 0;
  while (libxenvchan_is_open(c) && (t = now()) - t0 < seconds) {
    int w = libxenvchan_write(c, out + off, size - off);
    if (w > 0) off = (off + (size_t)w) % size, tx += w;
    int r = libxenvchan_read(c, in, size);
    if (r > 0) rx += r;
    if (w <= 0 && r <= 0) libxenvchan_wait(c);
  }
  double cs = cpu() - c0;
  libxenvchan_close(c);
  printf("{\"ok\":true,\"tx\":%lld,\"rx\":%lld,\"seconds\":%.6f,\"cpu\":%.6f}\n", tx, rx, t - t0, cs);
  return 0;
}

static int run_echo(const char *path, char *buf) {
  struct libxenvchan *c = serve(path);
  c->blocking = 1;
  listening();
  int n;
  double c0 = cpu(); /* a blocked read costs none: this is the CPU of echoing */
  while ((n = libxenvchan_read(c, buf, size)) > 0)
    if (libxenvchan_write(c, buf, (size_t)n) < 0) break;
  double cs = cpu() - c0;
  libxenvchan_close(c);
  printf("{\"ok\":true,\"cpu\":%.6f}\n", cs);
  return 0;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int run_ping(const char *path, char *out, char *in) {
  struct libxenvchan *c = join(path);
  c->blocking = 1;
  size_t cap = 1 << 20, count = 0;
  double *rtt = malloc(cap * sizeof *rtt), c0 = cpu(), t0 = now(), t = t0;
  while (t - t0 < seconds && count < cap) {
    double s = now();
    if (libxenvchan_write(c, out, size) < 0) die("write");
    for (size_t got = 0; got < size;) {
      int n = libxenvchan_read(c, in + got, size - got);
      if (n < 0) die("read");
      got += (size_t)n;
    }
    t = now();
    rtt[count++] = (t - s) * 1e6;
  }
  double cs = cpu() - c0;
  libxenvchan_close(c);
  qsort(rtt, count, sizeof *rtt, cmp);
  printf("{\"ok\":true,\"count\":%zu,\"p50\":%.3f,\"p99\":%.3f,\"seconds\":%.6f,\"cpu\":%.6f}\n", count, rtt[count / 2],
         rtt[count * 99 / 100], t - t0, cs);
  return 0;
}

static int run_cserver(const char *base) {
  char path[128], mark;
  listening();
  double t0 = now(), t = t0;
  int i = 0;
  for (int last = 0; !last; i++) {
    last = now() - t0 >= seconds;
    snprintf(path, sizeof path, "%s/%d", base, i);
    struct libxenvchan *c = serve(path);
    c->blocking = 1;
    mark = last ? 'E' : 'C';
    if (libxenvchan_write(c, &mark, 1) != 1) die("write");
    while (libxenvchan_is_open(c)) libxenvchan_wait(c);
    libxenvchan_close(c);
    t = now();
  }
  printf("{\"ok\":true,\"cycles\":%d,\"seconds\":%.6f}\n", i, t - t0);
  return 0;
}

static int run_cclient(const char *base) {
  char path[128], mark = 'C';
  int i = 0;
  for (; mark != 'E'; i++) {
    snprintf(path, sizeof path, "%s/%d", base, i);
    struct libxenvchan *c = join(path);
    c->blocking = 1;
    if (libxenvchan_read(c, &mark, 1) != 1) die("read");
    libxenvchan_close(c);
  }
  printf("{\"ok\":true,\"cycles\":%d}\n", i);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: bench-peer send|recv|bidir|echo|ping|cserver|cclient PEER PATH RING SIZE SECONDS\n");
    return 2;
  }
  const char *mode = argv[1], *path = argv[3];
  peer = atoi(argv[2]);
  ring = (size_t)atol(argv[4]);
  size = (size_t)atol(argv[5]);
  seconds = atof(argv[6]);
  logger = (xentoollog_logger *)xtl_createlogger_stdiostream(stderr, XTL_CRITICAL, 0);
  char *out = malloc(size ? size : 1), *in = malloc(size ? size : 1);
  memset(out, 0x5a, size);
  if (!strcmp(mode, "send")) return run_send(path, out);
  if (!strcmp(mode, "recv")) return run_recv(path, in);
  if (!strcmp(mode, "bidir")) return run_bidir(path, out, in);
  if (!strcmp(mode, "echo")) return run_echo(path, in);
  if (!strcmp(mode, "ping")) return run_ping(path, out, in);
  if (!strcmp(mode, "cserver")) return run_cserver(path);
  if (!strcmp(mode, "cclient")) return run_cclient(path);
  fprintf(stderr, "bench-peer: unknown mode %s\n", mode);
  return 2;
}
