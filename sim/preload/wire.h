/*
 * Messages between libxensim.so and the xensim broker (sim/broker/wire.ts
 * holds the same numbers). Little-endian, native x86-64 layout.
 *
 * A process opens one session socket (HELLO) for ioctls and mappings, and
 * one socket per device open (OPEN_DEV) whose life is the device's life;
 * on an evtchn socket the broker writes fired u32 ports and reads unmasks.
 */
#ifndef XENSIM_WIRE_H
#define XENSIM_WIRE_H
#include <stdint.h>

enum xs_op {
  XSIM_HELLO = 1,    /* arg = pid; reply result = domid, payload = u32 session, path */
  XSIM_OPEN_DEV = 2, /* dev = pid, arg = kind; reply result = device id (first message on a device socket) */
  XSIM_IOCTL = 3,    /* dev, arg = ioctl number, payload = argument struct */
  XSIM_MMAP = 4,     /* dev, payload = struct xsim_mmap_req; reply result = map id, payload = u32 pages[] */
  XSIM_UNMAP = 5,    /* arg = map id, payload = u32 first page, u32 count */
  XSIM_NOTIFY = 6,   /* dev, arg = port; no reply (the preload checked the port is bound) */
};

enum xs_kind { XSIM_GNTALLOC = 1, XSIM_GNTDEV = 2, XSIM_EVTCHN = 3 };

struct xsim_req {
  uint32_t op, dev, len, arg;
};

struct xsim_rep {
  int32_t result; /* >= 0, or -errno */
  uint32_t len;
};

struct xsim_mmap_req {
  uint64_t offset;
  uint32_t count, prot;
};

#endif
