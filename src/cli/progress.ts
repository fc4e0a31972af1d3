/**
 * Byte counts and rates on stderr while data moves: one line rewritten in
 * place on a terminal (4 times a second), a new line each second otherwise,
 * and a summary at the end.
 */

export interface Counts {
  sent: number;
  received: number;
  /** Date.now() of the last byte moved either way (0: none yet). */
  lastActivityAt: number;
}

const MB = 1e6;

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1 << 30) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${(n / (1 << 30)).toFixed(2)} GiB`;
}

function rate(n: number, seconds: number): string {
  return `${seconds > 0 ? (n / MB / seconds).toFixed(1) : '0.0'} MB/s`;
}

export class Progress {
  private started = Date.now();
  private readonly timer: NodeJS.Timeout;
  private last: { sent: number; received: number; at: number };
  private drawn = false;

  constructor(
    private readonly counts: () => Counts,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {
    this.last = { sent: 0, received: 0, at: this.started };
    this.timer = setInterval(() => this.tick(), out.isTTY ? 250 : 1000);
    this.timer.unref();
  }

  /** Averages count from here (the peer connected), not from when we started waiting for it. */
  connected(): void {
    this.started = this.last.at = Date.now();
  }

  /** The rates since the previous line, so a stall shows at once. */
  private tick(): void {
    const now = Date.now();
    const c = this.counts();
    const seconds = (now - this.last.at) / 1000;
    const line =
      `vchan: sent ${bytes(c.sent)} (${rate(c.sent - this.last.sent, seconds)}), ` +
      `received ${bytes(c.received)} (${rate(c.received - this.last.received, seconds)})`;
    this.last = { sent: c.sent, received: c.received, at: now };
    if (this.out.isTTY) {
      this.out.write(`\r${line}\x1b[K`);
      this.drawn = true;
    } else {
      this.out.write(`${line}\n`);
    }
  }

  /** Stops the meter and prints totals, with average rates from connection to the last byte moved. */
  finish(): void {
    clearInterval(this.timer);
    const c = this.counts();
    const seconds = (Math.max(c.lastActivityAt, this.started) - this.started) / 1000;
    if (this.drawn) this.out.write('\r\x1b[K');
    this.out.write(
      `vchan: sent ${c.sent} bytes (${rate(c.sent, seconds)}), received ${c.received} bytes (${rate(c.received, seconds)}) in ${seconds.toFixed(2)} s\n`,
    );
  }
}
