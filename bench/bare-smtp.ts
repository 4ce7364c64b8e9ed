/**
 * The SMTP library alone, for bench:inbound's "library ceiling": smtp-server with the inbound
 * receiver's protocol options, taking every message and throwing its bytes away: no store, no
 * guards, no throttles, no metrics. What Sluice's receiver cannot beat on the same machine with
 * one SMTP thread, so its rate can be read against the library's as well as against smtp-sink's.
 *
 * The library waits 100 ms after each connection before its greeting (to catch clients that talk
 * too soon); Sluice's guard greets at once by default (`greetingDelay`), and so does this server.
 *
 * Run by bench/inbound.ts as a child: prints `{"port":N}` once it listens on 127.0.0.1, stops on
 * SIGTERM.
 */
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

interface Greeting {
  _setListeners(done: () => void): void;
  connectionReady(): void;
}
// this process runs nothing else: replacing the library's delayed start here changes no one else's
(SMTPConnection.prototype as unknown as { init(this: Greeting): void }).init = function init(this: Greeting) {
  this._setListeners(() => this.connectionReady());
};

const server = new SMTPServer({
  banner: 'bare',
  disabledCommands: ['AUTH', 'STARTTLS'],
  authOptional: true,
  size: 25 * 1024 * 1024,
  hideDSN: true,
  disableReverseLookup: true,
  logger: false,
  onData(stream, _session, cb) {
    stream.on('data', () => undefined);
    stream.on('end', () => cb(null, 'Ok: dropped'));
  },
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.server.address() as { port: number }).port })}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
