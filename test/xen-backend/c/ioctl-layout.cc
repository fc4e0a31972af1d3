// Compiled (never run) by ioctl-layout.test.ts: the shim's own declarations
// must match Debian's libxen-dev headers field for field.
#include <stdint.h>
#include <sys/ioctl.h>

typedef uint16_t domid_t;  // evtchn.h expects it from xen/xen.h
#include <xen/sys/evtchn.h>
#include <xen/sys/gntalloc.h>
#include <xen/sys/gntdev.h>

#include "../../../native/xen_ioctl.h"

#define SAME_FIELD(ours, theirs, field)                                                  \
  static_assert(offsetof(ours, field) == offsetof(theirs, field), #theirs "." #field); \
  static_assert(sizeof(ours::field) == sizeof(theirs::field), #theirs "." #field " size")

SAME_FIELD(xen::GntallocAllocGref, ioctl_gntalloc_alloc_gref, domid);
SAME_FIELD(xen::GntallocAllocGref, ioctl_gntalloc_alloc_gref, flags);
SAME_FIELD(xen::GntallocAllocGref, ioctl_gntalloc_alloc_gref, count);
SAME_FIELD(xen::GntallocAllocGref, ioctl_gntalloc_alloc_gref, index);
SAME_FIELD(xen::GntallocAllocGref, ioctl_gntalloc_alloc_gref, gref_ids);
SAME_FIELD(xen::GntallocDeallocGref, ioctl_gntalloc_dealloc_gref, index);
SAME_FIELD(xen::GntallocDeallocGref, ioctl_gntalloc_dealloc_gref, count);
SAME_FIELD(xen::UnmapNotify, ioctl_gntalloc_unmap_notify, index);
SAME_FIELD(xen::UnmapNotify, ioctl_gntalloc_unmap_notify, action);
SAME_FIELD(xen::UnmapNotify, ioctl_gntalloc_unmap_notify, event_channel_port);
SAME_FIELD(xen::UnmapNotify, ioctl_gntdev_unmap_notify, index);
SAME_FIELD(xen::UnmapNotify, ioctl_gntdev_unmap_notify, action);
SAME_FIELD(xen::UnmapNotify, ioctl_gntdev_unmap_notify, event_channel_port);
SAME_FIELD(xen::GntdevGrantRef, ioctl_gntdev_grant_ref, domid);
SAME_FIELD(xen::GntdevGrantRef, ioctl_gntdev_grant_ref, ref);
SAME_FIELD(xen::GntdevMapGrantRef, ioctl_gntdev_map_grant_ref, count);
SAME_FIELD(xen::GntdevMapGrantRef, ioctl_gntdev_map_grant_ref, pad);
SAME_FIELD(xen::GntdevMapGrantRef, ioctl_gntdev_map_grant_ref, index);
SAME_FIELD(xen::GntdevMapGrantRef, ioctl_gntdev_map_grant_ref, refs);
SAME_FIELD(xen::GntdevUnmapGrantRef, ioctl_gntdev_unmap_grant_ref, index);
SAME_FIELD(xen::GntdevUnmapGrantRef, ioctl_gntdev_unmap_grant_ref, count);
SAME_FIELD(xen::GntdevSetMaxGrants, ioctl_gntdev_set_max_grants, count);
SAME_FIELD(xen::EvtchnBindInterdomain, ioctl_evtchn_bind_interdomain, remote_domain);
SAME_FIELD(xen::EvtchnBindInterdomain, ioctl_evtchn_bind_interdomain, remote_port);
SAME_FIELD(xen::EvtchnBindUnboundPort, ioctl_evtchn_bind_unbound_port, remote_domain);
SAME_FIELD(xen::EvtchnPort, ioctl_evtchn_unbind, port);
SAME_FIELD(xen::EvtchnPort, ioctl_evtchn_notify, port);

static_assert(sizeof(xen::GntallocAllocGref) == sizeof(ioctl_gntalloc_alloc_gref), "alloc_gref size");
static_assert(sizeof(xen::GntdevMapGrantRef) == sizeof(ioctl_gntdev_map_grant_ref), "map_grant_ref size");
static_assert(xen::kGntallocAllocGref == IOCTL_GNTALLOC_ALLOC_GREF, "GNTALLOC_ALLOC_GREF");
static_assert(xen::kGntallocDeallocGref == IOCTL_GNTALLOC_DEALLOC_GREF, "GNTALLOC_DEALLOC_GREF");
static_assert(xen::kGntallocSetUnmapNotify == IOCTL_GNTALLOC_SET_UNMAP_NOTIFY, "GNTALLOC_SET_UNMAP_NOTIFY");
static_assert(xen::kGntdevMapGrantRef == IOCTL_GNTDEV_MAP_GRANT_REF, "GNTDEV_MAP_GRANT_REF");
static_assert(xen::kGntdevUnmapGrantRef == IOCTL_GNTDEV_UNMAP_GRANT_REF, "GNTDEV_UNMAP_GRANT_REF");
static_assert(xen::kGntdevSetMaxGrants == IOCTL_GNTDEV_SET_MAX_GRANTS, "GNTDEV_SET_MAX_GRANTS");
static_assert(xen::kGntdevSetUnmapNotify == IOCTL_GNTDEV_SET_UNMAP_NOTIFY, "GNTDEV_SET_UNMAP_NOTIFY");
static_assert(xen::kEvtchnBindInterdomain == IOCTL_EVTCHN_BIND_INTERDOMAIN, "IOCTL_EVTCHN_BIND_INTERDOMAIN");
static_assert(xen::kEvtchnBindUnboundPort == IOCTL_EVTCHN_BIND_UNBOUND_PORT, "IOCTL_EVTCHN_BIND_UNBOUND_PORT");
static_assert(xen::kEvtchnUnbind == IOCTL_EVTCHN_UNBIND, "IOCTL_EVTCHN_UNBIND");
static_assert(xen::kEvtchnNotify == IOCTL_EVTCHN_NOTIFY, "IOCTL_EVTCHN_NOTIFY");
static_assert(xen::kUnmapNotifyClearByte == UNMAP_NOTIFY_CLEAR_BYTE && xen::kUnmapNotifySendEvent == UNMAP_NOTIFY_SEND_EVENT, "actions");
static_assert(xen::kGntallocFlagWritable == GNTALLOC_FLAG_WRITABLE, "GNTALLOC_FLAG_WRITABLE");
