/** `vchan proxy -s <path>`: tells a toolstack we are up, as vchan-socket-proxy does, by writing "running". */
import { XenBackend } from '../xen/backend.js';

export async function writeRunningState(path: string): Promise<void> {
  const backend = new XenBackend();
  try {
    await backend.store.writeAll([[path, 'running']]);
  } finally {
    backend.close();
  }
}
