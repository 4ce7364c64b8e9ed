/**
 * `sluice create DIR`: a new app dir made from setup/app-template/ — a commented config.toml,
 * plugins/ with an example plugin, keys/ (mode 0700) and data/. Refuses to overwrite an
 * existing config; other files already there are left alone.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The template ships with the package (setup/ is in package.json's files). */
export const APP_TEMPLATE_DIR = fileURLToPath(new URL('../../../setup/app-template', import.meta.url));

const DIR_MODES: Record<string, number> = { plugins: 0o755, keys: 0o700, data: 0o750 };

export function createAppDir(dir: string): string {
  const root = path.resolve(dir);
  const configFile = path.join(root, 'config.toml');
  if (existsSync(configFile)) throw new Error(`${configFile} exists already; not overwriting it`);
  mkdirSync(root, { recursive: true });
  for (const [sub, mode] of Object.entries(DIR_MODES)) mkdirSync(path.join(root, sub), { recursive: true, mode });
  copyTemplate(APP_TEMPLATE_DIR, root);
  return root;
}

/** Copies the template's files into place, keeping any file the user has already. */
function copyTemplate(from: string, to: string): void {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) {
      mkdirSync(dst, { recursive: true });
      copyTemplate(src, dst);
    } else if (!existsSync(dst)) {
      copyFileSync(src, dst);
    }
  }
}
