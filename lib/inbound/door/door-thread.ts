/**
 * The inbound receiver's SMTP door, on a worker thread of the master: smtp-server with the
 * listener guards (guarded-server.ts), listening on the inbound port itself, and the receiver's
 * decisions (receiver.ts) with what they need of their own (recipient policy, throttles,
 * blocklist, disk space, a load gate). Socket handling, the SMTP parser and the replies, most of a
 * session's cost, run here, beside the master's event loop instead of on it; the master keeps the
 * store, the API and the parser, and is asked only for what it alone holds (protocol.ts).
 *
 * The 250 is said only when the master answers a message's data with its id, which it does once
 * the message is durable. Nothing here outlives a session: should this thread die, the master
 * starts another, and a client cut off before its 250 sends again.
 */
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import type { SMTPServerOptions } from 'smtp-server';
import { GuardedSmtpServer } from '../../accept/guarded-server.js';
import { JUNK_COMMAND_LIMIT } from '../../accept/session-guards.js';
import { GcNudge } from '../../app/gc-nudge.js';
import { networkMatcher } from '../../config/net.js';
import { installMasterPatches } from '../../pinned/install.js';
import { DiskGuard } from '../../queue/disk-space.js';
import { Blocklist } from '../blocklist.js';
import { LoadGate } from '../load-gate.js';
import { Receiver } from '../receiver.js';
import { RecipientPolicy } from '../recipients.js';
import { Throttle } from '../throttle.js';
import { BatchedPort } from './batched-port.js';
import { MasterLink } from './master-link.js';
import type { DoorSetup, MasterMessage, ThreadMessage } from './protocol.js';
import { threadLogger } from './thread-log.js';

if (!parentPort) throw new Error('door-thread.ts runs as a worker thread of the master');
const port = parentPort;
const setup = workerData as DoorSetup;
const { config } = setup;

installMasterPatches();

const batches = new BatchedPort<ThreadMessage>(port);
const send = (message: ThreadMessage, transfer?: ArrayBuffer) => batches.send(message, transfer);
const logger = threadLogger(setup.logLevel, (line) => send({ type: 'log', line })).child({ component: 'inbound' });
const master = new MasterLink(send, setup);

const blocklist = new Blocklist(config.blocklist, logger);
blocklist.start();
const gate = new LoadGate({
  maxEventLoopDelayMs: config.throttle.maxEventLoopDelay,
  maxPendingWrites: config.throttle.maxPendingWrites,
  waitMs: config.throttle.loadWait,
  // the store's writes are the master's: its gate counts them, and says so in `overloaded`
  pendingWrites: () => 0,
  elsewhere: () => master.state.overloaded,
});
gate.start();
const throttle = new Throttle(config.throttle);
// this thread's share of large message bodies: it holds their Buffers until they are handed over
const gcNudge = new GcNudge();
const receiver = new Receiver({
  config,
  policy: new RecipientPolicy(config.domains, config.plusAddressing as 'fold' | 'keep'),
  throttle,
  blocklist,
  gate,
  disk: new DiskGuard(config.path, config.minFreeSpace),
  master,
  onBytes: (n) => gcNudge.note(n),
});

const tls = config.key && config.cert ? { key: readFileSync(config.key), cert: readFileSync(config.cert) } : {};
const options: SMTPServerOptions = {
  name: setup.hostname,
  banner: 'Sluice',
  ...tls,
  // this door takes mail for its own domains only: nobody logs in
  disabledCommands: config.key ? ['AUTH'] : ['AUTH', 'STARTTLS'],
  authOptional: true,
  size: config.maxSize,
  hideSize: false,
  hide8BITMIME: false,
  hideSMTPUTF8: false,
  hidePIPELINING: false,
  hideENHANCEDSTATUSCODES: false,
  hideDSN: true,
  disableReverseLookup: true,
  useProxy: config.proxyProtocol.length > 0,
  maxClients: config.maxClients,
  socketTimeout: config.socketTimeout,
  logger: false,
  onConnect: (session, cb) => receiver.decide(receiver.connect(session), cb),
  onMailFrom: (address, session, cb) => receiver.decide(receiver.mailFrom(address, session), cb),
  onRcptTo: (address, session, cb) => receiver.decide(receiver.rcptTo(address, session), cb),
  onData: (stream, session, cb) => receiver.decide(receiver.data(stream, session), cb),
};

const server = new GuardedSmtpServer(options, {
  greetingDelayMs: config.greetingDelay,
  maxConnectionsPerIp: config.maxConnectionsPerIp,
  uncapped: (ip) => throttle.exempt(ip),
  commandTimeoutMs: config.commandTimeout,
  dataTimeoutMs: config.dataTimeout,
  sessionTimeoutMs: config.sessionTimeout,
  maxJunkCommands: JUNK_COMMAND_LIMIT,
  maxBadCommands: config.maxBadCommands,
  proxyFrom: networkMatcher(config.proxyProtocol),
  authAfterTls: false,
  // refusals by address alone, decided before the guard sheds anyone to make room
  screen: (ip) => receiver.screen(ip),
});
server.on('error', (err) => logger.warn({ err, listener: 'inbound' }, `inbound listener: ${err.message}`));

port.on('message', (batch: MasterMessage[]) => {
  for (const m of batch) {
    if (master.take(m)) continue;
    if (m.type === 'pull') send({ type: 'counters', id: m.id, counters: receiver.counters() });
    else if (m.type === 'stop') stop();
  }
});

function stop(): void {
  receiver.stopping();
  void server.closeAll().then(() => {
    gate.stop();
    blocklist.stop();
    send({ type: 'stopped' });
  });
}

/**
 * The accept queue holds as many connections as the door serves at once (maxClients): when it
 * overflows, Linux drops the handshake's last ACK and the client waits, believing itself
 * connected, for a greeting that comes only after SYN-ACK retransmits (a second or more). A burst
 * of senders, or this thread stalled for a moment, must queue instead; the guard then answers
 * each of them (421 or shedding an idle session), and the kernel caps the figure at
 * net.core.somaxconn.
 */
server.listenOn(setup.port, config.host, Math.max(511, config.maxClients)).then(
  (address) => send({ type: 'ready', address }),
  (err: NodeJS.ErrnoException & { address?: string; port?: number }) =>
    send({ type: 'listenFailed', error: { message: err.message, code: err.code, address: err.address, port: err.port, syscall: err.syscall } }),
);
