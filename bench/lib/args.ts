/** The benchmarks' command lines: each flag in turn, with a `value()` that takes the next word (or fails naming the flag). */
export function eachFlag(argv: string[], on: (flag: string, value: () => string) => void): void {
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    on(flag, () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    });
  }
}
