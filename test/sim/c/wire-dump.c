/*
 * Prints, as one JSON object, every number and layout of sim/preload/wire.h
 * as the C compiler sees them, and the ioctl numbers of Debian's own Xen
 * headers (libxen-dev's xen/sys/ evtchn.h, gntalloc.h, gntdev.h): test/sim/wire.test.ts checks
 * sim/broker/wire.ts against both.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>
/* evtchn.h uses Xen's domid_t without defining it */
typedef uint16_t domid_t;
#include <xen/sys/evtchn.h>
#include <xen/sys/gntalloc.h>
#include <xen/sys/gntdev.h>
#include "wire.h"

#define NUM(name, value) printf("%s\"%s\":%llu", first ? "" : ",", name, (unsigned long long)(value)), first = 0

int main(void) {
  int first = 1;
  printf("{");
  NUM("Op.HELLO", XSIM_HELLO);
  NUM("Op.OPEN_DEV", XSIM_OPEN_DEV);
  NUM("Op.IOCTL", XSIM_IOCTL);
  NUM("Op.MMAP", XSIM_MMAP);
  NUM("Op.UNMAP", XSIM_UNMAP);
  NUM("Op.TARGET", XSIM_TARGET);
  NUM("Kind.GNTALLOC", XSIM_GNTALLOC);
  NUM("Kind.GNTDEV", XSIM_GNTDEV);
  NUM("Kind.EVTCHN", XSIM_EVTCHN);
  NUM("FROM_BROKER", XSIM_FROM_BROKER);
  NUM("SLOT_MASKED", XSIM_SLOT_MASKED);
  NUM("SLOT_GEN_SHIFT", XSIM_SLOT_GEN_SHIFT);
  NUM("SLOT_BYTES", sizeof(struct xsim_slotword));
  NUM("req.bytes", sizeof(struct xsim_req));
  NUM("req.op", offsetof(struct xsim_req, op));
  NUM("req.dev", offsetof(struct xsim_req, dev));
  NUM("req.len", offsetof(struct xsim_req, len));
  NUM("req.arg", offsetof(struct xsim_req, arg));
  NUM("rep.bytes", sizeof(struct xsim_rep));
  NUM("rep.result", offsetof(struct xsim_rep, result));
  NUM("rep.len", offsetof(struct xsim_rep, len));
  NUM("mmap.offset", offsetof(struct xsim_mmap_req, offset));
  NUM("mmap.count", offsetof(struct xsim_mmap_req, count));
  NUM("mmap.prot", offsetof(struct xsim_mmap_req, prot));
  NUM("slot.bytes", sizeof(struct xsim_slot));
  NUM("slot.index", offsetof(struct xsim_slot, index));
  NUM("slot.gen", offsetof(struct xsim_slot, gen));
  NUM("target.bytes", sizeof(struct xsim_target));
  NUM("target.port", offsetof(struct xsim_target, port));
  NUM("target.slot", offsetof(struct xsim_target, slot));
  NUM("target.dev", offsetof(struct xsim_target, dev));
  NUM("Ioctl.GNTALLOC_ALLOC_GREF", IOCTL_GNTALLOC_ALLOC_GREF);
  NUM("Ioctl.GNTALLOC_DEALLOC_GREF", IOCTL_GNTALLOC_DEALLOC_GREF);
  NUM("Ioctl.GNT_SET_UNMAP_NOTIFY", IOCTL_GNTALLOC_SET_UNMAP_NOTIFY);
  NUM("gntdev.SET_UNMAP_NOTIFY", IOCTL_GNTDEV_SET_UNMAP_NOTIFY);
  NUM("Ioctl.GNTDEV_MAP_GRANT_REF", IOCTL_GNTDEV_MAP_GRANT_REF);
  NUM("Ioctl.GNTDEV_UNMAP_GRANT_REF", IOCTL_GNTDEV_UNMAP_GRANT_REF);
  NUM("Ioctl.EVTCHN_BIND_INTERDOMAIN", IOCTL_EVTCHN_BIND_INTERDOMAIN);
  NUM("Ioctl.EVTCHN_BIND_UNBOUND_PORT", IOCTL_EVTCHN_BIND_UNBOUND_PORT);
  NUM("Ioctl.EVTCHN_UNBIND", IOCTL_EVTCHN_UNBIND);
  NUM("Ioctl.EVTCHN_NOTIFY", IOCTL_EVTCHN_NOTIFY);
  NUM("Ioctl.EVTCHN_RESET", IOCTL_EVTCHN_RESET);
  NUM("Ioctl.EVTCHN_RESTRICT_DOMID", IOCTL_EVTCHN_RESTRICT_DOMID);
  NUM("UNMAP_NOTIFY_CLEAR_BYTE", UNMAP_NOTIFY_CLEAR_BYTE);
  NUM("UNMAP_NOTIFY_SEND_EVENT", UNMAP_NOTIFY_SEND_EVENT);
  printf("}\n");
  return 0;
}
