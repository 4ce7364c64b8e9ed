/**
 * Plugins in a temporary app dir for tests: write a plugin's source under plugins/, get the
 * config table that enables it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Writes `source` to DIR/plugins/FILE and returns the relative path for the config. */
export function writePlugin(dir: string, file: string, source: string): string {
  const full = path.join(dir, 'plugins', file);
  mkdirSync(path.dirname(full), { recursive: true });
  writeFileSync(full, source);
  return `plugins/${file}`;
}

/** A user plugin enabled in the master, with options. */
export function userPlugin(file: string, options: Record<string, unknown> = {}, enabled: string[] = ['main']) {
  return { enabled, path: file, ...options };
}

export { waitFor } from './wait.js';
