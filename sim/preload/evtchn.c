/*
 * /dev/xen/evtchn under xensim, with the event path outside the broker.
 *
 * The fd a program gets is a FIFO opened read-write. A notifier fires the
 * remote port itself: a compare-and-swap on the port's shared slot word
 * applies the mask rule (an unmasked port becomes masked and is written into
 * its owner's FIFO; a masked one only gets its pending bit), so one event
 * costs one FIFO write and one wake-up, as a pipe does. The owner writing a
 * port back (unmask) is answered here: if it was pending, the port goes
 * straight back into its own FIFO. The broker stays the authority on
 * bindings. It cannot compare-and-swap, so what it fires itself (unmap
 * notifications) it only raises in the slot, with a FIFO wake-up
 * (XSIM_FROM_BROKER) if the port was unmasked; the owner fires a raised
 * port on that wake-up or when it next unmasks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xensim.h"

/* fds below this are looked up without a syscall on read/write; an evtchn
 * open above it fails with EMFILE. */
#define FDMAP 65536
enum { FD_NONE, FD_EVTCHN, FD_HIDDEN };
static _Atomic uint8_t g_fdmap[FDMAP];

/* Another evtchn open's FIFO that we notify into, shared by our ports. */
struct fifo {
  uint32_t dev;
  int fd;
  unsigned refs;
};

struct evport {
  uint32_t port;
  struct xsim_slot slot; /* our own state word */
  /* the remote end, once the broker told us (rfifo set) */
  uint32_t rport;
  struct xsim_slot rslot;
  struct fifo *rfifo;
};

struct slotword {
  _Atomic uint32_t state, raised; /* struct xsim_slotword */
};

static struct slotword *g_slots;
static uint32_t g_nslots;
static struct fifo **g_fifos;
static size_t g_nfifos, g_capfifos;

static int fdmap(int fd) {
  return fd >= 0 && fd < FDMAP ? atomic_load_explicit(&g_fdmap[fd], memory_order_relaxed) : FD_NONE;
}

static void set_fdmap(int fd, int what) {
  if (fd >= 0 && fd < FDMAP) atomic_store_explicit(&g_fdmap[fd], (uint8_t)what, memory_order_relaxed);
}

int evtchn_map_slots(const char *path) {
  if (g_slots) return 0; /* kept across fork: same broker, same file */
  int fd = real_open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct stat st;
  void *p = MAP_FAILED;
  if (fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof *g_slots)
    p = real_mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int e = errno;
  real_close(fd);
  if (p == MAP_FAILED) return -(e ? e : EIO);
  g_slots = p;
  g_nslots = (uint32_t)(st.st_size / sizeof *g_slots);
  return 0;
}

/* ---- the mask rule on a slot word ---- */

static _Atomic uint32_t *slot_word(struct xsim_slot s) {
  return g_slots && s.index < g_nslots ? &g_slots[s.index].state : NULL;
}

/* Takes what the broker raised on our own port: 1 if it fired it. */
static int slot_take_raised(struct xsim_slot s) {
  if (!g_slots || s.index >= g_nslots) return 0;
  _Atomic uint32_t *r = &g_slots[s.index].raised;
  return atomic_load_explicit(r, memory_order_relaxed) && atomic_exchange_explicit(r, 0, memory_order_acq_rel);
}

/* 1: was unmasked, now masked, the caller delivers it; 0: was masked, now
 * pending; -1: the slot moved to another binding since we learnt it. */
static int slot_fire(struct xsim_slot s) {
  _Atomic uint32_t *w = slot_word(s);
  if (!w) return -1;
  uint32_t old = atomic_load_explicit(w, memory_order_acquire);
  for (;;) {
    if (old >> XSIM_SLOT_GEN_SHIFT != s.gen) return -1;
    uint32_t nw = old | (old & XSIM_SLOT_MASKED ? XSIM_SLOT_PENDING : XSIM_SLOT_MASKED);
    if (nw == old) return 0;
    if (atomic_compare_exchange_weak_explicit(w, &old, nw, memory_order_acq_rel, memory_order_acquire))
      return old & XSIM_SLOT_MASKED ? 0 : 1;
  }
}

