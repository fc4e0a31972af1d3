/*
 * libxensim.so: the device side of the xensim emulator, loaded with
 * LD_PRELOAD. It answers open/ioctl/mmap/munmap/close of /dev/xen/{gntalloc,
 * gntdev,evtchn,privcmd,hypercall} the way Linux's Xen drivers do, by asking
 * the broker named in $XENSIM_SOCKET; every other call goes to libc
 * untouched. Without $XENSIM_SOCKET the library is inert.
 *
 * Granted pages live in one tmpfs file owned by the broker; a mapping is a
 * reserved range with each page mapped MAP_SHARED|MAP_FIXED from that file,
 * so processes share the bytes for real.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "xensim.h"

#define K_PRIVCMD 10 /* answered locally: every hypercall is refused */

/* Largest batch a single ioctl may carry; the kernel would fail a kmalloc. */
#define MAX_BATCH (1u << 20)

int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real___open_2)(const char *, int);
static int (*real___open64_2)(const char *, int);
static int (*real___openat_2)(int, const char *, int);
static int (*real___openat64_2)(int, const char *, int);
int (*real_close)(int);
ssize_t (*real_read)(int, void *, size_t);
ssize_t (*real_write)(int, const void *, size_t);
static int (*real_ioctl)(int, unsigned long, ...);
void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static void *(*real_mmap64)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);

struct vma {
  uintptr_t addr;
  uint32_t npages, live, map_id, dev;
  int kind;
  uint64_t offset;
  uint8_t *alive; /* per page: still mapped */
};

pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
const char *g_sock_path; /* NULL: inert */
static int g_sess = -1, g_shm = -1, g_domid = -1;
static pid_t g_sess_pid;
struct devfd *g_fds;
size_t g_nfds;
static size_t g_capfds;
static struct vma *g_vmas;
static size_t g_nvmas, g_capvmas;
static volatile size_t g_nvmas_hint; /* read without the lock on the munmap fast path */

static void resolve(void) {
#define R(name) real_##name = dlsym(RTLD_NEXT, #name)
  R(open); R(open64); R(openat); R(openat64); R(__open_2); R(__open64_2);
  R(__openat_2); R(__openat64_2); R(close); R(ioctl); R(mmap); R(mmap64); R(munmap); R(read); R(write);
#undef R
  const char *s = getenv("XENSIM_SOCKET");
  g_sock_path = (s && *s) ? s : NULL;
}

static void atfork_prepare(void) { pthread_mutex_lock(&g_lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&g_lock); }
/* Grant mappings are not inherited (MADV_DONTFORK, like the kernel's
 * VM_DONTCOPY) and the child needs a session of its own. */
static void atfork_child(void) {
  if (g_sess >= 0) real_close(g_sess);
  if (g_shm >= 0) real_close(g_shm);
  g_sess = g_shm = -1;
  for (size_t i = 0; i < g_nvmas; i++) free(g_vmas[i].alive);
  g_nvmas = g_nvmas_hint = 0;
  pthread_mutex_unlock(&g_lock);
}

__attribute__((constructor)) static void xensim_init(void) {
  pthread_once(&g_once, resolve);
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

void init(void) { pthread_once(&g_once, resolve); }

/* ---- small I/O helpers (caller holds g_lock where the socket is shared) ---- */

static int write_full(int fd, const struct iovec *iov, int n) {
  struct iovec v[4];
  memcpy(v, iov, sizeof(*iov) * (size_t)n);
  struct msghdr m = {.msg_iov = v, .msg_iovlen = (size_t)n};
  while (m.msg_iovlen) {
    ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    while (m.msg_iovlen && (size_t)w >= m.msg_iov->iov_len) {
      w -= (ssize_t)m.msg_iov->iov_len;
      m.msg_iov++;
      m.msg_iovlen--;
    }
    if (m.msg_iovlen) {
      m.msg_iov->iov_base = (char *)m.msg_iov->iov_base + w;
      m.msg_iov->iov_len -= (size_t)w;
    }
  }
  return 0;
}

static int read_full(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n) {
    ssize_t r = recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* A request/reply on fd. Returns the broker's result (>= 0) or -errno; a
 * lost broker reads as EIO. */
int32_t call_on(int fd, uint32_t op, uint32_t dev, uint32_t arg, const void *in,
                       uint32_t inlen, void *out, uint32_t outmax, uint32_t *outlen) {
  struct xsim_req rq = {op, dev, inlen, arg};
  struct iovec iov[2] = {{&rq, sizeof rq}, {(void *)in, inlen}};
  struct xsim_rep rp;
  if (write_full(fd, iov, inlen ? 2 : 1) < 0 || read_full(fd, &rp, sizeof rp) < 0) return -EIO;
  if (rp.len > outmax) return -EIO;
  if (rp.len && read_full(fd, out, rp.len) < 0) return -EIO;
  if (outlen) *outlen = rp.len;
  return rp.result;
}

int connect_broker(void) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(g_sock_path) >= sizeof a.sun_path) return -ENAMETOOLONG;
  strcpy(a.sun_path, g_sock_path);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
    real_close(s);
    return -ENXIO; /* no broker: as if the driver were not loaded */
  }
  return s;
}

