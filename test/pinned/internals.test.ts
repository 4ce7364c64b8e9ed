/**
 * #8 item 19: smtp-server and nodemailer are pinned exactly, the private members Sluice uses are
 * listed in one place and present, and on another version the speed patches give way to the
 * library's own code (the defences stay while their members are there), with a warning.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PRIVATE_MEMBERS, TESTED_VERSIONS, installedVersion, missingMembers, untestedLibraries, type Patch } from '../../lib/pinned/internals.js';
import '../../lib/accept/guarded-server.js';
import '../../lib/deliver/smtp-client.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const run = promisify(execFile);

interface ChildReport {
  scanInstalled: boolean;
  scanIsFast: boolean;
  stuffInstalled: boolean;
  stuffIsFast: boolean;
  secondGreeting: string;
  sessionReplies: string[];
  received: string[];
  warnings: { patch: Patch; enabled: boolean; installed: string; missing: string[]; text: string }[];
}

async function child(mode: 'version' | 'missing'): Promise<ChildReport> {
  const { stdout } = await run(process.execPath, [path.join(here, 'untested-child.js'), mode], { timeout: 20_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as ChildReport;
}

test('package.json pins smtp-server and nodemailer exactly, to the tested and installed versions', () => {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  for (const [library, version] of Object.entries(TESTED_VERSIONS)) {
    assert.equal(pkg.dependencies[library], version, `${library} in package.json`);
    assert.equal(installedVersion(library as keyof typeof TESTED_VERSIONS), version, `${library} in node_modules`);
  }
});

test('every private member listed is present in the installed libraries, and nothing is warned about', () => {
  for (const patch of Object.keys(PRIVATE_MEMBERS) as Patch[]) assert.deepEqual(missingMembers(patch), [], patch);
  assert.deepEqual(untestedLibraries(), []);
});

test('another version installed: the speed patches are off, the guards stay, and it is said', async () => {
  const r = await child('version');
  assert.equal(r.scanInstalled, false);
  assert.equal(r.scanIsFast, false);
  assert.equal(r.stuffInstalled, false);
  assert.equal(r.stuffIsFast, false);
  // the library's own scan took the message whole, the escape dot removed
  assert.deepEqual(r.received, ['Subject: x\r\n\r\n.dot line\r\nend\r\n']);
  assert.equal(r.secondGreeting, '421', 'the per-client cap still applies');
  const byPatch = Object.fromEntries(r.warnings.map((w) => [w.patch, w]));
  assert.equal(byPatch.dataScan?.enabled, false);
  assert.equal(byPatch.dotStuff?.enabled, false);
  assert.equal(byPatch.guards?.enabled, true);
  assert.match(byPatch.dataScan!.text, /smtp-server 9\.9\.9 is installed; Sluice was tested with 3\.21\.6: the fast end-of-DATA scan off/);
  assert.match(byPatch.guards!.text, /defences .* kept/);
});

test('a member the guards wrap is missing: the library\'s plain server runs, and it is said', async () => {
  const r = await child('missing');
  assert.equal(r.scanIsFast, true, 'the tested version keeps its speed patches');
  assert.equal(r.secondGreeting, '220', 'no per-client cap without the guards');
  assert.deepEqual(r.received, ['Subject: x\r\n\r\n.dot line\r\nend\r\n']);
  assert.ok(r.sessionReplies.includes('250'));
  assert.equal(r.warnings.length, 1);
  assert.equal(r.warnings[0]!.patch, 'guards');
  assert.equal(r.warnings[0]!.enabled, false);
  assert.deepEqual(r.warnings[0]!.missing, ['SMTPServer._onError()']);
  assert.match(r.warnings[0]!.text, /off, the library's own code runs \(missing: SMTPServer\._onError\(\)\)/);
});
