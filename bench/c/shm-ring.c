/*
 * shm-ring: the memory limit. Two processes share one ring of RING bytes
 * (anonymous shared memory), the producer copies SIZE-byte pieces in, the
 * consumer copies them out; both spin on two shared counters. No Xen, no
 * events, no emulator: what the hardware allows for the same copies.
 *
 *   shm-ring RING SIZE SECONDS
 * Prints {"ok":true,"rx":N,"seconds":S,"cpu":C} (C = both processes).
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct shared {
  _Alignas(64) _Atomic uint64_t prod;
  _Alignas(64) _Atomic uint64_t cons;
  _Alignas(64) _Atomic int done;
  double producer_cpu;
};

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

/* Copies n bytes at ring position pos (may wrap) to or from buf. */
static void move(uint8_t *data, size_t ring, uint64_t pos, uint8_t *buf, size_t n, int in) {
  size_t at = pos & (ring - 1), first = ring - at < n ? ring - at : n;
  if (in) {
    memcpy(data + at, buf, first);
    memcpy(data, buf + first, n - first);
  } else {
    memcpy(buf, data + at, first);
    memcpy(buf + first, data, n - first);
  }
}

int main(int argc, char **argv) {
  if (argc != 4) return fprintf(stderr, "usage: shm-ring RING SIZE SECONDS\n"), 2;
  size_t ring = (size_t)atol(argv[1]), size = (size_t)atol(argv[2]);
  double seconds = atof(argv[3]);
  struct shared *sh = mmap(NULL, 4096 + ring, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) return perror("mmap"), 1;
  uint8_t *data = (uint8_t *)sh + 4096, *buf = malloc(size);
  memset(buf, 0x5a, size);
  pid_t child = fork();
  if (child == 0) { /* producer */
    double c0 = cpu(), t0 = now();
    int k = 0;
    while (1) {
      uint64_t p = atomic_load_explicit(&sh->prod, memory_order_relaxed);
      uint64_t c = atomic_load_explicit(&sh->cons, memory_order_acquire);
      size_t space = ring - (size_t)(p - c), n = space < size ? space : size;
      if (n) {
        move(data, ring, p, buf, n, 1);
        atomic_store_explicit(&sh->prod, p + n, memory_order_release);
      } else {
        sched_yield(); /* two cores, two spinners, plus the machine's other work */
      }
      if (++k % 64 == 0 && now() - t0 >= seconds) break;
    }
    sh->producer_cpu = cpu() - c0;
    atomic_store_explicit(&sh->done, 1, memory_order_release);
    _exit(0);
  }
  double c0 = cpu(), first = 0, last = 0;
  uint64_t rx = 0;
  while (1) {
    int done = atomic_load_explicit(&sh->done, memory_order_acquire);
    uint64_t c = atomic_load_explicit(&sh->cons, memory_order_relaxed);
    uint64_t p = atomic_load_explicit(&sh->prod, memory_order_acquire);
    size_t ready = (size_t)(p - c), n = ready < size ? ready : size;
    if (n) {
      if (!rx) first = now();
      move(data, ring, c, buf, n, 0);
      atomic_store_explicit(&sh->cons, c + n, memory_order_release);
      rx += n;
    } else if (done) {
      last = now(); /* the ring is drained and the producer has stopped */
      break;
    } else {
      sched_yield();
    }
  }
  double cs = cpu() - c0;
  waitpid(child, NULL, 0);
  printf("{\"ok\":true,\"rx\":%llu,\"seconds\":%.6f,\"cpu\":%.6f}\n", (unsigned long long)rx, last - first,
         cs + sh->producer_cpu);
  return 0;
}
