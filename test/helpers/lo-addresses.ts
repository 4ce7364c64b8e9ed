/**
 * Extra IPv6 addresses on the loopback interface, for tests that need clients from several
 * addresses of one /64 (per-client caps count IPv6 per /64). Adding addresses needs root; tests
 * skip with the reason when it is refused.
 */
import { execFileSync } from 'node:child_process';

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
