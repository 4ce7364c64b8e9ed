/**
 * A faster DATA encoder for nodemailer's SMTP connection.
 *
 * nodemailer turns the message into SMTP DATA with its DataStream: bare CR and bare LF become
 * CRLF and a dot at the start of a line is doubled. It does so with a JavaScript loop over every
 * byte, which was 30% of a delivery worker's CPU when relaying 100 KB messages. The bodies we send
 * are already CRLF throughout (lib/message/line-ends.ts normalises them at accept, and the header
 * block is built with CRLF), so the usual chunk needs nothing but the dot rule, and that one can
 * be found with a native search.
 *
 * `fastTransform` gives exactly DataStream's output (test/pinned/dot-stuff.test.ts compares both
 * on random input split at random places): a chunk whose line ends are all CRLF is searched for
 * "\n." natively and passed on with the dots doubled; any other chunk goes to nodemailer's own
 * code. It replaces DataStream's _transform once, in the process that delivers, and only on the
 * nodemailer version it was tested with (lib/pinned/internals.ts; elsewhere nodemailer's own loop
 * runs); the equivalence test fails if a new version changes the rules.
 */
import DataStream from 'nodemailer/lib/smtp-connection/data-stream.js';
import { decide, withPrivateMembers } from './internals.js';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

interface DataStreamState {
  lastByte: number | false;
  inByteCount: number;
  outByteCount: number;
  push(chunk: Buffer): boolean;
}

type TransformFn = (this: DataStreamState, chunk: Buffer | string, encoding: BufferEncoding, done: () => void) => void;

const proto = withPrivateMembers<{ _transform: TransformFn }>(DataStream.prototype);

/** nodemailer's own byte loop, kept for chunks with bare CR or LF (and for the test). */
export const originalTransform: TransformFn = proto._transform;

/** True when every CR in the chunk is followed by LF and every LF preceded by CR. A CR as the
 * last byte is fine here: the next chunk's first byte is checked against it. */
function crlfOnly(chunk: Buffer, lastByte: number | false): boolean {
  if (lastByte === CR && chunk[0] !== LF) return false;
  for (let p = chunk.indexOf(LF); p !== -1; p = chunk.indexOf(LF, p + 1)) {
    if (p === 0 ? lastByte !== CR : chunk[p - 1] !== CR) return false;
  }
  for (let p = chunk.indexOf(CR); p !== -1; p = chunk.indexOf(CR, p + 1)) {
    if (p + 1 < chunk.length && chunk[p + 1] !== LF) return false;
  }
  return true;
}

export const fastTransform: TransformFn = function (this: DataStreamState, chunk, encoding, done) {
  if (typeof chunk === 'string' || !chunk.length || !crlfOnly(chunk, this.lastByte)) {
    return originalTransform.call(this, chunk, encoding, done);
  }
  this.inByteCount += chunk.length;
  const parts: Buffer[] = [];
  let from = 0;
  // a dot right at the start: the previous chunk ended a line (or this is the first byte)
  if (chunk[0] === DOT && (this.lastByte === LF || this.lastByte === false)) {
    parts.push(DOT_BUF);
  }
  let at = chunk.indexOf(LF_DOT);
  while (at !== -1) {
    parts.push(chunk.subarray(from, at + 1), DOT_BUF);
    from = at + 1;
    at = chunk.indexOf(LF_DOT, at + 1);
  }
  const out = parts.length ? Buffer.concat([...parts, chunk.subarray(from)]) : chunk;
  this.outByteCount += out.length;
  this.push(out);
  this.lastByte = chunk[chunk.length - 1]!;
  done();
};

const DOT_BUF = Buffer.from('.');
const LF_DOT = Buffer.from('\n.');

let installed = false;

/**
 * Makes every DataStream of this process use fastTransform, when nodemailer is the tested
 * version. `version` stands in for the installed one (tests). True when it is installed.
 */
export function installFastDataStream(version?: string): boolean {
  if (installed) return proto._transform === fastTransform;
  installed = true;
  if (!decide('dotStuff', version).enabled) return false;
  proto._transform = fastTransform;
  return true;
}
