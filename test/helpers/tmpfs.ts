/**
 * A small real filesystem for disk-full tests (F7): a tmpfs mounted on a directory we made, so
 * ENOSPC comes from the kernel, not from a mock. Needs root (CAP_SYS_ADMIN); `mountTmpfs` says
 * so by returning a reason instead of a mount when the kernel refuses. Always `unmount` in a
 * finally.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmdirSync, statfsSync } from 'node:fs';

export interface Tmpfs {
  dir: string;
  resize(sizeMb: number): void;
  readOnly(): void;
  freeBytes(): number;
  unmount(): void;
}

function run(args: string[]): void {
  execFileSync(args[0]!, args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Mounts a tmpfs of `sizeMb` on `dir` (created if missing); a string when mounting is not permitted. */
export function mountTmpfs(dir: string, sizeMb: number): Tmpfs | string {
  mkdirSync(dir, { recursive: true });
  try {
    run(['mount', '-t', 'tmpfs', '-o', `size=${sizeMb}m,mode=0755`, 'tmpfs', dir]);
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? err).trim();
    // only "not allowed" is a reason to skip; anything else is a failure of the test machine
    if (!/permission denied|not permitted|must be superuser|only root/i.test(stderr)) throw new Error(`mount tmpfs on ${dir} failed: ${stderr}`);
    rmdirSync(dir);
    return `cannot mount a tmpfs here (${stderr}); this test needs root or CAP_SYS_ADMIN`;
  }
  let mounted = true;
  return {
    dir,
    resize(size) {
      run(['mount', '-o', `remount,size=${size}m`, dir]);
    },
    readOnly() {
      run(['mount', '-o', 'remount,ro', dir]);
    },
    freeBytes() {
      const s = statfsSync(dir);
      return s.bavail * s.bsize;
    },
    unmount() {
      if (!mounted) return;
      try {
        run(['umount', dir]);
      } catch {
        // still busy (a child that has not quite exited): detach it now, the kernel frees it later
        run(['umount', '-l', dir]);
      }
      mounted = false;
      rmdirSync(dir);
    },
  };
}
