/**
 * A faster end-of-DATA scan for smtp-server.
 *
 * In data mode smtp-server looks at every byte of the message in a JavaScript loop for a dot at
 * the start of a line (the end of the message, or an escape dot to remove): 6% of the master's
 * CPU when accepting 100 KB messages. Most chunks of a message have no such dot at all, and that
 * can be known with one native search. For those chunks `fastFeed` does what smtp-server does
 * when its loop finds nothing: keep the last four bytes (the terminator may straddle chunks),
 * count and pass on the rest, wait for the consumer when it pushes back. A chunk with such a dot
 * is passed on up to it, and smtp-server's own code takes it from there; so is a first chunk that
 * starts with a dot (their protections against early termination and smuggling live there).
 *
 * It replaces SMTPStream's _feedDataStream once, in the process that accepts mail.
 * test/accept/data-scan.test.ts feeds random messages, split at random places, through both and
 * compares what comes out and where data mode ends; smtp-server is pinned in package-lock.json.
 */
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import type { PassThrough } from 'node:stream';

interface DataModeState {
  _atDataStart: boolean;
  _lastBytes: Buffer | false;
  _dataStream: PassThrough & { writable: boolean };
  _countDataBytes(len: number): void;
}

type FeedFn = (this: DataModeState, chunk: Buffer, done: () => void) => void;

const proto = SMTPStream.prototype as unknown as { _feedDataStream: FeedFn };

/** smtp-server's own scan, for every chunk that may hold a dot at a line start. */
export const originalFeed: FeedFn = proto._feedDataStream;

const LF_DOT = Buffer.from('\n.');
const DOT = 0x2e;

export const fastFeed: FeedFn = function (this: DataModeState, chunk, done) {
  // at the start of the message their checks look at the first bytes for a dot (an empty message,
  // an escape dot that must not turn into a terminator): any dot there, and the chunk is theirs
  if (this._atDataStart && (chunk.length < 3 || chunk[0] === DOT || (this._lastBytes && this._lastBytes.length))) {
    return originalFeed.call(this, chunk, done);
  }
  const last = this._lastBytes;
  const all = last && last.length ? Buffer.concat([last, chunk], last.length + chunk.length) : chunk;
  // smtp-server's loop looks at a dot after LF from the third byte on. At the first such dot the
  // chunk becomes theirs, from the byte before that LF on (their loop needs the two bytes before
  // a dot to tell the terminator "\r\n.\r\n"); what comes before it is plain content, passed on
  // here. A message's last chunk holds its terminator, so without this split the fast path
  // would never see a message that arrives in one or two reads.
  const at = all.indexOf(LF_DOT, 1);
  if (at !== -1) {
    this._lastBytes = false;
    // a dot in the last three bytes is one their loop leaves for the next chunk: the whole is theirs
    if (at >= all.length - 3) return originalFeed.call(this, all, done);
    if (at > 1) {
      const head = all.subarray(0, at - 1);
      this._countDataBytes(head.length);
      if (this._dataStream.writable) this._dataStream.write(head);
    }
    return originalFeed.call(this, all.subarray(at - 1), done);
  }

  this._lastBytes = all.length < 4 ? all : all.subarray(all.length - 4);
  if (this._lastBytes.length >= all.length) return done();
  const buf = all.subarray(0, all.length - this._lastBytes.length);
  this._countDataBytes(buf.length);
  const dataStream = this._dataStream;
  if (!dataStream.writable) return done();
  if (dataStream.write(buf) || dataStream.destroyed) return done();
  // a stream that the application destroys never drains, it only closes
  const onDrain = () => {
    dataStream.removeListener('drain', onDrain);
    dataStream.removeListener('close', onDrain);
    done();
  };
  dataStream.once('drain', onDrain);
  dataStream.once('close', onDrain);
};

let installed = false;

/** Makes every SMTPStream of this process use fastFeed. */
export function installFastDataScan(): void {
  if (installed) return;
  installed = true;
  proto._feedDataStream = fastFeed;
}
