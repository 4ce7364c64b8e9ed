/**
 * MTA-STS (RFC 8461) as text: the `_mta-sts` TXT record, the policy file, and which MX hosts a
 * policy allows. Pure functions, no I/O; lib/deliver/tls/mta-sts.ts fetches and caches.
 *
 * Parsing is strict where a lax reading would weaken the policy or guess at the sender's intent:
 * one `v=STSv1` TXT record with a valid id (several are "no policy", §3.1); the policy's version
 * first and STSv1, exactly one mode and max_age, at least one mx unless the mode is none, each mx
 * a host name or "*." and a host name. Unknown keys are ignored, as §3.2 asks.
 */

export type StsMode = 'enforce' | 'testing' | 'none';

export interface StsPolicy {
  mode: StsMode;
  /** patterns, lower case: "mx1.example.test" or "*.example.test" */
  mx: string[];
  maxAgeS: number;
}

/** RFC 8461 §3.2: max_age is at most 31557600 seconds (about a year). */
export const MAX_AGE_LIMIT_S = 31_557_600;

const HOST = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;

export class StsPolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StsPolicyError';
  }
}

/**
 * The policy id from the TXT records of `_mta-sts.DOMAIN` (each record as its strings joined);
 * undefined when there is no usable STSv1 record (none, several, or a malformed one).
 */
export function parseStsTxt(records: readonly string[]): string | undefined {
  const sts = records.filter((r) => /^v=STSv1\s*(;|$)/.test(r));
  if (sts.length !== 1) return undefined;
  const fields = new Map<string, string>();
  for (const part of sts[0]!.split(';')) {
    const f = part.trim();
    if (!f) continue;
    const eq = f.indexOf('=');
    if (eq <= 0) return undefined;
    fields.set(f.slice(0, eq), f.slice(eq + 1));
  }
  const id = fields.get('id');
  return id !== undefined && /^[A-Za-z0-9]{1,32}$/.test(id) ? id : undefined;
}

/** The policy file's text → a policy; throws StsPolicyError naming what is wrong. */
export function parseStsPolicy(text: string): StsPolicy {
  const lines = text.split(/\r?\n/);
  let version: string | undefined;
  let mode: string | undefined;
  let maxAge: string | undefined;
  const mx: string[] = [];
  let first = true;
  for (const raw of lines) {
    if (!raw.trim()) continue;
    const colon = raw.indexOf(':');
    if (colon <= 0) throw new StsPolicyError(`not a "key: value" line: ${JSON.stringify(raw.slice(0, 80))}`);
    const key = raw.slice(0, colon);
    const value = raw.slice(colon + 1).trim();
    if (!/^[A-Za-z0-9_.-]+$/.test(key)) throw new StsPolicyError(`bad key ${JSON.stringify(key.slice(0, 40))}`);
    if (first && key !== 'version') throw new StsPolicyError('the first field must be version');
    first = false;
    switch (key) {
      case 'version':
        if (version !== undefined) throw new StsPolicyError('version given twice');
        version = value;
        break;
      case 'mode':
        if (mode !== undefined) throw new StsPolicyError('mode given twice');
        mode = value;
        break;
      case 'max_age':
        if (maxAge !== undefined) throw new StsPolicyError('max_age given twice');
        maxAge = value;
        break;
      case 'mx':
        mx.push(checkMxPattern(value));
        break;
      default:
        break; // §3.2: unknown fields are ignored
    }
  }
  if (version !== 'STSv1') throw new StsPolicyError(version === undefined ? 'no version' : `unknown version ${JSON.stringify(version.slice(0, 20))}`);
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none') throw new StsPolicyError(mode === undefined ? 'no mode' : `unknown mode ${JSON.stringify(mode.slice(0, 20))}`);
  if (maxAge === undefined || !/^\d{1,10}$/.test(maxAge)) throw new StsPolicyError(maxAge === undefined ? 'no max_age' : `bad max_age ${JSON.stringify(maxAge.slice(0, 20))}`);
  const maxAgeS = Number(maxAge);
  if (maxAgeS > MAX_AGE_LIMIT_S) throw new StsPolicyError(`max_age ${maxAgeS} is above ${MAX_AGE_LIMIT_S}`);
  if (mode !== 'none' && !mx.length) throw new StsPolicyError(`mode ${mode} without any mx`);
  return { mode, mx, maxAgeS };
}

function checkMxPattern(value: string): string {
  const v = value.toLowerCase().replace(/\.$/, '');
  const host = v.startsWith('*.') ? v.slice(2) : v;
  if (!HOST.test(host)) throw new StsPolicyError(`bad mx ${JSON.stringify(value.slice(0, 80))}`);
  return v;
}

/** RFC 8461 §4.1: exact, or "*." standing for exactly one leftmost label. */
export function mxMatches(pattern: string, host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  const p = pattern.toLowerCase().replace(/\.$/, '');
  if (!p.startsWith('*.')) return h === p;
  const dot = h.indexOf('.');
  return dot > 0 && h.slice(dot + 1) === p.slice(2);
}

export function policyAllows(policy: StsPolicy, host: string): boolean {
  return policy.mx.some((p) => mxMatches(p, host));
}
