/**
 * A destination that keeps the exact bytes of every DATA transfer as they crossed the wire:
 * dot-stuffing included, up to and including the first CRLF.CRLF, which is where any SMTP
 * server would end the message. fakemx records the message after unstuffing; smuggling tests
 * need the raw form ("exactly one final dot", "no bare CR or LF on the wire").
 *
 * Plain SMTP, no PIPELINING, no STARTTLS; bounded inputs (a 4 KB command line, 64 MB of data).
 */
import net from 'node:net';

export interface RawCapture {
  from: string;
  to: string[];
  /** the bytes after 354 up to and including the terminating CRLF.CRLF */
  raw: Buffer;
  at: number;
}

export interface RawCaptureMx {
  host: string;
  port: number;
  route: { host: string; port: number };
  messages: RawCapture[];
  /** every command line received, in order, over all connections */
  commands: string[];
  stop(): Promise<void>;
}

const TERMINATOR = Buffer.from('\r\n.\r\n');

export async function startRawCaptureMx(): Promise<RawCaptureMx> {
  const messages: RawCapture[] = [];
  const commands: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let inData = false;
    let from = '';
    let to: string[] = [];
    const say = (line: string) => {
      if (!socket.destroyed) socket.write(line + '\r\n');
    };
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (inData) {
          // the message may be empty: the terminator then is ".CRLF" right after 354
          const idx = buf.subarray(0, 3).toString('latin1') === '.\r\n' ? -2 : buf.indexOf(TERMINATOR);
          if (idx === -1) {
            if (buf.length > 64 * 1024 * 1024) socket.destroy();
            return;
          }
          const end = idx === -2 ? 3 : idx + TERMINATOR.length;
          messages.push({ from, to, raw: Buffer.from(buf.subarray(0, end)), at: Date.now() });
          buf = buf.subarray(end);
          inData = false;
          say(`250 2.0.0 Ok: captured ${messages.length}`);
          continue;
        }
        const nl = buf.indexOf(0x0a);
        if (nl === -1) {
          if (buf.length > 4096) socket.destroy();
          return;
        }
        const line = buf.subarray(0, nl).toString('latin1').replace(/\r$/, '');
        buf = buf.subarray(nl + 1);
        commands.push(line);
        const verb = (/^\S*/.exec(line)![0] ?? '').toUpperCase();
        if (verb === 'EHLO') say('250-capture.test\r\n250-8BITMIME\r\n250 SMTPUTF8');
        else if (verb === 'HELO') say('250 capture.test');
        else if (verb === 'MAIL') {
          from = /<([^>]*)>/.exec(line)?.[1] ?? '';
          to = [];
          say('250 2.1.0 Ok');
        } else if (verb === 'RCPT') {
          to.push(/<([^>]*)>/.exec(line)?.[1] ?? '');
          say('250 2.1.5 Ok');
        } else if (verb === 'DATA') {
          inData = true;
          say('354 go ahead');
        } else if (verb === 'RSET' || verb === 'NOOP') say('250 2.0.0 Ok');
        else if (verb === 'QUIT') {
          say('221 2.0.0 Bye');
          socket.end();
          return;
        } else say('502 5.5.2 not here');
      }
    });
    say('220 capture.test ESMTP');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: '127.0.0.1',
    port,
    route: { host: '127.0.0.1', port },
    messages,
    commands,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** RFC 5321 §4.5.2: what the receiver makes of raw DATA bytes (terminator removed, dots unstuffed). */
export function unstuff(raw: Buffer): Buffer {
  let text = raw.toString('latin1');
  text = text.endsWith('\r\n.\r\n') ? text.slice(0, -3) : text === '.\r\n' ? '' : text;
  return Buffer.from(text.replace(/(^|\r\n)\./g, '$1'), 'latin1');
}