/* Keep our private fds out of the way of programs that count on low numbers. */
int hide_fd(int fd) {
  struct rlimit rl;
  long floor = 900;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur * 3 / 4 < floor)
    floor = (long)rl.rlim_cur * 3 / 4;
  int n = fcntl(fd, F_DUPFD_CLOEXEC, (int)floor);
  if (n < 0) return fd;
  real_close(fd);
  return n;
}

/* Session: one per process, opened on first use (again after fork). */
int ensure_session(void) {
  if (g_sess >= 0 && g_sess_pid == getpid()) return 0;
  if (g_sess >= 0) real_close(g_sess);
  if (g_shm >= 0) real_close(g_shm);
  g_sess = g_shm = -1;
  int s = connect_broker();
  if (s < 0) return s;
  s = hide_fd(s);
  char buf[4 + 4096];
  uint32_t n = 0;
  int32_t r = call_on(s, XSIM_HELLO, 0, (uint32_t)getpid(), NULL, 0, buf, sizeof buf - 1, &n);
  if (r < 0 || n < 5) {
    real_close(s);
    return r < 0 ? r : -EIO;
  }
  buf[n] = 0;
  const char *slots = memchr(buf + 4, 0, n - 4) ? buf + 4 + strlen(buf + 4) + 1 : NULL;
  int e = slots && slots < buf + n ? evtchn_map_slots(slots) : -EIO;
  int m = e < 0 ? -1 : real_open(buf + 4, O_RDWR | O_CLOEXEC);
  if (m < 0) {
    if (e == 0) e = -errno;
    real_close(s);
    return e;
  }
  g_shm = hide_fd(m);
  g_sess = s;
  g_sess_pid = getpid();
  g_domid = r;
  return 0;
}

int32_t call(uint32_t op, uint32_t dev, uint32_t arg, const void *in, uint32_t inlen,
                    void *out, uint32_t outmax, uint32_t *outlen) {
  int e = ensure_session();
  if (e < 0) return e;
  return call_on(g_sess, op, dev, arg, in, inlen, out, outmax, outlen);
}

/* ---- tables ---- */

/* Forgets a table entry (which the next one may take the place of). */
static void drop_fd(struct devfd *d) {
  if (d->kind == XSIM_EVTCHN) evtchn_forget(d);
  *d = g_fds[--g_nfds];
}

static struct devfd *find_fd(int fd) {
  for (size_t i = 0; i < g_nfds; i++) {
    if (g_fds[i].fd != fd) continue;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_dev == g_fds[i].st_dev && st.st_ino == g_fds[i].st_ino)
      return &g_fds[i];
    drop_fd(&g_fds[i]); /* closed behind our back: forget it */
    return NULL;
  }
  return NULL;
}

int add_fd(int fd, int kind, uint32_t dev, int life) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  if (g_nfds == g_capfds) {
    size_t cap = g_capfds ? g_capfds * 2 : 16;
    void *p = realloc(g_fds, cap * sizeof *g_fds);
    if (!p) return -ENOMEM;
    g_fds = p;
    g_capfds = cap;
  }
  for (size_t i = 0; i < g_nfds;)
    if (g_fds[i].fd == fd) drop_fd(&g_fds[i]);
    else i++;
  g_fds[g_nfds++] = (struct devfd){fd, kind, dev, st.st_dev, st.st_ino, life, NULL, 0, 0};
  return 0;
}

