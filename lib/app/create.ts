/**
 * `sluice create DIR`: a new app dir with a commented config.toml, plugins/, keys/ and data/.
 * Refuses to overwrite an existing config.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const CONFIG = `# Sluice app config. Every key and its default is documented in Sluice's config/default.toml;
# anything set here is laid over those defaults. Check it with: sluice check-config -d .

hostname = "mta.example.test"

[smtp]
host = "127.0.0.1"
port = 2525
# Users who may log in (make a hash with: sluice hash-password)
# [smtp.users]
# alice = "scrypt$..."

[api]
host = "127.0.0.1"
port = 8080

[queue]
path = "data/queue"

[zones.default]
processes = 1
connections = 5

# [zones.bulk]
# senderDomains = ["news.example.test"]
`;

const KEYS_README = `Put DKIM private keys here (mode 0600), and name them in config.toml under [[dkim.keys]].\n`;

export function createAppDir(dir: string): string {
  const root = path.resolve(dir);
  const configFile = path.join(root, 'config.toml');
  if (existsSync(configFile)) throw new Error(`${configFile} exists already; not overwriting it`);
  for (const sub of ['plugins', 'keys', 'data']) mkdirSync(path.join(root, sub), { recursive: true, mode: sub === 'keys' ? 0o700 : 0o755 });
  writeFileSync(configFile, CONFIG);
  writeFileSync(path.join(root, 'keys', 'README'), KEYS_README);
  return root;
}
