/**
 * The inbound receiver for tests: an in-process master with the receiver on port 0 (no delivery
 * workers), a nodemailer transport that sends to it, a raw SMTP session, and small API probes.
 */
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer/index.js';
import type { Inbox } from '../../lib/inbound/inbox.js';
import type { Logger } from '../../lib/log/logger.js';
import { startMaster, tempDir, type TestMaster } from './master.js';
import { SmtpTalk } from './smtp-talk.js';

export interface TestReceiver {
  m: TestMaster;
  /** the receiver's SMTP port */
  port: number;
  /** the HTTP API's base URL */
  api: string;
  inbox: Inbox;
  /** sends a message to the receiver; resolves with the id from its 250 */
  send(mail: Mail.Options, opts?: { localAddress?: string }): Promise<string>;
  /** a raw session after the greeting and EHLO */
  session(localAddress?: string): Promise<SmtpTalk>;
  /** GET a path, JSON parsed */
  json<T = Record<string, unknown>>(path: string, init?: RequestInit): Promise<{ status: number; body: T; headers: Headers }>;
  stop(): Promise<void>;
}

/** Domains the test receiver serves unless a test says otherwise. */
export const TEST_DOMAINS = ['inbox.test', '*.wild.test'];

/** `logger`: the master's logger instead of a silent one (a test that reads the log). */
export async function startReceiver(inbound: Record<string, unknown> = {}, overrides: Record<string, unknown> = {}, dir = tempDir(), logger?: Logger): Promise<TestReceiver> {
  const m = await startMaster({ ...overrides, inbound: { domains: TEST_DOMAINS, checkAuth: false, ...inbound } }, dir, logger);
  const port = m.port('inbound');
  const inbox = m.master.inbound!.inbox;
  return {
    m,
    port,
    api: m.api,
    inbox,
    async send(mail, opts = {}) {
      const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, localAddress: opts.localAddress });
      try {
        const info = await transport.sendMail({ from: 'sender@src.test', subject: 'test', text: 'hello', ...mail });
        const id = /queued as (\S+)/.exec(info.response)?.[1];
        assert.ok(id, `no id in ${info.response}`);
        return id;
      } finally {
        transport.close();
      }
    },
    async session(localAddress) {
      const c = await SmtpTalk.connect(port, '127.0.0.1', localAddress);
      await c.expect(220);
      await c.send('EHLO client.test', 250);
      return c;
    },
    async json<T>(path: string, init?: RequestInit) {
      const res = await fetch(`${m.api}${path}`, { ...init, signal: AbortSignal.timeout(15_000) });
      const text = await res.text();
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = { _raw: text };
      }
      return { status: res.status, body: body as T, headers: res.headers };
    },
    stop: () => m.stop(),
  };
}

/** A raw message with CRLF line ends, exactly as the test will compare it. */
export function rawMessage(headers: Record<string, string>, body: string): string {
  return Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n' + body.replace(/\r?\n/g, '\r\n');
}
