import { it } from "vitest";

/**
 * Cases that tell one story on one world, each building on the ones before it. A case runs every
 * earlier step first (each step once per file), so any case also runs alone (`vitest -t`), with
 * the steps it builds on, and their assertions, as its preconditions.
 */
export function story() {
  const steps: (() => Promise<void>)[] = [];
  const runs: Promise<void>[] = [];
  const through = async (index: number) => {
    for (let i = 0; i <= index; i++) {
      runs[i] ??= steps[i]!();
      await runs[i];
    }
  };
  return (name: string, body: () => Promise<void>, timeout?: number) => {
    const index = steps.push(body) - 1;
    // Alone, a late case also runs every step before it: time for all of them.
    it(name, () => through(index), timeout ?? 900_000);
  };
}
