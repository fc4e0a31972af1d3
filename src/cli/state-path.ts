/** `vchan proxy -s <path>`: tells a toolstack we are up, as vchan-socket-proxy does, by writing "running". */
import { leaseDefaultBackend } from '../xen/default-backend.js';

export async function writeRunningState(path: string): Promise<void> {
  const lease = leaseDefaultBackend();
  try {
    await lease.backend.store.writeAll([[path, 'running']]);
  } finally {
    lease.release();
  }
}
