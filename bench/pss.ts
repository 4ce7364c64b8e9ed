/**
 * Where a process's proportional set size (PSS) goes, from the kernel's view of its mappings
 * (/proc/<pid>/smaps): PSS counts a page shared by n processes as 1/n in each, so summed over
 * Sluice's processes the node binary's pages shared between them count once. What the kinds
 * hold in a Sluice process:
 *
 * - `anon`: anonymous mappings: V8's heap (its pages are 256 KB mappings of their own), the malloc
 *   arenas of threads other than the main one (LevelDB's memtables are written on libuv's threads),
 *   thread stacks.
 * - `brk`: the main thread's malloc heap: Node's Buffers and ArrayBuffers (bodies in flight).
 * - `node`, `libs`: the node binary and shared libraries (code, mostly shared with other processes).
 * - `leveldb`: table files LevelDB has mapped to read them.
 * - `other`: everything else (files, vdso).
 *
 * Reading smaps costs a few ms per process, so the benches read it only when asked
 * (BENCH_MEM_DETAIL); the plain PSS comes from smaps_rollup.
 */
import { readFileSync } from 'node:fs';

export type PssKind = 'anon' | 'brk' | 'node' | 'libs' | 'leveldb' | 'other';
export const PSS_KINDS: readonly PssKind[] = ['anon', 'brk', 'node', 'libs', 'leveldb', 'other'];

/**
 * Proportional set size of a process (/proc/<pid>/smaps_rollup): its private pages plus its share
 * of pages it shares with others (the node binary, libraries), so a sum over processes counts
 * shared memory once. 0 when the process is gone.
 */
export function pssBytes(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return Number(m?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

function kindOf(name: string): PssKind {
  if (name === '') return 'anon';
  if (name === '[heap]') return 'brk';
  if (/\.(ldb|sst|log)$/.test(name)) return 'leveldb';
  if (/(^|\/)node$/.test(name)) return 'node';
  if (/\.so(\.|$)|\.node$/.test(name)) return 'libs';
  return 'other';
}

/** A process's PSS by kind of mapping, in bytes; undefined when the process is gone. */
export function pssByKind(pid: number): Record<PssKind, number> | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return undefined;
  }
  const out: Record<PssKind, number> = { anon: 0, brk: 0, node: 0, libs: 0, leveldb: 0, other: 0 };
  let kind: PssKind = 'other';
  for (const line of text.split('\n')) {
    // a mapping's header: "start-end perms offset dev inode [name]"
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (header) {
      kind = kindOf(header[1]!.trim());
      continue;
    }
    const pss = /^Pss:\s+(\d+) kB/.exec(line);
    if (pss) out[kind] += Number(pss[1]) * 1024;
  }
  return out;
}
