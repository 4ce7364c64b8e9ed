/**
 * Extra IPv6 addresses on the loopback interface, for tests that need clients from several
 * addresses of one /64 (per-client caps count IPv6 per /64). Adding addresses needs root; tests
 * skip with the reason when it is refused.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { SmtpTalk } from './smtp-talk.js';

/** Adds the addresses to lo; returns the function that removes them, or why they could not be added. */
export function addIpv6(addresses: string[]): (() => void) | string {
  const ip = (args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const added: string[] = [];
  try {
    for (const a of addresses) {
      ip(['-6', 'addr', 'add', `${a}/128`, 'dev', 'lo', 'nodad']);
      added.push(a);
    }
  } catch (err) {
    for (const a of added) ip(['-6', 'addr', 'del', `${a}/128`, 'dev', 'lo']);
    return `cannot add IPv6 addresses to lo (${String((err as { stderr?: Buffer }).stderr ?? err).trim()}); this test needs root`;
  }
  return () => {
    for (const a of added) ip(['-6', 'addr', 'del', `${a}/128`, 'dev', 'lo']);
  };
}

/**
 * The per-/64 cap of an SMTP door with maxConnectionsPerIp = 2, listening on ::1: two addresses of
 * one /64 connect, a third of the same /64 gets 421 4.7.0 and is closed, an address of another
 * /64 still connects. `same` holds three addresses of one /64; each test uses its own.
 */
export async function checkSlash64Cap(t: { skip(why: string): void }, port: number, same: [string, string, string], other: string): Promise<void> {
  const remove = addIpv6([...same, other]);
  if (typeof remove === 'string') {
    t.skip(remove);
    return;
  }
  try {
    const open = [await SmtpTalk.connect(port, '::1', same[0]), await SmtpTalk.connect(port, '::1', same[1])];
    for (const c of open) await c.expect(220);
    const third = await SmtpTalk.connect(port, '::1', same[2]);
    assert.match((await third.next())!.text, /^421 4\.7\.0 /, 'a third address of the same /64 is over the cap');
    await third.waitClosed(2000);
    const elsewhere = await SmtpTalk.connect(port, '::1', other);
    await elsewhere.expect(220);
    for (const c of [...open, elsewhere]) c.close();
  } finally {
    remove();
  }
}
