/**
 * On Xen a bound port (the evtchn fd's poll handle) and a xenstore watch
 * (the xenstore socket) keep a Node process alive; emulated in memory they
 * are plain objects, so a process with an open channel or a pending
 * connect() would exit under it. Each such thing takes a Hold here; one
 * ref'ed timer stands in for the handles while any hold is referenced.
 */
export interface Hold {
  ref(): void;
  unref(): void;
  /** Done for good (port unbound, watch removed). Idempotent. */
  release(): void;
}

export class KeepAlive {
  private referenced = 0;
  private timer: ReturnType<typeof setInterval> | undefined;

  hold(): Hold {
    let on = false;
    let done = false;
    const set = (want: boolean): void => {
      if (done || want === on) return;
      on = want;
      this.referenced += want ? 1 : -1;
      this.update();
    };
    set(true);
    return {
      ref: () => set(true),
      unref: () => set(false),
      release: () => {
        set(false);
        done = true;
      },
    };
  }

  private update(): void {
    if (this.referenced > 0 && !this.timer) {
      this.timer = setInterval(() => undefined, 1 << 30);
    } else if (this.referenced === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
