/**
 * A stack of release actions taken during setup, run in reverse on close or
 * on a failed setup, so nothing taken is ever leaked. Errors in one action
 * do not stop the others; the first one is rethrown at the end.
 */
export class Releases {
  private readonly actions: Array<() => void | Promise<void>> = [];

  push(action: () => void | Promise<void>): void {
    this.actions.push(action);
  }

  /** Adds an action that runs after all the others. */
  unshift(action: () => void | Promise<void>): void {
    this.actions.unshift(action);
  }

  get size(): number {
    return this.actions.length;
  }

  async releaseAll(): Promise<void> {
    let first: unknown;
    let failed = false;
    while (this.actions.length > 0) {
      const action = this.actions.pop()!;
      try {
        await action();
      } catch (error) {
        if (!failed) first = error;
        failed = true;
      }
    }
    if (failed) throw first;
  }
}
