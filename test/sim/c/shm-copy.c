/*
 * shm-copy: the baseline for vchan-bench — two processes, one shared
 * 1 MiB ring, memcpy in and out in CHUNK pieces, spinning (with
 * sched_yield) on two shared counters. No Xen, no emulator.
 *
 *   shm-copy BYTES [CHUNK] [RING]   prints "<MB/s> MB/s <bytes> bytes <seconds> s"
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct hdr {
  _Atomic uint64_t prod, cons;
};

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  long long total = argc > 1 ? atoll(argv[1]) : 1LL << 30;
  size_t chunk = argc > 2 ? (size_t)atol(argv[2]) : 65536, ring = argc > 3 ? (size_t)atol(argv[3]) : 1 << 20;
  struct hdr *h = mmap(NULL, 4096 + ring, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  uint8_t *data = (uint8_t *)h + 4096;
  char *buf = malloc(chunk);
  memset(buf, 0x5a, chunk);
  pid_t pid = fork();
  int producer = pid == 0;
  double t0 = now();
  for (long long done = 0; done < total;) {
    uint64_t p = atomic_load(&h->prod), c = atomic_load(&h->cons);
    size_t avail = producer ? ring - (p - c) : p - c;
    if (!avail) {
      sched_yield();
      continue;
    }
    size_t n = avail < chunk ? avail : chunk;
    if ((long long)n > total - done) n = (size_t)(total - done);
    size_t at = (producer ? p : c) & (ring - 1), first = ring - at < n ? ring - at : n;
    if (producer) {
      memcpy(data + at, buf, first);
      memcpy(data, buf + first, n - first);
      atomic_store(&h->prod, p + n);
    } else {
      memcpy(buf, data + at, first);
      memcpy(buf + first, data, n - first);
      atomic_store(&h->cons, c + n);
    }
    done += (long long)n;
  }
  if (producer) return 0;
  waitpid(pid, NULL, 0);
  double s = now() - t0;
  printf("%.1f MB/s %lld bytes %.3f s\n", total / s / 1e6, total, s);
  return 0;
}
