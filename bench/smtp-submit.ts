/**
 * A small SMTP submission client for the benches that smtp-source cannot drive: recipients in many
 * domains, a body of 150 MB streamed with backpressure, the time of each 250. One connection,
 * EHLO once, then MAIL, RCPT and DATA pipelined (Sluice announces PIPELINING), many messages per
 * connection. Bodies must already be dot-stuffed with CRLF line ends (the benches' bodies are
 * lines that never start with a dot). Every reply wait has a deadline.
 */
import { connect, type Socket } from 'node:net';
import { HOST } from './tools.js';

const REPLY_TIMEOUT_MS = 120_000;

export class SubmitClient {
  private buffered = '';
  private lines: string[] = [];
  private waiter?: { resolve: (reply: string) => void; reject: (err: Error) => void };
  private failure?: Error;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d.toString('latin1')));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('the SMTP connection closed')));
  }

  static async open(port: number): Promise<SubmitClient> {
    const socket = connect(port, HOST);
    const client = new SubmitClient(socket);
    await client.expect('220');
    socket.write('EHLO client.test\r\n');
    await client.expect('250');
    return client;
  }

  /** Sends one message; resolves at its 250 with the time (performance.now()) it came. */
  async send(from: string, to: string, body: Buffer | AsyncIterable<Buffer>): Promise<number> {
    this.socket.write(`MAIL FROM:<${from}>\r\nRCPT TO:<${to}>\r\nDATA\r\n`);
    await this.expect('250');
    await this.expect('250');
    await this.expect('354');
    if (Buffer.isBuffer(body)) this.socket.write(body);
    else {
      for await (const chunk of body) {
        if (this.failure) throw this.failure;
        if (!this.socket.write(chunk)) await new Promise((resolve) => this.socket.once('drain', resolve));
      }
    }
    this.socket.write('.\r\n');
    await this.expect('250');
    return performance.now();
  }

  close(): void {
    this.socket.removeAllListeners('close');
    this.socket.on('close', () => undefined);
    this.socket.end('QUIT\r\n');
    this.socket.destroy();
  }

  private async expect(code: string): Promise<void> {
    const reply = await this.reply();
    if (!reply.startsWith(code)) throw new Error(`expected ${code}, got: ${reply.trim()}`);
  }

  /** The next whole reply (a multi-line reply ends with "NNN "). */
  private reply(): Promise<string> {
    const done = this.takeReply();
    if (done !== undefined) return Promise.resolve(done);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no SMTP reply within ${REPLY_TIMEOUT_MS} ms`)), REPLY_TIMEOUT_MS);
      this.waiter = {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  private takeReply(): string | undefined {
    const last = this.lines.findIndex((l) => /^\d{3}( |$)/.test(l));
    if (last < 0) return undefined;
    const reply = this.lines.splice(0, last + 1).join('\n');
    return reply;
  }

  private onData(text: string): void {
    this.buffered += text;
    let nl: number;
    while ((nl = this.buffered.indexOf('\r\n')) >= 0) {
      this.lines.push(this.buffered.slice(0, nl));
      this.buffered = this.buffered.slice(nl + 2);
    }
    if (!this.waiter) return;
    const reply = this.takeReply();
    if (reply === undefined) return;
    const w = this.waiter;
    this.waiter = undefined;
    w.resolve(reply);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(err);
  }
}

const HEADERS = 'From: <s@src.test>\r\nTo: <r@dest.test>\r\nSubject: bench\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n';

/** A message of about `bytes` bytes: a small header block, then 76-character lines of base64 text
 * (no line starts with a dot), CRLF. */
export function textBody(bytes: number, seed = 1): Buffer {
  return Buffer.concat([Buffer.from(HEADERS, 'latin1'), lines(bytes, seed)]);
}

/** Such a message of `bytes`, streamed in pieces of about 64 KB (a 150 MB body is never in memory at once). */
export async function* streamedBody(bytes: number): AsyncGenerator<Buffer> {
  yield Buffer.from(HEADERS, 'latin1');
  const piece = lines(64 * 1024, 7);
  for (let sent = 0; sent < bytes; sent += piece.length) yield piece;
}

function lines(bytes: number, seed: number): Buffer {
  const line = lineOf(seed);
  return Buffer.from(line.repeat(Math.max(1, Math.ceil(bytes / line.length))), 'latin1');
}

function lineOf(seed: number): string {
  // base64 letters only; 'A'..'Z' first, so no line starts with a dot
  let s = '';
  let x = seed * 2_654_435_761;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < 76; i++) {
    x = (x * 1_103_515_245 + 12_345) >>> 0;
    s += alphabet[i === 0 ? x % 26 : x % 64];
  }
  return `${s}\r\n`;
}
