/*
 * vchan-bench: one-way throughput of Debian's libxenvchan, nothing else on
 * the data path (no pattern, no hash), for comparing the emulator against a
 * plain shared-memory copy (shm-copy.c).
 *
 *   vchan-bench server PEER PATH BYTES [CHUNK] [RING]   sends
 *     RING is both ring sizes, or "READ,WRITE" (the server's left, right)
 *   vchan-bench client PEER PATH BYTES [CHUNK]          receives
 * Prints "<MB/s> MB/s <bytes> bytes <seconds> s" (MB = 10^6 bytes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libxenvchan.h>
#include <xentoollog.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 5) return fprintf(stderr, "usage: vchan-bench server|client PEER PATH BYTES [CHUNK] [RING]\n"), 2;
  int server = !strcmp(argv[1], "server");
  long long total = atoll(argv[4]);
  size_t chunk = argc > 5 ? (size_t)atol(argv[5]) : 65536;
  size_t ring = argc > 6 ? (size_t)atol(argv[6]) : 1 << 20, rring = ring;
  const char *comma = argc > 6 ? strchr(argv[6], ',') : NULL;
  if (comma) ring = (size_t)atol(comma + 1); /* we send through the write ring */
  xentoollog_logger *log = (xentoollog_logger *)xtl_createlogger_stdiostream(stderr, XTL_CRITICAL, 0);
  struct libxenvchan *c = NULL;
  if (server) c = libxenvchan_server_init(log, atoi(argv[2]), argv[3], rring, ring);
  else
    for (int i = 0; !c && i < 20000; i++)
      if (!(c = libxenvchan_client_init(log, atoi(argv[2]), argv[3]))) usleep(500);
  if (!c) return perror("init"), 1;
  c->blocking = 1;
  char *buf = malloc(chunk);
  memset(buf, 0x5a, chunk);
  if (server) /* the clock starts when the client is there */
    while (c->ring->cli_live == 2) libxenvchan_wait(c);
  double t0 = now();
  long long done = 0;
  while (done < total) {
    size_t n = total - done < (long long)chunk ? (size_t)(total - done) : chunk;
    int r = server ? libxenvchan_write(c, buf, n) : libxenvchan_read(c, buf, n);
    if (r <= 0) return fprintf(stderr, "transfer failed at %lld\n", done), 1;
    done += r;
  }
  double s = now() - t0;
  printf("%.1f MB/s %lld bytes %.3f s\n", done / s / 1e6, done, s);
  if (server) /* let the client drain before our pages go */
    while (libxenvchan_is_open(c) && libxenvchan_buffer_space(c) < (int)ring) libxenvchan_wait(c);
  libxenvchan_close(c);
  return 0;
}
