// The ioctl interface of Linux's /dev/xen/{gntalloc,gntdev,evtchn}, declared
// here so the addon builds without Xen's headers. Layouts and numbers follow
// the kernel's UAPI; the static_asserts pin both (checked against Debian's
// libxen-dev headers by test/xen-backend/ioctl-layout.test.ts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <linux/ioctl.h>

namespace xen {

// --- gntalloc: share our own pages ---------------------------------------

// Flexible tail: the kernel reads `count` gref_ids, the ioctl number encodes
// the size with one.
struct GntallocAllocGref {
  uint16_t domid;
  uint16_t flags;
  uint32_t count;
  uint64_t index;  // out: mmap offset of the new pages
  uint32_t gref_ids[1];
};
constexpr uint16_t kGntallocFlagWritable = 1;

struct GntallocDeallocGref {
  uint64_t index;
  uint32_t count;
};

// Same layout for gntalloc and gntdev.
struct UnmapNotify {
  uint64_t index;  // mmap offset of the page plus byte offset within it
  uint32_t action;
  uint32_t event_channel_port;
};
constexpr uint32_t kUnmapNotifyClearByte = 1;
constexpr uint32_t kUnmapNotifySendEvent = 2;

constexpr unsigned long kGntallocAllocGref = _IOC(_IOC_NONE, 'G', 5, sizeof(GntallocAllocGref));
constexpr unsigned long kGntallocDeallocGref = _IOC(_IOC_NONE, 'G', 6, sizeof(GntallocDeallocGref));
constexpr unsigned long kGntallocSetUnmapNotify = _IOC(_IOC_NONE, 'G', 7, sizeof(UnmapNotify));

// --- gntdev: map a peer's pages --------------------------------------------

struct GntdevGrantRef {
  uint32_t domid;
  uint32_t ref;
};

struct GntdevMapGrantRef {
  uint32_t count;
  uint32_t pad;
  uint64_t index;  // out
  GntdevGrantRef refs[1];
};

struct GntdevUnmapGrantRef {
  uint64_t index;
  uint32_t count;
  uint32_t pad;
};

struct GntdevSetMaxGrants {
  uint32_t count;
};

constexpr unsigned long kGntdevMapGrantRef = _IOC(_IOC_NONE, 'G', 0, sizeof(GntdevMapGrantRef));
constexpr unsigned long kGntdevUnmapGrantRef = _IOC(_IOC_NONE, 'G', 1, sizeof(GntdevUnmapGrantRef));
constexpr unsigned long kGntdevSetMaxGrants = _IOC(_IOC_NONE, 'G', 3, sizeof(GntdevSetMaxGrants));
constexpr unsigned long kGntdevSetUnmapNotify = _IOC(_IOC_NONE, 'G', 7, sizeof(UnmapNotify));

// --- evtchn: event channels --------------------------------------------------

struct EvtchnBindInterdomain {
  unsigned int remote_domain;
  unsigned int remote_port;
};
struct EvtchnBindUnboundPort {
  unsigned int remote_domain;
};
struct EvtchnPort {  // UNBIND and NOTIFY
  unsigned int port;
};

constexpr unsigned long kEvtchnBindInterdomain = _IOC(_IOC_NONE, 'E', 1, sizeof(EvtchnBindInterdomain));
constexpr unsigned long kEvtchnBindUnboundPort = _IOC(_IOC_NONE, 'E', 2, sizeof(EvtchnBindUnboundPort));
constexpr unsigned long kEvtchnUnbind = _IOC(_IOC_NONE, 'E', 3, sizeof(EvtchnPort));
constexpr unsigned long kEvtchnNotify = _IOC(_IOC_NONE, 'E', 4, sizeof(EvtchnPort));

// The numbers a kernel built from the same UAPI uses (PROTOCOL.md §8).
static_assert(kGntallocAllocGref == 0x00184705, "GNTALLOC_ALLOC_GREF");
static_assert(kGntallocDeallocGref == 0x00104706, "GNTALLOC_DEALLOC_GREF");
static_assert(kGntallocSetUnmapNotify == 0x00104707, "GNTALLOC_SET_UNMAP_NOTIFY");
static_assert(kGntdevMapGrantRef == 0x00184700, "GNTDEV_MAP_GRANT_REF");
static_assert(kGntdevUnmapGrantRef == 0x00104701, "GNTDEV_UNMAP_GRANT_REF");
static_assert(kGntdevSetMaxGrants == 0x00044703, "GNTDEV_SET_MAX_GRANTS");
static_assert(kGntdevSetUnmapNotify == 0x00104707, "GNTDEV_SET_UNMAP_NOTIFY");
static_assert(kEvtchnBindInterdomain == 0x00084501, "IOCTL_EVTCHN_BIND_INTERDOMAIN");
static_assert(kEvtchnBindUnboundPort == 0x00044502, "IOCTL_EVTCHN_BIND_UNBOUND_PORT");
static_assert(kEvtchnUnbind == 0x00044503, "IOCTL_EVTCHN_UNBIND");
static_assert(kEvtchnNotify == 0x00044504, "IOCTL_EVTCHN_NOTIFY");
static_assert(offsetof(GntallocAllocGref, index) == 8 && offsetof(GntallocAllocGref, gref_ids) == 16, "alloc_gref layout");
static_assert(offsetof(GntdevMapGrantRef, index) == 8 && offsetof(GntdevMapGrantRef, refs) == 16, "map_grant_ref layout");

}  // namespace xen
