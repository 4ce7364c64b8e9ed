/**
 * A raw SMTP client for tests: send bytes exactly as given, read replies as they come.
 * `expect(code)` waits for the next complete reply and checks its code.
 */
import net from 'node:net';
import tls from 'node:tls';
import assert from 'node:assert/strict';

export interface Reply {
  code: number;
  text: string;
}

export class SmtpTalk {
  private buffer = '';
  private replies: Reply[] = [];
  private waiters: ((r: Reply | undefined) => void)[] = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d) => {
      this.buffer += d.toString('latin1');
      let m: RegExpExecArray | null;
      // a reply ends with a line "ddd text" (space, not dash)
      while ((m = /^((?:\d{3}-[^\r\n]*\r?\n)*)(\d{3})(?: [^\r\n]*)?\r?\n/.exec(this.buffer))) {
        const text = m[0];
        this.buffer = this.buffer.slice(text.length);
        this.push({ code: Number(m[2]), text: text.trimEnd() });
      }
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w(undefined);
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<SmtpTalk> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host, localAddress }, () => resolve(new SmtpTalk(socket)));
      socket.once('error', reject);
    });
  }

  /** Talks over a socket that is already connected (a TLS socket after a handshake, say). */
  static wrap(socket: net.Socket): SmtpTalk {
    return new SmtpTalk(socket);
  }

  private push(r: Reply) {
    const w = this.waiters.shift();
    if (w) w(r);
    else this.replies.push(r);
  }

  /** The next reply, or undefined if the connection closed first. */
  next(timeoutMs = 10_000): Promise<Reply | undefined> {
    const r = this.replies.shift();
    if (r) return Promise.resolve(r);
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no SMTP reply in time')), timeoutMs);
      this.waiters.push((x) => {
        clearTimeout(t);
        resolve(x);
      });
    });
  }

  async expect(code: number, timeoutMs?: number): Promise<Reply> {
    const r = await this.next(timeoutMs);
    assert.ok(r, `expected ${code}, connection closed`);
    assert.equal(r.code, code, `expected ${code}, got: ${r.text}`);
    return r;
  }

  /** STARTTLS (220 expected), then the handshake (any certificate): the session inside TLS. */
  async startTls(): Promise<SmtpTalk> {
    await this.send('STARTTLS', 220);
    this.socket.removeAllListeners('data');
    const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: this.socket, rejectUnauthorized: false }, () => resolve(s));
      s.once('error', reject);
    });
    return SmtpTalk.wrap(socket);
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  async send(line: string, code: number): Promise<Reply> {
    this.write(line + '\r\n');
    return this.expect(code);
  }

  /** From the greeting to DATA's 354 for one sender and one recipient: what comes next is the message. */
  async openData(from = 'a@x.test', to = 'r@y.test'): Promise<void> {
    await this.expect(220);
    await this.send('EHLO client.test', 250);
    await this.send(`MAIL FROM:<${from}>`, 250);
    await this.send(`RCPT TO:<${to}>`, 250);
    await this.send('DATA', 354);
  }

  close(): void {
    this.socket.destroy();
  }

  /** Resolves when the server has closed the connection. */
  waitClosed(timeoutMs = 10_000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('connection still open')), timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
