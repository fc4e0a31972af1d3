/**
 * Faults injected on the emulator's side, so a program's own handling of
 * the errors Xen's drivers and xenstored return can be tested without
 * changing the program: "the next call of this kind from domain N fails
 * with this errno" (after letting `skip` such calls pass; `count` of them
 * fail in a row, e.g. an EAGAIN storm). A call is named as the broker sees
 * it: an ioctl by its name (GNTALLOC_ALLOC_GREF, GNTDEV_MAP_GRANT_REF,
 * EVTCHN_BIND_INTERDOMAIN, …), `MMAP` for a grant device's mmap, or
 * `xs:<TYPE>` for a xenstore request (xs:READ, xs:WRITE, xs:WATCH,
 * xs:TRANSACTION_END, …). ECONNRESET on a xenstore request drops that
 * connection instead of answering, as a xenstored that went away would.
 */
export interface FaultRule {
  domid: number;
  call: string;
  errno: string;
  /** Matching calls to let through first. */
  skip: number;
  /** Matching calls to fail after that. */
  count: number;
}

export class Faults {
  private rules: FaultRule[] = [];

  add(rule: FaultRule): void {
    this.rules.push({ ...rule });
  }

  /** Removes the rules of `domid` (every rule without one); returns what they had left undone. */
  clear(domid?: number): FaultRule[] {
    const gone = this.rules.filter((r) => domid === undefined || r.domid === domid);
    this.rules = this.rules.filter((r) => !gone.includes(r));
    return gone;
  }

  list(): FaultRule[] {
    return this.rules.map((r) => ({ ...r }));
  }

  /** Counts one call of `call` by `domid`: the errno it must fail with, or undefined. */
  take(domid: number, call: string): string | undefined {
    for (const r of this.rules) {
      if (r.domid !== domid || r.call !== call || r.count === 0) continue;
      if (r.skip > 0) {
        r.skip--;
        return undefined;
      }
      r.count--;
      return r.errno;
    }
    return undefined;
  }
}
