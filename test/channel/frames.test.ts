/**
 * The data channel's framing and its door: frames survive any TCP chunking (1-byte pieces, many
 * frames in one chunk, a frame split across chunks), an oversize or malformed frame is an error
 * (never buffered), and a connection to a running master's channel port that does not say hello
 * with the right secret is closed.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { encodeBody, encodeJson, FrameDecoder, FrameError, FRAME_BODY, FRAME_JSON, MAX_FRAME_BYTES, type Frame } from '../../lib/channel/frames.js';
import { PROTOCOL_VERSION } from '../../lib/channel/protocol.js';
import { startMaster, type TestMaster } from '../helpers/master.js';

function sample(): { wire: Buffer; expected: Frame[] } {
  const body = Buffer.alloc(3000, 0xab);
  body[0] = 0;
  body[2999] = 0xff;
  const frames = [
    encodeJson({ type: 'fetch', req: 1 }),
    ...encodeBody(7, body),
    encodeJson({ type: 'result', req: 2, leaseId: 'l', results: [{ seq: 1, outcome: 'delivered', response: '250 ok ünï' }] }),
    ...encodeBody(8, Buffer.alloc(0)),
    encodeJson({ type: 'bodyEnd', req: 9 }),
  ];
  return {
    wire: Buffer.concat(frames),
    expected: [
      { kind: FRAME_JSON, message: { type: 'fetch', req: 1 } },
      { kind: FRAME_BODY, req: 7, data: [body] },
      { kind: FRAME_JSON, message: { type: 'result', req: 2, leaseId: 'l', results: [{ seq: 1, outcome: 'delivered', response: '250 ok ünï' }] } },
      { kind: FRAME_BODY, req: 8, data: [] },
      { kind: FRAME_JSON, message: { type: 'bodyEnd', req: 9 } },
    ],
  };
}

function normalize(frames: Frame[]): unknown[] {
  return frames.map((f) => (f.kind === FRAME_BODY ? { kind: f.kind, req: f.req, data: Buffer.concat(f.data).toString('hex') } : f));
}

test('frames split into 1-byte chunks decode to the same frames', () => {
  const { wire, expected } = sample();
  const d = new FrameDecoder();
  const got: Frame[] = [];
  for (let i = 0; i < wire.length; i++) got.push(...d.push(wire.subarray(i, i + 1)));
  assert.deepEqual(normalize(got), normalize(expected));
});

test('frames coalesced into one chunk, and split at every boundary, decode the same', () => {
  const { wire, expected } = sample();
  assert.deepEqual(normalize(new FrameDecoder().push(wire)), normalize(expected));
  // every split point of the whole stream into two chunks (covers a split inside the length
  // prefix, the kind byte, the request id and the payload of each frame)
  for (let cut = 1; cut < wire.length; cut += cut < 40 ? 1 : 97) {
    const d = new FrameDecoder();
    const got = [...d.push(wire.subarray(0, cut)), ...d.push(wire.subarray(cut))];
    assert.deepEqual(normalize(got), normalize(expected), `split at ${cut}`);
  }
  // uneven chunk sizes
  const d = new FrameDecoder();
  const got: Frame[] = [];
  for (let i = 0, step = 1; i < wire.length; i += step, step = (step * 7) % 23 + 1) got.push(...d.push(wire.subarray(i, i + step)));
  assert.deepEqual(normalize(got), normalize(expected));
});

test('an oversize frame is an error as soon as its length is read, before its payload arrives', () => {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
  head[4] = FRAME_JSON;
  assert.throws(() => new FrameDecoder().push(head), FrameError);
  // the length prefix alone (4 bytes) is enough to refuse it
  assert.throws(() => new FrameDecoder().push(head.subarray(0, 4)), FrameError);
  const zero = Buffer.from([0, 0, 0, 0]);
  assert.throws(() => new FrameDecoder().push(zero), FrameError);
});

test('an unknown frame kind, bad JSON or a short body frame is an error', () => {
  const kind = Buffer.from([0, 0, 0, 2, 9, 0]);
  assert.throws(() => new FrameDecoder().push(kind), FrameError);
  const json = Buffer.concat([Buffer.from([0, 0, 0, 4, FRAME_JSON]), Buffer.from('{x}')]);
  assert.throws(() => new FrameDecoder().push(json), FrameError);
  const short = Buffer.from([0, 0, 0, 3, FRAME_BODY, 0, 1]);
  assert.throws(() => new FrameDecoder().push(short), FrameError);
});

const masters: TestMaster[] = [];
after(async () => {
  for (const m of masters) await m.stop();
});

/** Connects to the channel port, writes `bytes`, and reports whether the master closed the
 * connection within `withinMs` (and what it sent before closing). */
function probe(port: number, bytes: Buffer | undefined, withinMs: number): Promise<{ closed: boolean; received: Buffer; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect({ host: '127.0.0.1', port });
    const parts: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ closed: false, received: Buffer.concat(parts), ms: Date.now() - started });
    }, withinMs);
    socket.on('data', (d: Buffer) => parts.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ closed: true, received: Buffer.concat(parts), ms: Date.now() - started });
    });
    socket.on('connect', () => {
      if (bytes) socket.write(bytes);
    });
  });
}

test('the channel port closes connections without the right secret, and welcomes none of them', async () => {
  const m = await startMaster({ zones: { default: { processes: 1 } }, delivery: { connectTimeout: '1s' } });
  masters.push(m);
  const channel = m.master.listening.find((l) => l.kind === 'channel');
  assert.ok(channel, 'the master announces its channel address');
  const port = channel.port;
  const workerId = m.master.supervisor!.pids()[0]!.workerId;
  const hello = (secret: string, extra: Record<string, unknown> = {}) => encodeJson({ type: 'hello', version: PROTOCOL_VERSION, zone: 'default', workerId, secret, ...extra });

  const cases: [string, Buffer | undefined][] = [
    ['wrong secret for a real worker id', hello('0'.repeat(64))],
    ['empty secret', hello('')],
    ['unknown worker id', encodeJson({ type: 'hello', version: PROTOCOL_VERSION, zone: 'default', workerId: 'nobody.0.1', secret: 'x' })],
    ['a request before hello', encodeJson({ type: 'fetch', req: 1 })],
    ['garbage bytes', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['an oversize frame header', Buffer.from([0xff, 0xff, 0xff, 0xff, 1])],
  ];
  for (const [name, bytes] of cases) {
    const r = await probe(port, bytes, 3000);
    assert.equal(r.closed, true, `${name}: closed`);
    assert.ok(r.ms < 1500, `${name}: closed at once (${r.ms} ms)`);
    assert.equal(r.received.length, 0, `${name}: nothing sent back`);
  }
  // silence: closed by the hello deadline, not kept open forever
  const silent = await probe(port, undefined, 8000);
  assert.equal(silent.closed, true, 'a silent connection is closed by the hello deadline');
  assert.equal(silent.received.length, 0);
});