static struct vma *add_vma(void) {
  if (g_nvmas == g_capvmas) {
    size_t cap = g_capvmas ? g_capvmas * 2 : 16;
    void *p = realloc(g_vmas, cap * sizeof *g_vmas);
    if (!p) return NULL;
    g_vmas = p;
    g_capvmas = cap;
  }
  g_nvmas_hint = g_nvmas + 1;
  return &g_vmas[g_nvmas++];
}

/* Pages [a, a+len) are gone from our address space: tell the broker, which
 * runs unmap notifications and frees what nobody holds any more. */
static void forget_range(uintptr_t a, size_t len) {
  uintptr_t end = a + ((len + PAGE - 1) & ~(uintptr_t)(PAGE - 1));
  for (size_t i = 0; i < g_nvmas;) {
    struct vma *v = &g_vmas[i];
    uintptr_t vend = v->addr + (uintptr_t)v->npages * PAGE;
    if (end <= v->addr || a >= vend) {
      i++;
      continue;
    }
    uint32_t first = a > v->addr ? (uint32_t)((a - v->addr) / PAGE) : 0;
    uint32_t last = end < vend ? (uint32_t)((end - v->addr) / PAGE) : v->npages;
    for (uint32_t p = first; p < last;) {
      if (!v->alive[p]) {
        p++;
        continue;
      }
      uint32_t q = p;
      while (q < last && v->alive[q]) v->alive[q++] = 0;
      uint32_t range[2] = {p, q - p};
      if (g_sess >= 0 && g_sess_pid == getpid())
        call_on(g_sess, XSIM_UNMAP, 0, v->map_id, range, sizeof range, NULL, 0, NULL);
      v->live -= q - p;
      p = q;
    }
    if (v->live == 0) {
      free(v->alive);
      g_vmas[i] = g_vmas[--g_nvmas];
      g_nvmas_hint = g_nvmas;
    } else {
      i++;
    }
  }
}

/* ---- open ---- */

static int dev_kind(const char *path) {
  if (!path || strncmp(path, "/dev/xen/", 9) != 0) return 0;
  const char *n = path + 9;
  if (!strcmp(n, "gntalloc")) return XSIM_GNTALLOC;
  if (!strcmp(n, "gntdev")) return XSIM_GNTDEV;
  if (!strcmp(n, "evtchn")) return XSIM_EVTCHN;
  if (!strcmp(n, "privcmd")) return K_PRIVCMD;
  if (!strcmp(n, "hypercall")) return -ENOENT; /* libxencall then uses plain memory */
  return 0;
}

static int sim_open(int kind, int flags) {
  if (kind < 0) {
    errno = -kind;
    return -1;
  }
  if (kind == K_PRIVCMD) {
    /* a real fd that answers nothing: xc_interface_open succeeds, hypercalls get EPERM */
    int fd = real_open("/dev/null", O_RDWR | (flags & O_CLOEXEC));
    if (fd < 0) return -1;
    pthread_mutex_lock(&g_lock);
    int e = add_fd(fd, K_PRIVCMD, 0, -1);
    pthread_mutex_unlock(&g_lock);
    if (e < 0) {
      real_close(fd);
      errno = -e;
      return -1;
    }
    return fd;
  }
  pthread_mutex_lock(&g_lock);
  int e = ensure_session(); /* the broker must know this process before its devices */
  int s = e < 0 ? e : connect_broker();
  if (s >= 0) {
    char fifo[4096];
    uint32_t n = 0;
    int32_t r = call_on(s, XSIM_OPEN_DEV, (uint32_t)getpid(), (uint32_t)kind, NULL, 0, fifo, sizeof fifo - 1, &n);
    fifo[n] = 0;
    if (r >= 0 && kind == XSIM_EVTCHN) {
      s = evtchn_open(s, (uint32_t)r, fifo, flags); /* the program gets the FIFO; s lives on in the table */
    } else if (r < 0 || (e = add_fd(s, kind, (uint32_t)r, -1)) < 0) {
      real_close(s);
      s = r < 0 ? r : e;
    }
  }
  pthread_mutex_unlock(&g_lock);
  if (s < 0) {
    errno = -s;
    return -1;
  }
  if (kind == XSIM_EVTCHN) return s;
  if (!(flags & O_CLOEXEC)) fcntl(s, F_SETFD, 0);
  if (flags & O_NONBLOCK) fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
  return s;
}

