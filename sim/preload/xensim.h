/*
 * What the parts of libxensim.so share: the real libc entry points, the
 * broker connection, and the table of emulated device fds. Everything here
 * is hidden (-fvisibility=hidden); only the interposed calls are exported.
 */
#ifndef XENSIM_H
#define XENSIM_H
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "wire.h"

#define PAGE 4096u
#define EXPORT __attribute__((visibility("default")))

/* ioctl numbers and layouts: Linux include/uapi/xen/{gntalloc,gntdev,evtchn}.h */
#define GNTALLOC_ALLOC_GREF 0x00184705ul
#define GNTALLOC_DEALLOC_GREF 0x00104706ul
#define GNT_SET_UNMAP_NOTIFY 0x00104707ul /* same number on gntalloc and gntdev */
#define GNTDEV_MAP_GRANT_REF 0x00184700ul
#define GNTDEV_UNMAP_GRANT_REF 0x00104701ul
#define GNTDEV_GET_OFFSET_FOR_VADDR 0x00184702ul
#define GNTDEV_SET_MAX_GRANTS 0x00044703ul
#define EVTCHN_BIND_VIRQ 0x00044500ul
#define EVTCHN_BIND_INTERDOMAIN 0x00084501ul
#define EVTCHN_BIND_UNBOUND_PORT 0x00044502ul
#define EVTCHN_UNBIND 0x00044503ul
#define EVTCHN_NOTIFY 0x00044504ul
#define EVTCHN_RESET 0x00004505ul
#define EVTCHN_RESTRICT_DOMID 0x00024506ul

extern int (*real_open)(const char *, int, ...);
extern int (*real_close)(int);
extern void *(*real_mmap)(void *, size_t, int, int, int, off_t);
extern ssize_t (*real_read)(int, void *, size_t);
extern ssize_t (*real_write)(int, const void *, size_t);

extern pthread_mutex_t g_lock;
extern const char *g_sock_path; /* NULL: inert */

struct evport;

struct devfd {
  int fd, kind;
  uint32_t dev;
  dev_t st_dev; /* identity of the file, so a stale entry never matches */
  ino_t st_ino;
  int life;            /* evtchn: the device socket, whose close ends the open */
  struct evport *ports; /* evtchn: ports bound through this fd */
  size_t nports, capports;
};

extern struct devfd *g_fds; /* under g_lock */
extern size_t g_nfds;

void init(void);
int ensure_session(void);
int connect_broker(void);
int hide_fd(int fd);
int32_t call_on(int fd, uint32_t op, uint32_t dev, uint32_t arg, const void *in, uint32_t inlen, void *out,
                uint32_t outmax, uint32_t *outlen);
int32_t call(uint32_t op, uint32_t dev, uint32_t arg, const void *in, uint32_t inlen, void *out, uint32_t outmax,
             uint32_t *outlen);
int add_fd(int fd, int kind, uint32_t dev, int life);
int fail(int e);
int result(int32_t r);

/* evtchn.c */
int evtchn_map_slots(const char *path);
int evtchn_open(int sock, uint32_t dev, const char *fifo, int flags);
int evtchn_ioctl(struct devfd *d, unsigned long req, void *arg);
struct devfd *evtchn_fd(int fd);
int evtchn_hidden(int fd);
void evtchn_forget(struct devfd *d);

#endif
