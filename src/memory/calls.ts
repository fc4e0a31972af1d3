/**
 * What a MemoryBackend asks of the hypervisor. The same interface is served
 * directly (backend in the hypervisor's thread) or over a MessagePort
 * (backend in a worker), so both modes run the same code.
 */
import type { StorePermission, UnmapNotify } from '../backend.js';

/** An armed unmap notification, enough for the backend's thread to fire it itself. */
export interface ArmedReply {
  readonly index: number;
  readonly slot: number;
  readonly offset: number;
}

export interface ShareReply {
  readonly id: number;
  readonly refs: readonly number[];
  readonly buffer: SharedArrayBuffer;
  readonly armed?: ArmedReply;
}

export interface MapReply {
  readonly id: number;
  readonly buffer: SharedArrayBuffer;
  readonly byteOffset: number;
  readonly byteLength: number;
  readonly armed?: ArmedReply;
}

export interface PortReply {
  readonly port: number;
  readonly slot: number;
}

export interface HypervisorCalls {
  share(peer: number, count: number, readOnly: boolean, notify: UnmapNotify | undefined): Promise<ShareReply>;
  map(peer: number, refs: readonly number[], writable: boolean, notify: UnmapNotify | undefined): Promise<MapReply>;
  /** Fire-and-forget: the backend has already fired any armed notification. */
  unshare(id: number): void;
  unmap(id: number): void;
  bindUnbound(peer: number): Promise<PortReply>;
  bindInterdomain(peer: number, remotePort: number): Promise<PortReply>;
  unbind(port: number): void;
  storeRead(path: string): Promise<string | undefined>;
  storeDirectory(path: string): Promise<string[] | undefined>;
  storeWriteAll(entries: ReadonlyArray<readonly [string, string]>, perms: readonly StorePermission[] | undefined): Promise<void>;
  storeRemove(path: string): Promise<void>;
  /** Events arrive through the backend's watch sink under the returned id. */
  storeWatch(path: string): Promise<number>;
  storeUnwatch(id: number): Promise<void>;
  /** Releases everything; resolves once the hypervisor holds nothing for this backend. */
  close(): Promise<void>;
  /** The process dies: everything is released, nothing is waited for. */
  destroy(): void;
}

/** Watch events for one backend, in order. */
export type WatchSink = (id: number, path: string) => void;
