/**
 * fakemx's modes, records and the small pure helpers shared by fakemx.ts and fakemx-raw.ts
 * (reply parsing, mode checks, X-Test-Id extraction, what counts as a copy).
 */
import { createHash, type Hash } from 'node:crypto';
import type net from 'node:net';
import type tls from 'node:tls';

export type FailStage = 'MAIL' | 'RCPT' | 'DATA' | 'DOT';
export type StallStage = 'EHLO' | 'MAIL' | 'RCPT' | 'DATA' | 'DOT';

export type FakeMxMode =
  | { kind: 'accept' }
  | { kind: 'tempfail'; at: FailStage; reply?: string; firstAttemptPerId?: boolean }
  | { kind: 'permfail'; at: FailStage; reply?: string; firstAttemptPerId?: boolean }
  | { kind: 'dropAfterDot'; firstAttemptPerId?: boolean }
  | { kind: 'delayDot'; ms: number }
  | { kind: 'silent' }
  | { kind: 'stallAt'; at: StallStage }
  | { kind: 'starttlsInject' };

export type SimpleMode = 'accept' | 'silent' | 'dropAfterDot' | 'starttlsInject';

export const DEFAULT_TEMPFAIL_REPLY = '450 4.2.0 greylisted, try again later';
export const DEFAULT_PERMFAIL_REPLY = '550 5.1.1 user unknown';

/**
 * open: in progress; accepted: 250 after the dot; rejected: we refused it (MAIL, DATA or DOT);
 * dropped: dropAfterDot; stalled: stallAt hit during it; aborted: the client left (or RSET)
 * before the end, e.g. after all its recipients were refused.
 */
export type Outcome = 'open' | 'accepted' | 'rejected' | 'dropped' | 'stalled' | 'aborted';

export interface FakeMxTransaction {
  connectionId: string;
  from: string;
  /** Recipients we accepted. */
  to: string[];
  /** Recipients we refused, with the reply. */
  refused: { address: string; reply: string }[];
  /** The message as received, after dot-unstuffing; undefined until the final dot. */
  data?: Buffer;
  size?: number;
  /** sha256 (hex) of the body after the header block, kept when `keepData` is false */
  bodySha256?: string;
  testId?: string;
  heloName: string;
  tls: boolean;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  connectedAt: number;
  mailAt: number;
  /** When the final dot arrived. */
  dataEndAt?: number;
  /** Our last reply in this transaction ('250 …', '450 …'); undefined if we never answered. */
  reply?: string;
  outcome: Outcome;
}

export interface FakeMxConnection {
  id: string;
  server: 'smtp-server' | 'raw';
  mode: FakeMxMode['kind'];
  remoteAddress: string;
  remotePort: number;
  connectedAt: number;
  closedAt?: number;
  tls: boolean;
  /** Raw sessions: every command line received, in order (after TLS they are marked). */
  commands: string[];
}

export interface FakeMxOptions {
  mode?: FakeMxMode | SimpleMode;
  /** Offer STARTTLS (default true). */
  tls?: boolean;
  /** PEM key and certificate (leaf first, then its chain) instead of the shared self-signed one */
  tlsKey?: Buffer;
  tlsCert?: Buffer;
  /** Name in the greeting and EHLO reply (default mx.test). */
  name?: string;
  /** Advertise SIZE and refuse bigger messages (552). */
  maxSizeBytes?: number;
  /**
   * Keep message bytes in `messages` (default true; X-Test-Id is read either way). Without them a
   * message is read as a stream (size, header block, body hash), so a test can send one of any size.
   */
  keepData?: boolean;
  /** Loopback address to listen on (default 127.0.0.1). */
  host?: string;
  /** Port to listen on (default 0: any free one) */
  port?: number;
  /** The RCPT reply for an address, or undefined for the mode's (e.g. refuse every bad* address) */
  recipientReply?: (address: string) => string | undefined;
}

/** What a raw session needs from the fakemx. */
export interface FakeMxRecorder {
  readonly name: string;
  readonly secureContext: tls.SecureContext;
  startTransaction(c: FakeMxConnection, socket: net.Socket, heloName: string, isTls: boolean, from: string): FakeMxTransaction;
  finishData(t: FakeMxTransaction, data: Buffer): void;
  changed(): void;
}

export interface Reply {
  code: number;
  text: string;
  line: string;
}

export function parseReply(reply: string): Reply {
  const m = /^([245]\d\d)[ -]?(.*)$/.exec(reply.trim());
  if (!m) throw new Error(`fakemx: a reply starts with a 3-digit code: ${JSON.stringify(reply)}`);
  return { code: Number(m[1]), text: m[2] ?? '', line: `${m[1]} ${m[2] ?? ''}`.trimEnd() };
}

export function replyError(r: Reply): Error {
  return Object.assign(new Error(r.text), { responseCode: r.code });
}

export function normalizeMode(mode: FakeMxMode | SimpleMode): FakeMxMode {
  const m: FakeMxMode = typeof mode === 'string' ? ({ kind: mode } as FakeMxMode) : { ...mode };
  if ((m.kind === 'tempfail' || m.kind === 'permfail') && m.reply) {
    const r = parseReply(m.reply);
    const wanted = m.kind === 'tempfail' ? 4 : 5;
    if (Math.floor(r.code / 100) !== wanted) throw new Error(`fakemx: ${m.kind} needs a ${wanted}xx reply, got ${m.reply}`);
  }
  return m;
}

export function isCopy(t: FakeMxTransaction): boolean {
  return t.dataEndAt !== undefined && (t.outcome === 'accepted' || t.outcome === 'dropped' || t.outcome === 'stalled');
}

/**
 * A message read as it streams, without keeping it: its size, the start of its header block (for
 * X-Test-Id) and a sha256 of its body (the bytes after the first empty line).
 */
export class StreamedData {
  size = 0;
  private head = Buffer.alloc(0);
  private body: Hash | undefined;

  add(chunk: Buffer): void {
    this.size += chunk.length;
    if (this.body) {
      this.body.update(chunk);
      return;
    }
    if (this.head.length >= HEAD_BYTES) return; // no header end within the bound: no body hash
    this.head = Buffer.concat([this.head, chunk]);
    const end = this.head.indexOf('\r\n\r\n');
    if (end < 0) return;
    this.body = createHash('sha256').update(this.head.subarray(end + 4));
    this.head = this.head.subarray(0, end + 4);
  }

  get testId(): string | undefined {
    return testIdOf(this.head);
  }

  get bodySha256(): string | undefined {
    return this.body?.copy().digest('hex');
  }
}

const HEAD_BYTES = 65536;

/** The X-Test-Id header's value, from the header block only (folded lines unfolded). */
export function testIdOf(data: Buffer): string | undefined {
  const head = data.subarray(0, 65536).toString('latin1');
  const end = /\r?\n\r?\n/.exec(head);
  const block = (end ? head.slice(0, end.index) : head).replace(/\r?\n[ \t]+/g, ' ');
  const m = /^x-test-id:[ \t]*([^\r\n]*)$/im.exec(block);
  return m ? m[1]!.trim() : undefined;
}
