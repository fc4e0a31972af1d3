/**
 * Turns the shim's errno errors into VchanErrors whose message says which
 * module, limit or permission is behind them, keeping `code` (the errno
 * name), `errno` and `syscall`.
 */
import { VchanError } from '../errors.js';

interface SystemErrorLike {
  code?: unknown;
  errno?: unknown;
  syscall?: unknown;
  path?: unknown;
  message?: unknown;
}

/** Which kernel module provides each device node. */
const DEVICE_MODULES: Record<string, string> = {
  gntalloc: 'xen_gntalloc',
  gntdev: 'xen_gntdev',
  evtchn: 'xen_evtchn',
  xenbus: 'xenbus_dev_frontend (built into kernels with Xen guest support)',
  privcmd: 'xen_privcmd',
};

function deviceName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The hint for one (syscall, code) pair, or undefined if the kernel's words say enough. */
function hint(syscall: string, code: string, path: string | undefined): string | undefined {
  if (syscall === 'open' && path !== undefined) {
    const dev = deviceName(path);
    const mod = DEVICE_MODULES[dev];
    if (code === 'ENOENT' || code === 'ENODEV' || code === 'ENXIO') {
      return (
        `${path} does not exist: this is not a Xen domain, or the ${mod ?? 'Xen'} module is not loaded` +
        (mod?.startsWith('xen_') ? ` (modprobe ${mod.replace(/_/g, '-')})` : '') +
        '; without Xen, run the program under the emulator: xensim run --domid N -- <command>'
      );
    }
    if (code === 'EACCES' || code === 'EPERM') {
      return `permission denied opening ${path}: run as root or give this user access to the device (a udev rule or group on /dev/xen/${dev})`;
    }
  }
  switch (`${syscall} ${code}`) {
    case 'ioctl(GNTALLOC_ALLOC_GREF) ENOSPC':
      return 'gntalloc limit reached: raise /sys/module/xen_gntalloc/parameters/limit (the default allows 1024 shared pages per domain) or ask for smaller rings';
    case 'ioctl(GNTALLOC_ALLOC_GREF) ENOMEM':
      return 'out of memory or grant table entries while sharing pages: the hypervisor grant table (gnttab_max_frames) may be full';
    case 'ioctl(GNTDEV_MAP_GRANT_REF) E2BIG':
    case 'ioctl(GNTDEV_MAP_GRANT_REF) ENOMEM':
    case 'ioctl(GNTDEV_MAP_GRANT_REF) EINVAL':
      return 'gntdev mapping limit reached: raise /sys/module/xen_gntdev/parameters/limit or ask for smaller rings';
    case 'ioctl(GNTDEV_SET_MAX_GRANTS) E2BIG':
    case 'ioctl(GNTDEV_SET_MAX_GRANTS) EINVAL':
      return 'gntdev refuses that many grants: raise /sys/module/xen_gntdev/parameters/limit or ask for smaller rings';
    case 'mmap EINVAL':
    case 'mmap EFAULT':
    case 'mmap EPERM':
    case 'mmap ENOENT':
      return 'mapping the peer\'s pages failed: the grant references are not granted to this domain (a stale xenstore entry, or the peer went away)';
    case 'mmap ENOMEM':
      return 'out of memory or address space mapping grant pages';
    case 'ioctl(GNTALLOC_SET_UNMAP_NOTIFY) EINVAL':
    case 'ioctl(GNTDEV_SET_UNMAP_NOTIFY) EINVAL':
      return 'arming the unmap notification (which tells the peer if this process dies) failed: the kernel refused the page offset or the event channel port';
    case 'ioctl(IOCTL_EVTCHN_BIND_INTERDOMAIN) EINVAL':
    case 'ioctl(IOCTL_EVTCHN_BIND_INTERDOMAIN) ENOENT':
      return 'binding the peer\'s event channel failed: the port is not offered to this domain (a stale xenstore entry, or the peer went away)';
    case 'ioctl(IOCTL_EVTCHN_BIND_INTERDOMAIN) ESRCH':
      return 'binding the peer\'s event channel failed: the peer\'s domain does not exist (it was destroyed; its xenstore entries were stale)';
    case 'ioctl(IOCTL_EVTCHN_BIND_INTERDOMAIN) EPERM':
    case 'ioctl(IOCTL_EVTCHN_BIND_UNBOUND_PORT) EPERM':
      return 'event channel binding refused: this evtchn handle is restricted to another domain, or the hypervisor denied it';
    case 'ioctl(IOCTL_EVTCHN_BIND_UNBOUND_PORT) ENOSPC':
    case 'ioctl(IOCTL_EVTCHN_BIND_INTERDOMAIN) ENOSPC':
      return 'no free event channel ports left in this domain';
  }
  if (code === 'ENOTTY') return `${syscall} is not supported by this device or kernel`;
  return undefined;
}

/**
 * A VchanError for a failed kernel operation. `what` says what we were
 * doing (e.g. "sharing 4 pages with domain 5"). Non-system errors pass through.
 */
export function kernelError(error: unknown, what: string): unknown {
  if (error instanceof VchanError || typeof error !== 'object' || error === null) return error;
  const e = error as SystemErrorLike;
  if (typeof e.code !== 'string' || typeof e.syscall !== 'string') return error;
  const path = typeof e.path === 'string' ? e.path : undefined;
  const why = hint(e.syscall, e.code, path) ?? String(e.message);
  return new VchanError(e.code, `${what}: ${e.code} from ${e.syscall}: ${why}`, {
    cause: error,
    syscall: e.syscall,
    ...(typeof e.errno === 'number' ? { errno: e.errno } : {}),
  });
}

/** Runs one native call, rethrowing its error as a VchanError that says what we were doing. */
export function sys<T>(what: string, call: () => T): T {
  try {
    return call();
  } catch (error) {
    throw kernelError(error, what);
  }
}