/* 1: an event was pending: it stays masked and the caller delivers it. */
static int slot_unmask(struct xsim_slot s) {
  _Atomic uint32_t *w = slot_word(s);
  if (!w) return 0;
  uint32_t old = atomic_load_explicit(w, memory_order_acquire);
  for (;;) {
    if (old >> XSIM_SLOT_GEN_SHIFT != s.gen || !(old & XSIM_SLOT_MASKED)) return 0;
    uint32_t nw = old & XSIM_SLOT_PENDING ? old & ~XSIM_SLOT_PENDING : old & ~XSIM_SLOT_MASKED;
    if (atomic_compare_exchange_weak_explicit(w, &old, nw, memory_order_acq_rel, memory_order_acquire))
      return (old & XSIM_SLOT_PENDING) != 0;
  }
}

/* ---- FIFOs we notify into ---- */

static struct fifo *fifo_get(uint32_t dev, const char *path) {
  for (size_t i = 0; i < g_nfifos; i++)
    if (g_fifos[i]->dev == dev) {
      g_fifos[i]->refs++;
      return g_fifos[i];
    }
  if (g_nfifos == g_capfifos) {
    size_t cap = g_capfifos ? g_capfifos * 2 : 8;
    void *p = realloc(g_fifos, cap * sizeof *g_fifos);
    if (!p) return NULL;
    g_fifos = p;
    g_capfifos = cap;
  }
  struct fifo *f = malloc(sizeof *f);
  /* read-write: a FIFO whose reader died takes our writes without SIGPIPE */
  int fd = f ? real_open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC) : -1;
  if (fd < 0) {
    free(f);
    return NULL;
  }
  *f = (struct fifo){dev, hide_fd(fd), 1};
  set_fdmap(f->fd, FD_HIDDEN);
  g_fifos[g_nfifos++] = f;
  return f;
}

static void fifo_put(struct fifo *f) {
  if (!f || --f->refs) return;
  for (size_t i = 0; i < g_nfifos; i++)
    if (g_fifos[i] == f) g_fifos[i] = g_fifos[--g_nfifos];
  set_fdmap(f->fd, FD_NONE);
  real_close(f->fd);
  free(f);
}

/* ---- the fd table's evtchn side ---- */

int evtchn_open(int sock, uint32_t dev, const char *fifo, int flags) {
  int fd = mkfifo(fifo, 0600) < 0 ? -1 : real_open(fifo, O_RDWR | (flags & (O_CLOEXEC | O_NONBLOCK)));
  int e = fd < 0 ? -errno : fd >= FDMAP ? -EMFILE : 0;
  int life = hide_fd(sock);
  if (!e) e = add_fd(fd, XSIM_EVTCHN, dev, life);
  if (e) {
    if (fd >= 0) real_close(fd);
    real_close(life); /* the broker removes the FIFO */
    return e;
  }
  /* the open lives as long as the program's fd, across exec too */
  if (!(flags & O_CLOEXEC)) fcntl(life, F_SETFD, 0);
  set_fdmap(fd, FD_EVTCHN);
  set_fdmap(life, FD_HIDDEN);
  return fd;
}

struct devfd *evtchn_fd(int fd) {
  if (fdmap(fd) != FD_EVTCHN) return NULL;
  for (size_t i = 0; i < g_nfds; i++)
    if (g_fds[i].fd == fd && g_fds[i].kind == XSIM_EVTCHN) return &g_fds[i];
  return NULL;
}

int evtchn_hidden(int fd) { return fdmap(fd) == FD_HIDDEN; }

