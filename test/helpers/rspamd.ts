/**
 * A private Rspamd for tests: the Debian package's daemon, run in the foreground as our child
 * with a minimal config of our own in a temp dir (none of the system's Rspamd config is read),
 * its normal worker (the one that serves /checkv2) on a loopback port, stopped by PID.
 *
 * The config keeps start-up fast and the daemon off the network: no hyperscan (its cold compile
 * takes ~20 s), none of the stock rules or maps, DNS pointed at a closed loopback port. Rspamd's
 * core still detects GTUBE (action "reject"); two Lua rules of ours give the other actions:
 *   SLUICE-TAG-ME in a text part    → score 7   → "add header"
 *   SLUICE-SUSPECT in a text part   → score 4.5 → "greylist"
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from './master.js';

export const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';

const RULES = `
local function body_has(task, needle)
  for _, part in ipairs(task:get_text_parts() or {}) do
    if tostring(part:get_content()):find(needle, 1, true) then return true end
  end
  return false
end
rspamd_config:register_symbol({ name = 'SLUICE_TEST_TAG', score = 7.0, callback = function(task) return body_has(task, 'SLUICE-TAG-ME') end })
rspamd_config:register_symbol({ name = 'SLUICE_TEST_SUSPECT', score = 4.5, callback = function(task) return body_has(task, 'SLUICE-SUSPECT') end })
`;

export interface TestRspamd {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** Whether the rspamd binary is installed (Debian package "rspamd"). */
export function rspamdInstalled(): boolean {
  return spawnSync('rspamd', ['--version'], { encoding: 'utf8' }).status === 0;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export async function startRspamd(readyTimeoutMs = 60_000): Promise<TestRspamd> {
  const dir = tempDir('sluice-rspamd-');
  mkdirSync(path.join(dir, 'local'));
  const port = await freePort();
  writeFileSync(path.join(dir, 'rules.lua'), RULES);
  writeFileSync(
    path.join(dir, 'rspamd.conf'),
    `lua = "${path.join(dir, 'rules.lua')}";
options {
  pidfile = "${path.join(dir, 'rspamd.pid')}";
  filters = "";
  disable_hyperscan = true;
  dns { nameserver = ["127.0.0.1:9"]; timeout = 200ms; retransmits = 1; }
  tempdir = "${dir}";
}
actions { reject = 15; add_header = 6; greylist = 4; }
logging { type = "console"; level = "error"; }
worker "normal" {
  bind_socket = "127.0.0.1:${port}";
  mime = true;
  count = 1;
}
`,
  );
  const root = process.getuid?.() === 0 ? ['-u', 'root', '-g', 'root'] : [];
  const vars = ['DBDIR', 'RUNDIR', 'LOGDIR'].flatMap((v) => ['--var', `${v}=${dir}`]).concat(['--var', `LOCAL_CONFDIR=${path.join(dir, 'local')}`]);
  const child: ChildProcess = spawn('rspamd', ['-f', ...root, '-c', path.join(dir, 'rspamd.conf'), ...vars], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    // no such binary: spawn reports it here, not as an exit
    child.once('error', (err) => {
      output += `\n${err.message}`;
      resolve(null);
    });
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const stop = async () => {
    process.off('exit', killOnExit);
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + readyTimeoutMs;
  let gone = false;
  void exited.then(() => (gone = true));
  while (Date.now() < deadline && !gone) {
    try {
      const res = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1000) });
      if ((await res.text()).trim() === 'pong') return { url, port, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`rspamd did not become ready on ${url}${gone ? ' (it exited)' : ''}: ${output.trim()}`);
}