static int needs_mode(int flags) { return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE; }

#define OPEN_BODY(real, ...)                                    \
  init();                                                       \
  int k = g_sock_path ? dev_kind(path) : 0;                     \
  if (k) return sim_open(k, flags);                             \
  return real(__VA_ARGS__)

#define MODE_ARG                 \
  mode_t mode = 0;               \
  if (needs_mode(flags)) {       \
    va_list ap;                  \
    va_start(ap, flags);         \
    mode = va_arg(ap, mode_t);   \
    va_end(ap);                  \
  }

EXPORT int open(const char *path, int flags, ...) {
  MODE_ARG
  OPEN_BODY(real_open, path, flags, mode);
}
EXPORT int open64(const char *path, int flags, ...) {
  MODE_ARG
  OPEN_BODY(real_open64, path, flags, mode);
}
EXPORT int openat(int dirfd, const char *path, int flags, ...) {
  MODE_ARG
  OPEN_BODY(real_openat, dirfd, path, flags, mode);
}
EXPORT int openat64(int dirfd, const char *path, int flags, ...) {
  MODE_ARG
  OPEN_BODY(real_openat64, dirfd, path, flags, mode);
}
EXPORT int __open_2(const char *path, int flags) { OPEN_BODY(real___open_2, path, flags); }
EXPORT int __open64_2(const char *path, int flags) { OPEN_BODY(real___open64_2, path, flags); }
EXPORT int __openat_2(int dirfd, const char *path, int flags) { OPEN_BODY(real___openat_2, dirfd, path, flags); }
EXPORT int __openat64_2(int dirfd, const char *path, int flags) { OPEN_BODY(real___openat64_2, dirfd, path, flags); }

/* ---- close ---- */

EXPORT int close(int fd) {
  init();
  if (!g_sock_path || fd < 0) return real_close(fd);
  pthread_mutex_lock(&g_lock);
  if (((fd == g_sess || fd == g_shm) && g_sess_pid == getpid()) || evtchn_hidden(fd)) {
    /* our private fds: a close-everything loop must not cut us off */
    pthread_mutex_unlock(&g_lock);
    return 0;
  }
  struct devfd *d = g_nfds ? find_fd(fd) : NULL;
  if (d) drop_fd(d);
  /* The broker releases the device when the socket's last reference goes,
   * which is the kernel's rule for a file shared by dup or fork. */
  int r = real_close(fd);
  pthread_mutex_unlock(&g_lock);
  return r;
}

/* ---- ioctl ---- */

int fail(int e) {
  errno = e;
  return -1;
}

int result(int32_t r) { return r < 0 ? fail(-r) : r; }

