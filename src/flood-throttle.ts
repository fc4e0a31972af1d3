/**
 * The flood rule every backend applies to each event channel port. A peer
 * can notify as often as it likes; when a port's handler says, several
 * wake-ups in a row, that it found nothing new (EventHandler returned
 * false), the port is unmasked later and later (up to MAX_DELAY_MS): a flood
 * then costs a few wake-ups a second instead of a core, and a real event
 * costs at most that delay. Events that fire while a port is masked stay
 * pending and arrive at the unmask.
 */

/** Wake-ups in a row that found nothing new before a port's unmask is delayed. */
const SPURIOUS_BEFORE_DELAY = 4;
const MAX_DELAY_MS = 32;

export class FloodThrottle {
  /** Wake-ups in a row whose handler found nothing new. */
  private spurious = 0;

  /** After a wake-up whose handler found something new (`changed`) or not: ms to keep the port masked, 0 = unmask now. */
  delayAfter(changed: boolean): number {
    this.spurious = changed ? 0 : this.spurious + 1;
    if (this.spurious < SPURIOUS_BEFORE_DELAY) return 0;
    return Math.min(MAX_DELAY_MS, 2 ** (this.spurious - SPURIOUS_BEFORE_DELAY));
  }
}
