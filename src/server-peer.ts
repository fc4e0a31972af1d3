/**
 * One peer domain's side of a VchanServer: keeps exactly one offer
 * published for it, and offers a fresh one as soon as a client has taken
 * the last (its entries withdrawn first, so the fresh one never meets the
 * old channel's cleanup). A domain seen destroyed gets no new offer.
 */
import type { Backend } from './backend.js';
import { restated, type VchanError } from './errors.js';
import { listen } from './net.js';
import { watchPeerDomain, type PeerWatch } from './peer-watch.js';
import type { VchanStream, VchanStreamOptions } from './stream.js';

/** What a PeerOffers needs from its server. */
export interface PeerHost {
  readonly backend: Backend;
  readonly where: { path: string } | { port: number };
  readonly readMin?: number;
  readonly writeMin?: number;
  readonly streamOptions: VchanStreamOptions;
  /** False while the server or this peer is at its connection limit. */
  hasRoom(peer: number): boolean;
  connection(peer: number, stream: VchanStream): void;
  error(peer: number, error: VchanError): void;
  /** Something this peer held is released (an offer withdrawn, the watch closed). */
  settled(): void;
}

export class PeerOffers {
  private pending: VchanStream | undefined;
  private watch: PeerWatch | undefined;
  private stopped = false;
  private gone = false;
  /** A client took the last offer; its entries are being withdrawn before the next. */
  private withdrawing = false;
  private referenced = true;
  private markFirst!: () => void;
  /** Resolves once the first offer is published or has failed. */
  readonly first = new Promise<void>((resolve) => (this.markFirst = resolve));

  constructor(
    readonly peer: number,
    private readonly host: PeerHost,
  ) {}

  /** Offers, and follows the domain so that its death ends the offers (unless it is our own). */
  async start(self: number): Promise<void> {
    this.offer();
    if (this.peer === self) return;
    try {
      const watch = await watchPeerDomain(this.host.backend.store, this.peer, false, () => this.domainGone());
      if (this.stopped || this.gone) void watch.close().catch(() => undefined);
      else {
        this.watch = watch;
        if (!this.referenced) watch.unref?.();
      }
    } catch (error) {
      this.fail(error);
    }
  }

  /** True while an offer is published or being published. */
  get offering(): boolean {
    return this.pending !== undefined;
  }

  get domainDestroyed(): boolean {
    return this.gone;
  }

  /** Publishes an offer if there is none, the domain lives and the limits allow. */
  offer(): void {
    if (this.pending || this.withdrawing || this.stopped || this.gone || !this.host.hasRoom(this.peer)) return;
    const h = this.host;
    const stream = listen({ ...h.streamOptions, ...h.where, peer: this.peer, readMin: h.readMin, writeMin: h.writeMin, backend: h.backend });
    this.pending = stream;
    if (!this.referenced) stream.unref();
    stream.once('listening', this.markFirst);
    stream.once('connect', () => this.taken(stream));
    stream.on('error', (error: Error) => {
      if (this.pending !== stream) return; // a connection's errors are its owner's
      this.pending = undefined;
      this.markFirst();
      if (!this.stopped && !this.gone) this.fail(error);
    });
    stream.once('close', () => {
      if (this.pending === stream) this.pending = undefined;
      this.markFirst();
      h.settled();
    });
  }

  private taken(stream: VchanStream): void {
    if (this.pending !== stream) return;
    this.pending = undefined;
    const vchan = stream.vchan!;
    // Seen 'connected' because the domain died, or a client arriving while we close: no connection.
    if (vchan.peerDomainGone || this.stopped || this.gone) {
      stream.destroy();
      if (vchan.peerDomainGone) this.domainGone();
      return;
    }
    this.watch?.existed();
    this.host.connection(this.peer, stream);
    this.withdrawing = true;
    vchan.offerWithdrawn().then(
      () => {
        this.withdrawing = false;
        this.offer();
      },
      (error: unknown) => {
        this.withdrawing = false;
        this.fail(error);
      },
    );
  }

  private domainGone(): void {
    if (this.gone) return;
    this.gone = true;
    this.pending?.destroy();
    void this.closeWatch();
  }

  private fail(error: unknown): void {
    const named = restated(error, `domain ${this.peer}: ${(error as Partial<Error>).message ?? String(error)}`);
    (named as VchanError & { peer: number }).peer = this.peer;
    this.host.error(this.peer, named);
  }

  /** Withdraws the offer for good; resolves once nothing of it is held. */
  async stop(): Promise<void> {
    this.stopped = true;
    const pending = this.pending;
    pending?.destroy();
    await Promise.all([pending ? closed(pending) : undefined, this.closeWatch()]);
  }

  private async closeWatch(): Promise<void> {
    const watch = this.watch;
    this.watch = undefined;
    await watch?.close().catch(() => undefined);
  }

  ref(): void {
    this.referenced = true;
    this.pending?.ref();
    this.watch?.ref?.();
  }

  unref(): void {
    this.referenced = false;
    this.pending?.unref();
    this.watch?.unref?.();
  }
}

function closed(stream: VchanStream): Promise<void> {
  return stream.closed ? Promise.resolve() : new Promise((resolve) => stream.once('close', () => resolve()));
}
