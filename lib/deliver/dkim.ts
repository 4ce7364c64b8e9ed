// STUB — replaced by the real signer from the wt-dkim branch at merge.
import type { KeyObject } from 'node:crypto';
export interface DkimKey { domain: string; selector: string; algorithm: 'rsa-sha256' | 'ed25519-sha256'; privateKey: KeyObject }
export class DkimKeyError extends Error {}
export function loadDkimKeys(keys: readonly { domain: string; selector: string; privateKey: string; algorithm: string }[]): { keys: DkimKey[]; warnings: string[] } {
  if (keys.length) throw new DkimKeyError('DKIM not available in this build');
  return { keys: [], warnings: [] };
}
export function keysFor(_fromDomain: string, _keys: readonly DkimKey[]): DkimKey[] { return []; }
export function dkimSignatures(_headerBlock: string | Buffer, _bodyHash: string, _keys: readonly DkimKey[]): string { return ''; }
