/**
 * How every Sluice process is started: the V8 flags and the environment it runs with. Both are
 * read only when a process starts, so they are given where processes start: the `sluice`
 * script's first line (`#!/usr/bin/env -S … node …`), `npm start`, and the master to each worker
 * it forks (test/cli/node-flags.test.ts keeps the three in step; the systemd unit runs the
 * script). Memory is what they are for: bench/README.md ("Memory under load") has the figures.
 */

/**
 * - `--max-semi-space-size=2` (MB): V8 lets its young generation grow to 2 × 16 MB on a 64-bit
 *   machine, and under steady mail traffic it does, in the master and in every worker. Our
 *   short-lived garbage (parsed commands, frames, chunk views) does not need that room: with 2 MB
 *   the relay benchmark showed the same CPU per message and 30 MB less RSS per process.
 * - `--heap-growing-percent=20`: after a major collection V8 lets the old generation grow by a
 *   factor it picks from its collection speed, up to 4 for a heap as small as ours; per-message
 *   objects that outlive the small young generation then pile up as garbage until the heap has
 *   nearly quadrupled (the master went from 40 MB live to 120 MB during a 2 KB relay run). With
 *   a factor of 1.2 (V8 still grows by at least a few MB) the next collection comes at ~30 MB;
 *   marking 25 MB of live heap takes a few ms on V8's helper threads, and the relay benchmark's
 *   CPU per message stayed within its noise. It sets the growth, not a limit: a heap that needs
 *   more (a deep queue's counters, a huge plugin) still gets it.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--heap-growing-percent=20'];

/**
 * `MALLOC_ARENA_MAX=1`: glibc gives each thread that allocates its own malloc arena (up to 8 per
 * core), and memory freed into one is not reused by the others. LevelDB's memtables and
 * compactions run on libuv's and LevelDB's threads, V8 compiles on its helper threads: the
 * master kept 20-25 MB in half-empty arenas during the relay benchmark. One arena gave the
 * same CPU per message there (glibc's per-thread caches serve small allocations without the
 * arena's lock). Other C libraries ignore the variable.
 */
export const PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '1' };

/** `flags` plus every NODE_FLAGS entry whose option is not given there already. */
export function withNodeFlags(flags: readonly string[]): string[] {
  const given = new Set(flags.map((f) => f.split('=')[0]));
  return [...flags, ...NODE_FLAGS.filter((f) => !given.has(f.split('=')[0]))];
}

/** `env` plus every PROCESS_ENV variable it does not set already (an operator's own value wins). */
export function withProcessEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const [name, value] of Object.entries(PROCESS_ENV)) out[name] ??= value;
  return out;
}
