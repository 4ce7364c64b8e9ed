/**
 * Runs the real CLI (`node dist/bin/sluice.js …`) as a child process, with SLUICE_ variables
 * removed from its environment (the test runner's own would be refused as unknown keys).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const SLUICE_BIN = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLUICE_')));
  return { ...env, ...extra };
}

export function startCli(args: string[], opts: { env?: Record<string, string> } = {}): ChildProcess {
  return spawn(process.execPath, [SLUICE_BIN, ...args], { env: cliEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Runs to the end (killed by its PID after `timeoutMs`), feeding `input` to stdin. */
export function runCli(args: string[], opts: { input?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  const child = startCli(args, opts);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin!.end(opts.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Non-empty lines of a stream's text. */
export const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');
