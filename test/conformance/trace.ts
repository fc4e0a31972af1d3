/** What one end of a scenario saw: the unit the targets are compared in. */
export interface SideTrace {
  /** connect / end / finish / close / error:CODE / stuck, in the order they came. */
  events: string[];
  /** Each write()'s callback: 'ok', its error's code, or 'none' if never called. */
  writes: string[];
  /** Bytes this end wrote after it had seen 'end' (the half-close row of the table). */
  lateBytes: number;
  /** Whether this end called destroy() (its unsent bytes are then anyone's guess). */
  destroyed: boolean;
  received: number;
  hash: string;
  /** The reader stopped early (for await + break): only a prefix was read. */
  partial: boolean;
}

export interface Trace {
  server: SideTrace;
  client: SideTrace;
}
