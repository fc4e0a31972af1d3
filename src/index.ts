/** xen-vchan: Xen's libvchan protocol for Node.js. */
export { Vchan, DEFAULT_RING_MIN, type VchanServerOptions, type VchanClientOptions, type OpenState, type WaitOptions } from './channel.js';
export { VchanStream, type VchanStreamOptions, type VchanSource, type VchanAddress, type VchanStreamError } from './stream.js';
export { listen, connect, type ListenOptions, type ConnectOptions } from './net.js';
export {
  createServer,
  VchanServer,
  type VchanServerOptions as CreateServerOptions,
  type ServerListenOptions,
  type VchanServerAddress,
} from './server.js';
export { VchanError, ErrorCodes, type VchanErrorCode, type VchanErrorOptions } from './errors.js';
export type { Role } from './setup.js';
export type {
  Backend,
  EventChannel,
  EventHandler,
  GrantMapping,
  GrantShare,
  KeepAliveHandle,
  Store,
  StoreAccess,
  StorePermission,
  StoreWatch,
  UnmapNotify,
} from './backend.js';
export {
  Offsets,
  Notify,
  Live,
  MIN_ORDER,
  MAX_ORDER,
  PAGE_SIZE,
  chooseOrders,
  layoutFor,
  ringPlacement,
  grantCount,
  ControlPage,
  type GrantListLayout,
  type RingPlacement,
} from './layout.js';
export { RingReader, RingWriter, type RingIndices } from './ring.js';
export { XenBackend, type XenBackendOptions } from './xen/backend.js';
export { XenStore, type TransactionOptions, type XenStoreOptions, type XenStoreOps } from './xen/xenstore.js';
