/*
 * Messages between libxensim.so and the xensim broker (sim/broker/wire.ts
 * holds the same numbers). Little-endian, native x86-64 layout.
 *
 * A process opens one session socket (HELLO) for ioctls and mappings, and
 * one socket per device open (OPEN_DEV) whose life is the device's life.
 * An evtchn open is a FIFO the preload makes where OPEN_DEV's reply says:
 * fired u32 ports are written into it by notifiers directly, and by the
 * broker with XSIM_FROM_BROKER set (the owner's preload masks those).
 *
 * Event slots: a file the broker names in HELLO's reply, one struct
 * xsim_slotword per bound port (sim/broker/slots.ts says who writes what).
 */
#ifndef XENSIM_WIRE_H
#define XENSIM_WIRE_H
#include <stdint.h>

enum xs_op {
  XSIM_HELLO = 1,    /* arg = pid; reply result = domid, payload = u32 session, page path NUL slot path */
  XSIM_OPEN_DEV = 2, /* dev = pid, arg = kind; reply result = device id, payload = FIFO path for evtchn
                        (first message on a device socket) */
  XSIM_IOCTL = 3,    /* dev, arg = ioctl number, payload = argument struct; evtchn binds reply
                        payload = struct xsim_slot */
  XSIM_MMAP = 4,     /* dev, payload = struct xsim_mmap_req; reply result = map id, payload = u32 pages[] */
  XSIM_UNMAP = 5,    /* arg = map id, payload = u32 first page, u32 count */
  XSIM_TARGET = 7,   /* dev, arg = port; reply result 0, payload = struct xsim_target, FIFO path;
                        or 1: this end is unbound (sends are dropped) */
};

#define XSIM_FROM_BROKER 0x80000000u /* in a FIFO: the broker raised this port */
#define XSIM_SLOT_MASKED 1u
#define XSIM_SLOT_PENDING 2u
#define XSIM_SLOT_GEN_SHIFT 2

enum xs_kind { XSIM_GNTALLOC = 1, XSIM_GNTDEV = 2, XSIM_EVTCHN = 3 };

struct xsim_req {
  uint32_t op, dev, len, arg;
};

struct xsim_rep {
  int32_t result; /* >= 0, or -errno */
  uint32_t len;
};

struct xsim_slotword {
  uint32_t state;  /* gen << XSIM_SLOT_GEN_SHIFT | pending | masked: CAS by notifiers and the owner */
  uint32_t raised; /* 1: the broker fired the port; the owner takes it by exchange */
};

struct xsim_slot {
  uint32_t index, gen;
};

struct xsim_target {
  uint32_t port; /* the remote end */
  struct xsim_slot slot;
  uint32_t dev; /* its evtchn device */
};

struct xsim_mmap_req {
  uint64_t offset;
  uint32_t count, prot;
};

#endif
