/**
 * A raw POP3 client for tests: sends bytes exactly as given and reads reply lines as they come
 * (as latin1, so a line maps back to its bytes). `ok(cmd)` / `err(cmd)` send a command and check
 * the status; `multi(cmd)` reads a multi-line response to its terminating dot, un-stuffed.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';

export class Pop3Talk {
  private buffer = '';
  private lines: string[] = [];
  private waiters: ((line: string | undefined) => void)[] = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => this.received(d));
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w(undefined);
    });
    socket.on('error', () => undefined);
  }

  /** Connects and reads the greeting (which must be +OK unless `greeting` says otherwise). */
  static async connect(port: number, opts: { localAddress?: string; greeting?: 'ok' | 'any' } = {}): Promise<{ talk: Pop3Talk; greeting: string }> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1', localAddress: opts.localAddress }, () => resolve(s));
      s.once('error', reject);
    });
    const talk = new Pop3Talk(socket);
    const greeting = (await talk.next()) ?? '(closed)';
    if (opts.greeting !== 'any') assert.match(greeting, /^\+OK /, greeting);
    return { talk, greeting };
  }

  private received(d: Buffer): void {
    this.buffer += d.toString('latin1');
    for (let at = this.buffer.indexOf('\r\n'); at !== -1; at = this.buffer.indexOf('\r\n')) {
      const line = this.buffer.slice(0, at);
      this.buffer = this.buffer.slice(at + 2);
      const w = this.waiters.shift();
      if (w) w(line);
      else this.lines.push(line);
    }
  }

  /** The next line, or undefined when the connection closed first. */
  next(timeoutMs = 10_000): Promise<string | undefined> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no POP3 line in time')), timeoutMs);
      this.waiters.push((l) => {
        clearTimeout(t);
        resolve(l);
      });
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Sends `cmd` (unless undefined) and expects +OK; returns the status line. */
  async ok(cmd?: string): Promise<string> {
    if (cmd !== undefined) this.write(cmd + '\r\n');
    const line = await this.next();
    assert.ok(line?.startsWith('+OK'), `${cmd}: expected +OK, got ${line}`);
    return line!;
  }

  /** Sends `cmd` and expects -ERR; returns the status line. */
  async err(cmd: string): Promise<string> {
    this.write(cmd + '\r\n');
    const line = await this.next();
    assert.ok(line?.startsWith('-ERR '), `${cmd}: expected -ERR, got ${line}`);
    return line!;
  }

  /** Sends `cmd`, expects +OK and reads the lines to the terminating dot, un-stuffed. */
  async multi(cmd: string): Promise<{ status: string; lines: string[] }> {
    const status = await this.ok(cmd);
    const lines: string[] = [];
    for (;;) {
      const line = await this.next();
      assert.ok(line !== undefined, `${cmd}: closed before the terminating dot`);
      if (line === '.') return { status, lines };
      lines.push(line.startsWith('.') ? line.slice(1) : line);
    }
  }

  /** A message from RETR or TOP as bytes: its lines joined with CRLF, a final CRLF included. */
  async message(cmd: string): Promise<{ status: string; bytes: Buffer }> {
    const { status, lines } = await this.multi(cmd);
    return { status, bytes: Buffer.from(lines.map((l) => l + '\r\n').join(''), 'latin1') };
  }

  /** After "+OK" to STLS: the TLS handshake over this socket; the talk goes on inside TLS. */
  async startTls(ca: Buffer): Promise<Pop3Talk> {
    this.socket.removeAllListeners('data');
    const secure = tls.connect({ socket: this.socket, ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    return new Pop3Talk(secure);
  }

  close(): void {
    this.socket.destroy();
  }

  /** Resolves when the server has closed the connection (rejects after `timeoutMs`). */
  async waitClosed(timeoutMs = 10_000): Promise<void> {
    if (!this.closed) await once(this.socket, 'close', { signal: AbortSignal.timeout(timeoutMs) });
  }
}
