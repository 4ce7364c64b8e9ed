/**
 * The config a delivery worker is given at fork: what it needs to deliver, nothing it could leak.
 * Secrets the schema marks (the API token, SMTP users' hashes, the events webhook secret) and URL
 * passwords are removed, and only the plugins enabled for the sender process are kept (the
 * options of a main-only plugin, a bounce webhook's secret say, stay in the master).
 */
import type { Config } from '../config/schema.js';
import { configSchema } from '../config/schema.js';
import { withoutSecrets } from '../config/secrets.js';
import { pluginEntries } from '../plugins/loader.js';

export function workerConfig(config: Config): Config {
  const stripped = withoutSecrets(configSchema, config) as Config;
  const senders = new Set(pluginEntries(config).filter((p) => p.processes.includes('sender')).map((p) => p.name));
  const plugins = Object.fromEntries(Object.entries(config.plugins).filter(([name]) => senders.has(name)));
  return { ...stripped, plugins };
}