static int gnt_ioctl(struct devfd *d, unsigned long req, void *arg) {
  if (!arg && req != EVTCHN_RESET) return fail(EFAULT);
  switch (req) {
  case GNTALLOC_ALLOC_GREF: {
    if (d->kind != XSIM_GNTALLOC) return fail(ENOTTY);
    uint8_t *a = arg; /* u16 domid, u16 flags, u32 count, out u64 index, out u32 gref_ids[count] */
    uint32_t count;
    memcpy(&count, a + 4, 4);
    if (count > MAX_BATCH) return fail(ENOMEM);
    size_t outmax = 8 + (size_t)count * 4;
    uint8_t *out = malloc(outmax ? outmax : 1);
    if (!out) return fail(ENOMEM);
    uint32_t n = 0;
    int32_t r = call(XSIM_IOCTL, d->dev, (uint32_t)req, a, 16, out, (uint32_t)outmax, &n);
    if (r >= 0 && n == outmax) memcpy(a + 8, out, outmax);
    else if (r >= 0) r = -EIO;
    free(out);
    return result(r);
  }
  case GNTDEV_MAP_GRANT_REF: {
    if (d->kind != XSIM_GNTDEV) return fail(ENOTTY);
    uint8_t *a = arg; /* u32 count, u32 pad, out u64 index, {u32 domid, u32 ref}[count] */
    uint32_t count;
    memcpy(&count, a, 4);
    if (count > MAX_BATCH) return fail(ENOMEM);
    uint64_t index;
    uint32_t n = 0;
    int32_t r = call(XSIM_IOCTL, d->dev, (uint32_t)req, a, 16 + count * 8, &index, 8, &n);
    if (r >= 0 && n == 8) memcpy(a + 8, &index, 8);
    else if (r >= 0) r = -EIO;
    return result(r);
  }
  case GNTDEV_GET_OFFSET_FOR_VADDR: {
    if (d->kind != XSIM_GNTDEV) return fail(ENOTTY);
    uint8_t *a = arg; /* u64 vaddr, out u64 offset, out u32 count */
    uint64_t va;
    memcpy(&va, a, 8);
    for (size_t i = 0; i < g_nvmas; i++) {
      struct vma *v = &g_vmas[i];
      if (v->kind == XSIM_GNTDEV && va >= v->addr && va < v->addr + (uint64_t)v->npages * PAGE) {
        memcpy(a + 8, &v->offset, 8);
        memcpy(a + 16, &v->npages, 4);
        return 0;
      }
    }
    return fail(EINVAL);
  }
  case GNTDEV_SET_MAX_GRANTS:
    return d->kind == XSIM_GNTDEV ? 0 : fail(ENOTTY);
  case GNTALLOC_DEALLOC_GREF:
  case GNT_SET_UNMAP_NOTIFY:
  case GNTDEV_UNMAP_GRANT_REF:
    if (req == GNTALLOC_DEALLOC_GREF && d->kind != XSIM_GNTALLOC) return fail(ENOTTY);
    if (req == GNTDEV_UNMAP_GRANT_REF && d->kind != XSIM_GNTDEV) return fail(ENOTTY);
    return result(call(XSIM_IOCTL, d->dev, (uint32_t)req, arg, 16, NULL, 0, NULL));
  default:
    return fail(ENOTTY);
  }
}

EXPORT int ioctl(int fd, unsigned long req, ...) {
  va_list ap;
  va_start(ap, req);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  init();
  if (!g_sock_path || fd < 0 || !g_nfds) return real_ioctl(fd, req, arg);
  pthread_mutex_lock(&g_lock);
  struct devfd *d = evtchn_fd(fd); /* the notify path: no fstat */
  if (!d) d = find_fd(fd);
  int r;
  /* The VFS answers these for every file before any driver sees them
   * (libuv sets O_NONBLOCK with FIONBIO): they go to our file as is. */
  if (!d || req == FIONBIO || req == FIOCLEX || req == FIONCLEX || req == FIOASYNC) {
    pthread_mutex_unlock(&g_lock);
    return real_ioctl(fd, req, arg);
  }
  if (d->kind == K_PRIVCMD)
    r = fail(_IOC_TYPE(req) == 'P' ? EPERM : ENOTTY); /* no hypervisor to call */
  else if (d->kind == XSIM_EVTCHN)
    r = evtchn_ioctl(d, req, arg);
  else
    r = gnt_ioctl(d, req, arg);
  int e = errno;
  pthread_mutex_unlock(&g_lock);
  errno = e;
  return r;
}

/* ---- mmap / munmap ---- */

