/**
 * The fakemx modes smtp-server cannot play, on a raw socket: a minimal SMTP server that accepts
 * everything except what the mode breaks.
 *   silent          never sends the greeting (reads and discards whatever arrives)
 *   stallAt X       answers normally until command X (EHLO/HELO, MAIL, RCPT, DATA, or the final
 *                   DOT), then never answers anything again
 *   starttlsInject  offers STARTTLS and answers it with "220 go\r\n250 injected\r\n" in ONE write,
 *                   then does the TLS handshake and carries on over TLS. Whatever the client sent
 *                   after STARTTLS in plaintext is discarded, as a correct server must. The
 *                   commands received are recorded on the connection (TLS ones marked "tls:") so
 *                   a test can see whether the client took "250 injected" as the EHLO reply (it
 *                   would then send MAIL without a fresh EHLO inside TLS).
 * Every input is bounded: a command line over 4 KB, or a message over 64 MB, closes the socket.
 */
import type net from 'node:net';
import tls from 'node:tls';
import type { FakeMxConnection, FakeMxMode, FakeMxRecorder, FakeMxTransaction } from './fakemx-types.js';

const MAX_LINE_BYTES = 4096;
const MAX_DATA_BYTES = 64 * 1024 * 1024;
const TERMINATOR = Buffer.from('\r\n.\r\n');

export function rawSession(socket: net.Socket, mode: FakeMxMode, conn: FakeMxConnection, mx: FakeMxRecorder): void {
  if (mode.kind === 'silent') {
    socket.resume(); // read and discard: the client's bytes must not pile up anywhere
    return;
  }
  const stallAt = mode.kind === 'stallAt' ? mode.at : undefined;
  const inject = mode.kind === 'starttlsInject';

  let io: net.Socket | tls.TLSSocket = socket;
  let buf: Buffer = Buffer.alloc(0);
  let inData = false;
  let stalled = false;
  let isTls = false;
  let helo = '';
  let tx: FakeMxTransaction | undefined;

  const write = (text: string) => {
    if (!io.destroyed) io.write(text);
  };
  const stall = (what: string) => {
    stalled = true;
    conn.commands.push(`(stalled at ${what})`);
    if (tx && tx.outcome === 'open') tx.outcome = 'stalled';
    mx.changed();
  };

  const onCommand = (line: string) => {
    conn.commands.push(isTls ? `tls:${line}` : line);
    mx.changed();
    const verb = (/^\S+/.exec(line)?.[0] ?? '').toUpperCase();
    const arg = line.slice(verb.length).trim();
    const stage = verb === 'HELO' || verb === 'EHLO' ? 'EHLO' : verb;
    if (stallAt && stage === stallAt) return stall(stallAt);

    switch (verb) {
      case 'EHLO':
        helo = arg;
        tx = undefined;
        return write([`250-${mx.name}`, '250-PIPELINING', '250-8BITMIME', ...(inject && !isTls ? ['250-STARTTLS'] : []), '250 SMTPUTF8'].join('\r\n') + '\r\n');
      case 'HELO':
        helo = arg;
        tx = undefined;
        return write(`250 ${mx.name}\r\n`);
      case 'STARTTLS':
        if (!inject || isTls) return write('502 5.5.1 not here\r\n');
        return upgrade();
      case 'MAIL': {
        const from = /<([^>]*)>/.exec(arg)?.[1] ?? '';
        tx = mx.startTransaction(conn, socket, helo, isTls, from);
        return write('250 2.1.0 Ok\r\n');
      }
      case 'RCPT': {
        const to = /<([^>]*)>/.exec(arg)?.[1] ?? '';
        if (!tx) return write('503 5.5.1 need MAIL\r\n');
        tx.to.push(to);
        mx.changed();
        return write('250 2.1.5 Ok\r\n');
      }
      case 'DATA':
        if (!tx || !tx.to.length) return write('503 5.5.1 need RCPT\r\n');
        inData = true;
        return write('354 End data with <CR><LF>.<CR><LF>\r\n');
      case 'RSET':
        if (tx && tx.outcome === 'open') tx.outcome = 'aborted';
        tx = undefined;
        return write('250 2.0.0 Ok\r\n');
      case 'NOOP':
        return write('250 2.0.0 Ok\r\n');
      case 'QUIT':
        write('221 2.0.0 Bye\r\n');
        io.end();
        return;
      default:
        return write('502 5.5.2 command not recognized\r\n');
    }
  };

  const onMessage = (raw: Buffer) => {
    const t = tx;
    tx = undefined;
    if (t) mx.finishData(t, unstuff(raw));
    if (stallAt === 'DOT') {
      tx = t; // so stall() marks it
      stall('DOT');
      tx = undefined;
      return;
    }
    if (t) {
      t.outcome = 'accepted';
      t.reply = '250 2.0.0 Ok: queued';
      mx.changed();
    }
    write('250 2.0.0 Ok: queued\r\n');
  };

  const onBytes = (chunk: Buffer) => {
    if (stalled) return;
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    for (;;) {
      if (stalled) return;
      if (inData) {
        // the message ends at CRLF.CRLF; an empty message is just ".CRLF"
        const end = buf.subarray(0, 3).equals(TERMINATOR.subarray(2)) ? -2 : buf.indexOf(TERMINATOR);
        if (end === -1) {
          if (buf.length > MAX_DATA_BYTES) io.destroy();
          return;
        }
        const body = end === -2 ? Buffer.alloc(0) : buf.subarray(0, end + 2);
        buf = buf.subarray(end === -2 ? 3 : end + TERMINATOR.length);
        inData = false;
        onMessage(body);
        continue;
      }
      const nl = buf.indexOf(0x0a);
      if (nl === -1) {
        if (buf.length > MAX_LINE_BYTES) io.destroy();
        return;
      }
      const line = buf.subarray(0, nl).toString('latin1').replace(/\r$/, '');
      buf = buf.subarray(nl + 1);
      onCommand(line);
      if (upgrading) return;
    }
  };

  let upgrading = false;
  const upgrade = () => {
    upgrading = true;
    // the injection: a second reply in the same write as the 220
    socket.write('220 2.0.0 go\r\n250 injected\r\n');
    socket.removeListener('data', onBytes);
    buf = Buffer.alloc(0); // plaintext pipelined after STARTTLS is discarded
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: mx.secureContext });
    secure.on('error', () => socket.destroy());
    secure.once('secure', () => {
      isTls = true;
      conn.tls = true;
      helo = '';
      tx = undefined;
      io = secure;
      upgrading = false;
      mx.changed();
      secure.on('data', onBytes);
    });
  };

  socket.once('close', () => {
    if (tx && tx.outcome === 'open') tx.outcome = 'aborted';
    mx.changed();
  });
  socket.on('data', onBytes);
  write(`220 ${mx.name} fakemx ESMTP\r\n`);
}

/** RFC 5321 §4.5.2: a line that starts with a dot had one added by the sender. */
function unstuff(raw: Buffer): Buffer {
  const text = raw.toString('latin1').replace(/(^|\r\n)\./g, '$1');
  return Buffer.from(text, 'latin1');
}