void evtchn_forget(struct devfd *d) {
  for (size_t i = 0; i < d->nports; i++) fifo_put(d->ports[i].rfifo);
  free(d->ports);
  d->ports = NULL;
  d->nports = d->capports = 0;
  if (fdmap(d->fd) == FD_EVTCHN) set_fdmap(d->fd, FD_NONE);
  if (d->life >= 0) {
    set_fdmap(d->life, FD_NONE);
    real_close(d->life); /* the broker unbinds what is left */
  }
  d->life = -1;
}

static struct evport *port_find(struct devfd *d, uint32_t port) {
  for (size_t i = 0; i < d->nports; i++)
    if (d->ports[i].port == port) return &d->ports[i];
  return NULL;
}

static int ports_reserve(struct devfd *d) {
  if (d->nports < d->capports) return 0;
  size_t cap = d->capports ? d->capports * 2 : 8;
  void *p = realloc(d->ports, cap * sizeof *d->ports);
  if (!p) return -ENOMEM;
  d->ports = p;
  d->capports = cap;
  return 0;
}

/* ---- notify ---- */

/* Learns where port's remote end is: 0, 1 (this end is unbound) or -errno. */
static int32_t learn_target(struct devfd *d, struct evport *ev) {
  char buf[sizeof(struct xsim_target) + 4096];
  uint32_t n = 0;
  int32_t r = call(XSIM_TARGET, d->dev, ev->port, NULL, 0, buf, sizeof buf - 1, &n);
  if (r != 0) return r;
  struct xsim_target t;
  if (n <= sizeof t) return -EIO;
  memcpy(&t, buf, sizeof t);
  buf[n] = 0;
  struct fifo *f = fifo_get(t.dev, buf + sizeof t);
  if (!f) return -EIO;
  ev->rport = t.port;
  ev->rslot = t.slot;
  ev->rfifo = f;
  return 0;
}

static int notify(struct devfd *d, struct evport *ev) {
  for (int tries = 0; tries < 2; tries++) {
    if (!ev->rfifo) {
      int32_t r = learn_target(d, ev);
      if (r == 1) return 0; /* an unbound end drops the event, as EVTCHNOP_send does */
      if (r < 0) break;
    }
    int f = slot_fire(ev->rslot);
    if (f >= 0) {
      uint32_t p = ev->rport;
      if (f == 1) (void)real_write(ev->rfifo->fd, &p, sizeof p); /* full: lost, as on ring overflow */
      return 0;
    }
    fifo_put(ev->rfifo); /* rebound or closed since we learnt it */
    ev->rfifo = NULL;
  }
  uint32_t port = ev->port; /* let the broker decide */
  return result(call(XSIM_IOCTL, d->dev, (uint32_t)EVTCHN_NOTIFY, &port, sizeof port, NULL, 0, NULL));
}

int evtchn_ioctl(struct devfd *d, unsigned long req, void *arg) {
  switch (req) {
  case EVTCHN_NOTIFY: {
    if (!arg) return fail(EFAULT);
    uint32_t port;
    memcpy(&port, arg, 4);
    struct evport *ev = port_find(d, port);
    if (ev) return notify(d, ev);
    return result(call(XSIM_IOCTL, d->dev, (uint32_t)req, arg, 4, NULL, 0, NULL)); /* ENOTCONN */
  }
  case EVTCHN_BIND_INTERDOMAIN:
  case EVTCHN_BIND_UNBOUND_PORT: {
    if (!arg) return fail(EFAULT);
    int e = ports_reserve(d); /* before binding: a bound port we could not track would stay masked */
    if (e) return fail(-e);
    struct xsim_slot slot;
    uint32_t n = 0;
    int32_t r = call(XSIM_IOCTL, d->dev, (uint32_t)req, arg, (uint32_t)_IOC_SIZE(req), &slot, sizeof slot, &n);
    if (r >= 0 && n != sizeof slot) r = -EIO;
    if (r >= 0) d->ports[d->nports++] = (struct evport){.port = (uint32_t)r, .slot = slot};
    return result(r);
  }
  case EVTCHN_UNBIND: {
    if (!arg) return fail(EFAULT);
    int32_t r = call(XSIM_IOCTL, d->dev, (uint32_t)req, arg, 4, NULL, 0, NULL);
    uint32_t port;
    memcpy(&port, arg, 4);
    struct evport *ev = r >= 0 ? port_find(d, port) : NULL;
    if (ev) {
      fifo_put(ev->rfifo);
      *ev = d->ports[--d->nports];
    }
    return result(r);
  }
  case EVTCHN_RESTRICT_DOMID:
  case EVTCHN_RESET:
    if (!arg && req != EVTCHN_RESET) return fail(EFAULT);
    return result(call(XSIM_IOCTL, d->dev, (uint32_t)req, arg, (uint32_t)_IOC_SIZE(req), NULL, 0, NULL));
  case EVTCHN_BIND_VIRQ:
    return fail(EINVAL); /* no virtual IRQs in the emulator */
  default:
    return fail(ENOSYS);
  }
}

