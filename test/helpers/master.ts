/**
 * Test harness: a real Master in this process, on port 0 listeners and a fresh LevelDB queue in a
 * temporary app dir. Logs are silent unless SLUICE_TEST_LOG names a level.
 */
import { rmSync } from 'node:fs';
import { Master } from '../../lib/app/master.js';
import { loadConfig } from '../../lib/config/load.js';
import { createLogger, type Logger } from '../../lib/log/logger.js';
import { tempDir, testOverrides } from './test-config.js';

export { merge, tempDir, testOverrides } from './test-config.js';

export interface TestMaster {
  master: Master;
  dir: string;
  smtpPort: number;
  apiPort: number;
  api: string;
  /** port of a named SMTP listener */
  port(name: string): number;
  stop(): Promise<void>;
}

/** `logger`: the master's logger instead of one at the config's level (a test that reads the log). */
export async function startMaster(overrides: Record<string, unknown> = {}, dir = tempDir(), logger?: Logger): Promise<TestMaster> {
  const o = testOverrides(overrides);
  const loaded = loadConfig({ appDir: dir, env: {}, overrides: o });
  const master = new Master(loaded, logger ?? createLogger(loaded.config.log.level));
  await master.start();
  const find = (name: string) => {
    const l = master.listening.find((x) => x.name === name);
    if (!l) throw new Error(`no listener ${name}`);
    return l.port;
  };
  const apiPort = master.listening.find((l) => l.kind === 'api')?.port ?? 0;
  const smtpPort = master.listening.find((l) => l.kind === 'smtp')?.port ?? 0;
  return {
    master,
    dir,
    smtpPort,
    apiPort,
    api: `http://127.0.0.1:${apiPort}`,
    port: find,
    async stop() {
      await master.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