static void *sim_mmap(struct devfd *d, void *addr, size_t len, int prot, int flags, off_t off) {
  if (d->kind == K_PRIVCMD) return errno = EPERM, MAP_FAILED;
  if (d->kind == XSIM_EVTCHN) return errno = ENODEV, MAP_FAILED;
  if (!len || (off & (PAGE - 1))) return errno = EINVAL, MAP_FAILED;
  int shared = (flags & MAP_TYPE) == MAP_SHARED || (flags & MAP_TYPE) == MAP_SHARED_VALIDATE;
  if (d->kind == XSIM_GNTALLOC && !shared) return errno = EINVAL, MAP_FAILED;
  if (d->kind == XSIM_GNTDEV && (prot & PROT_WRITE) && !shared) return errno = EINVAL, MAP_FAILED;
  size_t count = (len + PAGE - 1) / PAGE;
  if (count > MAX_BATCH) return errno = ENOMEM, MAP_FAILED;
  uint32_t *pages = malloc(count * 4);
  if (!pages) return errno = ENOMEM, MAP_FAILED;
  struct xsim_mmap_req rq = {(uint64_t)off, (uint32_t)count, (uint32_t)prot};
  uint32_t n = 0;
  int32_t id = call(XSIM_MMAP, d->dev, 0, &rq, sizeof rq, pages, (uint32_t)(count * 4), &n);
  if (id >= 0 && n != count * 4) id = -EIO;
  if (id < 0) {
    free(pages);
    return errno = -id, MAP_FAILED;
  }
  int rflags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE));
  char *base = real_mmap(addr, count * PAGE, PROT_NONE, rflags, -1, 0);
  int err = base == MAP_FAILED ? errno : 0;
  for (size_t i = 0; !err && i < count;) {
    size_t j = i + 1;
    while (j < count && pages[j] == pages[j - 1] + 1) j++; /* one mmap per contiguous run */
    void *p = real_mmap(base + i * PAGE, (j - i) * PAGE, prot, MAP_SHARED | MAP_FIXED | (flags & MAP_POPULATE),
                        g_shm, (off_t)pages[i] * PAGE);
    if (p == MAP_FAILED) err = errno;
    i = j;
  }
  free(pages);
  struct vma *v = NULL;
  if (!err) {
    madvise(base, count * PAGE, MADV_DONTFORK);
    if (flags & MAP_FIXED) forget_range((uintptr_t)base, count * PAGE); /* we replaced whatever was there */
    v = add_vma();
    if (!v || !(v->alive = malloc(count))) err = ENOMEM;
  }
  if (err) {
    if (base != MAP_FAILED) real_munmap(base, count * PAGE);
    uint32_t range[2] = {0, (uint32_t)count};
    call_on(g_sess, XSIM_UNMAP, 0, (uint32_t)id, range, sizeof range, NULL, 0, NULL);
    if (v) g_nvmas_hint = --g_nvmas;
    return errno = err, MAP_FAILED;
  }
  memset(v->alive, 1, count);
  v->addr = (uintptr_t)base;
  v->npages = v->live = (uint32_t)count;
  v->map_id = (uint32_t)id;
  v->dev = d->dev;
  v->kind = d->kind;
  v->offset = (uint64_t)off;
  return base;
}

static void *do_mmap(void *(*real)(void *, size_t, int, int, int, off_t), void *addr, size_t len, int prot,
                     int flags, int fd, off_t off) {
  init();
  if (!g_sock_path || (fd < 0 && !((flags & MAP_FIXED) && g_nvmas_hint)) || (fd >= 0 && !g_nfds && !g_nvmas_hint))
    return real(addr, len, prot, flags, fd, off);
  pthread_mutex_lock(&g_lock);
  struct devfd *d = fd >= 0 ? find_fd(fd) : NULL;
  void *r;
  if (d) {
    r = sim_mmap(d, addr, len, prot, flags, off);
  } else {
    r = real(addr, len, prot, flags, fd, off);
    if (r != MAP_FAILED && (flags & MAP_FIXED) && g_nvmas) forget_range((uintptr_t)r, len);
  }
  int e = errno;
  pthread_mutex_unlock(&g_lock);
  errno = e;
  return r;
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  return do_mmap(real_mmap, addr, len, prot, flags, fd, off);
}
EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  return do_mmap(real_mmap64 ? real_mmap64 : real_mmap, addr, len, prot, flags, fd, off);
}

EXPORT int munmap(void *addr, size_t len) {
  init();
  if (!g_nvmas_hint) return real_munmap(addr, len);
  pthread_mutex_lock(&g_lock);
  int r = real_munmap(addr, len);
  int e = errno;
  if (r == 0) forget_range((uintptr_t)addr, len);
  pthread_mutex_unlock(&g_lock);
  errno = e;
  return r;
}
