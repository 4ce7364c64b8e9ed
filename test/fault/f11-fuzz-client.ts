/**
 * The fuzzing client of f11-fuzz.slow.test.ts, run in a worker thread so that making random
 * bytes and juggling sockets does not count against the event loop of the server under test.
 * workerData: { port, seed, cases, concurrency, rcpt }; posts { done: true } when every case is over.
 * `rcpt` is a recipient the door under test takes, so that cases reach its DATA handler too.
 */
import net from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { seededRandom } from '../helpers/seeded.js';

const MAX_LEN = 4096;
const CASE_TIMEOUT_MS = 3000;


const { port, seed, cases, concurrency, rcpt } = workerData as { port: number; seed: number; cases: number; concurrency: number; rcpt: string };

const PREFIXES = [
  '',
  'EHLO fuzz.test\r\n',
  'EHLO fuzz.test\r\nMAIL FROM:<f@x.test>\r\n',
  `EHLO fuzz.test\r\nMAIL FROM:<f@x.test>\r\nRCPT TO:<${rcpt}>\r\n`,
  `EHLO fuzz.test\r\nMAIL FROM:<f@x.test>\r\nRCPT TO:<${rcpt}>\r\nDATA\r\n`,
  'EHLO fuzz.test\r\nAUTH PLAIN\r\n',
  'EHLO fuzz.test\r\nAUTH LOGIN\r\n',
  'HELO fuzz.test\r\nMAIL FROM:<f@x.test> SIZE=',
];
const TOKENS = ['\r\n', '\n', '\r', '.', '\r\n.\r\n', '\0', ' ', '<', '>', ':', '@', 'MAIL FROM:', 'RCPT TO:', 'DATA', 'BDAT', 'STARTTLS', 'AUTH', 'RSET', 'QUIT', 'PROXY '];

function fuzzCase(rand: () => number): Buffer {
  const prefix = PREFIXES[Math.floor(rand() * PREFIXES.length)]!;
  const len = 1 + Math.floor(rand() * MAX_LEN);
  const out: Buffer[] = [Buffer.from(prefix, 'latin1')];
  let n = 0;
  while (n < len) {
    let piece: Buffer;
    if (rand() < 0.3) {
      piece = Buffer.from(TOKENS[Math.floor(rand() * TOKENS.length)]!, 'latin1');
    } else {
      // four random bytes per draw: the client shares the event loop being measured
      piece = Buffer.alloc(1 + Math.floor(rand() * 64));
      for (let i = 0; i < piece.length; i += 4) {
        const r = (rand() * 4294967296) >>> 0;
        for (let k = 0; k < 4 && i + k < piece.length; k++) piece[i + k] = (r >>> (8 * k)) & 0xff;
      }
    }
    out.push(piece);
    n += piece.length;
  }
  return Buffer.concat(out);
}

/** Sends one case, tries to end the session, and waits (bounded) for the server to close. */
function runCase(port: number, payload: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const timer = setTimeout(() => socket.destroy(), CASE_TIMEOUT_MS);
    socket.on('error', () => undefined);
    socket.on('data', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.on('connect', () => {
      socket.write(payload);
      socket.end('\r\n.\r\nQUIT\r\n');
    });
  });
}

// made one at a time in a fixed order, so the same seed replays the same cases
const rand = seededRandom(seed);
let made = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (made < cases) {
      made++;
      await runCase(port, fuzzCase(rand));
    }
  }),
);
parentPort?.postMessage({ done: true });
