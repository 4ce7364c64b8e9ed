/**
 * V8 flags every Sluice process runs with.
 *
 * `--max-semi-space-size=2` (MB): V8 lets its young generation grow to 2 × 16 MB on a 64-bit
 * machine, and under steady mail traffic it does, in the master and in every worker. Our
 * short-lived garbage (parsed commands, frames, chunk views) does not need that room: with 2 MB
 * the relay benchmark showed the same CPU per message and 30 MB less RSS per process
 * (bench/README.md). V8 reads the flag only when a process starts, so it is given on the command
 * line: by the `sluice` script's first line (`#!/usr/bin/env -S node …`), by `npm start`, and by
 * the master to each worker it forks (test/app/node-flags.test.ts keeps the four in step).
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

/** `flags` plus every NODE_FLAGS entry whose option is not given there already. */
export function withNodeFlags(flags: readonly string[]): string[] {
  const given = new Set(flags.map((f) => f.split('=')[0]));
  return [...flags, ...NODE_FLAGS.filter((f) => !given.has(f.split('=')[0]))];
}
