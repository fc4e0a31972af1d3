/*
 * xsprobe: drives Xen's real libxengnttab/libxenevtchn one command per stdin
 * line, so tests can script grant and event-channel scenarios across
 * processes and domains. Replies one line each: "ok ..." or "err ERRNO".
 *
 *   share DOM COUNT RW            -> ok H REF...      (xengntshr_share_pages)
 *   sharenotify DOM OFF PORT      -> ok H REF         (share one writable page, unmap notify)
 *   unshare H | unmap H | munmap H
 *   map DOM REF RW                -> ok H             (xengnttab_map_grant_ref)
 *   mapnotify DOM REF OFF PORT    -> ok H
 *   peek H OFF | poke H OFF VAL | fill H SEED | check H SEED | zero H
 *   unbound DOM | bind DOM PORT   -> ok PORT
 *   notify PORT | unbind PORT | unmask PORT
 *   wait MS                       -> ok PORT | timeout   (poll + xenevtchn_pending)
 *   fionbio                       -> ok | err ERRNO      (generic ioctl on the evtchn fd, as libuv does)
 *   fd PATH                       -> ok FD | err ERRNO   (plain open, for passthrough checks)
 *   pid | exit CODE
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xenevtchn.h>
#include <xengnttab.h>

#define MAXH 256
static struct {
  uint8_t *addr;
  uint32_t count;
  int shared;
} h[MAXH];

static xengnttab_handle *gt;
static xengntshr_handle *gs;
static xenevtchn_handle *ev;

static int slot(void) {
  for (int i = 1; i < MAXH; i++)
    if (!h[i].addr) return i;
  return -1;
}

static void err(void) { printf("err %s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "E?"); }

static int need_gt(void) { return gt || (gt = xengnttab_open(NULL, 0)) ? 0 : -1; }
static int need_gs(void) { return gs || (gs = xengntshr_open(NULL, 0)) ? 0 : -1; }
static int need_ev(void) { return ev || (ev = xenevtchn_open(NULL, 0)) ? 0 : -1; }

static uint8_t pattern(uint32_t seed, size_t i) { return (uint8_t)((i * 2654435761u + seed) >> 7); }

int main(void) {
  char line[512];
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof line, stdin)) {
    char cmd[32];
    long a = 0, b = 0, c = 0, d = 0;
    int n = sscanf(line, "%31s %li %li %li %li", cmd, &a, &b, &c, &d);
    if (n < 1) continue;
    errno = 0;
    if (!strcmp(cmd, "share")) {
      uint32_t refs[1024];
      int i = slot();
      if (b > 1024 || b < 1 || i < 0) { errno = E2BIG; err(); continue; }
      if (need_gs() < 0) { err(); continue; }
      void *p = xengntshr_share_pages(gs, (uint32_t)a, (int)b, refs, (int)c);
      if (!p) { err(); continue; }
      h[i].addr = p; h[i].count = (uint32_t)b; h[i].shared = 1;
      printf("ok %d", i);
      for (long k = 0; k < b; k++) printf(" %u", refs[k]);
      printf("\n");
    } else if (!strcmp(cmd, "sharenotify")) {
      uint32_t ref;
      int i = slot();
      if (need_gs() < 0) { err(); continue; }
      void *p = xengntshr_share_page_notify(gs, (uint32_t)a, &ref, 1, (uint32_t)b, (uint32_t)c);
      if (!p) { err(); continue; }
      h[i].addr = p; h[i].count = 1; h[i].shared = 1;
      printf("ok %d %u\n", i, ref);
    } else if (!strcmp(cmd, "map") || !strcmp(cmd, "mapnotify")) {
      int i = slot();
      if (need_gt() < 0) { err(); continue; }
      void *p = !strcmp(cmd, "map")
                    ? xengnttab_map_grant_ref(gt, (uint32_t)a, (uint32_t)b, c ? PROT_READ | PROT_WRITE : PROT_READ)
                    : xengnttab_map_grant_ref_notify(gt, (uint32_t)a, (uint32_t)b, PROT_READ | PROT_WRITE, (uint32_t)c,
                                                     (uint32_t)d);
      if (!p) { err(); continue; }
      h[i].addr = p; h[i].count = 1; h[i].shared = 0;
      printf("ok %d\n", i);
    } else if (!strcmp(cmd, "unshare") || !strcmp(cmd, "unmap") || !strcmp(cmd, "munmap")) {
      if (a <= 0 || a >= MAXH || !h[a].addr) { errno = EBADF; err(); continue; }
      int r = !strcmp(cmd, "unshare") ? xengntshr_unshare(gs, h[a].addr, h[a].count)
              : !strcmp(cmd, "unmap") ? xengnttab_unmap(gt, h[a].addr, h[a].count)
                                      : munmap(h[a].addr, h[a].count * 4096u);
      if (r) { err(); continue; }
      h[a].addr = NULL;
      printf("ok\n");
    } else if (!strcmp(cmd, "peek") || !strcmp(cmd, "poke")) {
      if (a <= 0 || a >= MAXH || !h[a].addr || b < 0 || b >= (long)h[a].count * 4096) { errno = EBADF; err(); continue; }
      if (cmd[1] == 'o') h[a].addr[b] = (uint8_t)c;
      printf("ok %u\n", h[a].addr[b]);
    } else if (!strcmp(cmd, "zero")) {
      if (a <= 0 || a >= MAXH || !h[a].addr) { errno = EBADF; err(); continue; }
      size_t len = (size_t)h[a].count * 4096, bad = 0;
      for (size_t k = 0; k < len; k++) bad += h[a].addr[k] != 0;
      if (bad) printf("err NONZERO %zu\n", bad);
      else printf("ok\n");
    } else if (!strcmp(cmd, "fill") || !strcmp(cmd, "check")) {
      if (a <= 0 || a >= MAXH || !h[a].addr) { errno = EBADF; err(); continue; }
      size_t len = (size_t)h[a].count * 4096, bad = 0;
      for (size_t k = 0; k < len; k++) {
        if (cmd[0] == 'f') h[a].addr[k] = pattern((uint32_t)b, k);
        else if (h[a].addr[k] != pattern((uint32_t)b, k)) bad++;
      }
      if (bad) printf("err MISMATCH %zu\n", bad);
      else printf("ok\n");
    } else if (!strcmp(cmd, "unbound") || !strcmp(cmd, "bind")) {
      if (need_ev() < 0) { err(); continue; }
      xenevtchn_port_or_error_t p = cmd[0] == 'u' ? xenevtchn_bind_unbound_port(ev, (uint32_t)a)
                                                  : xenevtchn_bind_interdomain(ev, (uint32_t)a, (evtchn_port_t)b);
      if (p < 0) { err(); continue; }
      printf("ok %d\n", p);
    } else if (!strcmp(cmd, "notify") || !strcmp(cmd, "unbind") || !strcmp(cmd, "unmask")) {
      if (need_ev() < 0) { err(); continue; }
      int r = cmd[2] == 't' ? xenevtchn_notify(ev, (evtchn_port_t)a)
              : cmd[2] == 'b' ? xenevtchn_unbind(ev, (evtchn_port_t)a)
                              : xenevtchn_unmask(ev, (evtchn_port_t)a);
      if (r < 0) { err(); continue; }
      printf("ok\n");
    } else if (!strcmp(cmd, "wait")) {
      if (need_ev() < 0) { err(); continue; }
      struct pollfd pfd = {.fd = xenevtchn_fd(ev), .events = POLLIN};
      int r = poll(&pfd, 1, (int)a);
      if (r < 0) { err(); continue; }
      if (r == 0) { printf("timeout\n"); continue; }
      xenevtchn_port_or_error_t p = xenevtchn_pending(ev);
      if (p < 0) { err(); continue; }
      printf("ok %d\n", p);
    } else if (!strcmp(cmd, "fionbio")) {
      int one = 1;
      if (need_ev() < 0 || ioctl(xenevtchn_fd(ev), FIONBIO, &one) < 0) { err(); continue; }
      printf("ok\n");
    } else if (!strcmp(cmd, "fd")) {
      char path[256];
      if (sscanf(line, "%*s %255s", path) != 1) continue;
      int fd = open(path, O_RDWR | O_CLOEXEC);
      if (fd < 0) { err(); continue; }
      printf("ok %d\n", fd);
    } else if (!strcmp(cmd, "pid")) {
      printf("ok %d\n", (int)getpid());
    } else if (!strcmp(cmd, "exit")) {
      return (int)a;
    } else {
      printf("err EINVAL unknown command\n");
    }
  }
  return 0;
}