/* ---- read and write on the FIFO: the driver's read and write ---- */

/* Whole ports only, at most a page, as the driver's read and write. */
static size_t whole_ports(size_t n) { return (n > PAGE ? PAGE : n) & ~(size_t)3; }

static ssize_t ev_read(int fd, void *buf, size_t count) {
  size_t n = whole_ports(count);
  if (!n) return 0;
  uint32_t got[PAGE / 4];
  for (;;) {
    ssize_t r = real_read(fd, got, n);
    if (r <= 0) return r;
    size_t out = 0;
    pthread_mutex_lock(&g_lock);
    struct devfd *d = evtchn_fd(fd);
    for (size_t i = 0; i < (size_t)r / 4; i++) {
      uint32_t port = got[i];
      if (port & XSIM_FROM_BROKER) {
        port &= ~XSIM_FROM_BROKER;
        struct evport *ev = d ? port_find(d, port) : NULL;
        /* taken already (at an unmask), or masked meanwhile: pending now */
        if (!ev || !slot_take_raised(ev->slot) || slot_fire(ev->slot) != 1) continue;
      }
      got[out++] = port;
    }
    pthread_mutex_unlock(&g_lock);
    if (out) {
      memcpy(buf, got, out * 4);
      return (ssize_t)(out * 4);
    }
    /* only events for masked ports: nothing to read yet */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -1;
    if (fl & O_NONBLOCK) {
      errno = EAGAIN;
      return -1;
    }
  }
}

static ssize_t ev_write(int fd, const void *buf, size_t count) {
  size_t n = whole_ports(count);
  uint32_t ports[PAGE / 4];
  memcpy(ports, buf, n);
  pthread_mutex_lock(&g_lock);
  struct devfd *d = evtchn_fd(fd);
  for (size_t i = 0; d && i < n / 4; i++) {
    struct evport *ev = port_find(d, ports[i]);
    if (!ev) continue;
    /* The pending event, or one the broker raised while we were masked,
     * now; both at once are one event. Unmask first, then take: see raise()
     * in sim/broker/slots.ts. */
    int pending = slot_unmask(ev->slot);
    int raised = slot_take_raised(ev->slot);
    if (pending || (raised && slot_fire(ev->slot) == 1)) (void)real_write(fd, &ports[i], 4);
  }
  pthread_mutex_unlock(&g_lock);
  return (ssize_t)n; /* ports not bound here are ignored, as the driver does */
}

EXPORT ssize_t read(int fd, void *buf, size_t count) {
  if (fdmap(fd) == FD_EVTCHN) return ev_read(fd, buf, count);
  if (!real_read) init();
  return real_read(fd, buf, count);
}

EXPORT ssize_t write(int fd, const void *buf, size_t count) {
  if (fdmap(fd) == FD_EVTCHN) return ev_write(fd, buf, count);
  if (!real_write) init();
  return real_write(fd, buf, count);
}
