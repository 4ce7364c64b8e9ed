/**
 * Run by internals.test.ts in a process of its own (the patches are installed once per process):
 * pretends another library version is installed, or removes a member the guards wrap, then
 * starts a GuardedSmtpServer and prints what happened as one JSON line.
 *
 * argv[2]: "version" (smtp-server and nodemailer report 9.9.9) or "missing" (the installed
 * versions, with SMTPServer.prototype._onError gone: the library itself only calls it on an error)
 */
import net from 'node:net';
import { SMTPServer } from 'smtp-server';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream.js';
import { withPrivateMembers } from '../../lib/pinned/internals.js';

const mode = process.argv[2];
if (mode === 'missing') delete withPrivateMembers<{ _onError?: unknown }>(SMTPServer.prototype)._onError;

const { installFastDataScan, fastFeed } = await import('../../lib/pinned/data-scan.js');
const { installFastDataStream, fastTransform } = await import('../../lib/pinned/dot-stuff.js');
const version = mode === 'version' ? '9.9.9' : undefined;
const scan = installFastDataScan(version);
const stuff = installFastDataStream(version);
const internals = await import('../../lib/pinned/internals.js');
if (mode === 'version') internals.decide('guards', '9.9.9');
const { GuardedSmtpServer } = await import('../../lib/accept/guarded-server.js');

const received: string[] = [];
const server = new GuardedSmtpServer(
  {
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    hideSTARTTLS: true,
    onData(stream, _session, callback) {
      const parts: Buffer[] = [];
      stream.on('data', (c: Buffer) => parts.push(c));
      stream.on('end', () => {
        received.push(Buffer.concat(parts).toString('latin1'));
        callback();
      });
    },
  },
  {
    greetingDelayMs: 0,
    maxConnectionsPerIp: 1,
    commandTimeoutMs: 5000,
    dataTimeoutMs: 5000,
    sessionTimeoutMs: 10000,
    maxJunkCommands: 100,
    maxBadCommands: 10,
    proxyFrom: () => false,
    authAfterTls: false,
  },
);
const { port } = await server.listenOn(0, '127.0.0.1');

/** Opens a session, sends `lines`, returns everything the server said until it closed. */
function talk(lines: string[], keepOpenMs = 0): Promise<{ text: string; socket: net.Socket }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.once('data', () => {
      if (keepOpenMs) return setTimeout(() => resolve({ text, socket }), keepOpenMs);
      socket.write(lines.join('\r\n') + '\r\n');
      socket.on('close', () => resolve({ text, socket }));
    });
  });
}

// a second connection from the same address while one is open: 421 only when the guards are on
const first = await talk([], 200);
const second = await talk(["QUIT"]);
// a polite end: with SMTPServer._onError gone (mode "missing") a reset would have no handler
await new Promise((r) => {
  first.socket.once('close', r);
  first.socket.write('QUIT\r\n');
});
await new Promise((r) => setTimeout(r, 200)); // the server's side of it closes too
const body = 'Subject: x\r\n\r\n..dot line\r\nend\r\n';
const session = await talk(['EHLO t.test', 'MAIL FROM:<a@x.test>', 'RCPT TO:<b@y.test>', 'DATA', body + '.', 'QUIT']);
await server.closeAll();

console.log(
  JSON.stringify({
    scanInstalled: scan,
    scanIsFast: withPrivateMembers<{ _feedDataStream: unknown }>(SMTPStream.prototype)._feedDataStream === fastFeed,
    stuffInstalled: stuff,
    stuffIsFast: withPrivateMembers<{ _transform: unknown }>(DataStream.prototype)._transform === fastTransform,
    secondGreeting: second.text.slice(0, 3),
    sessionReplies: session.text.split('\r\n').filter(Boolean).map((l) => l.slice(0, 3)),
    received,
    warnings: internals.untestedLibraries().map((v) => ({ ...v, text: internals.describeVerdict(v) })),
  }),
);
