/**
 * A faster end-of-DATA scan for smtp-server.
 *
 * In data mode smtp-server looks at every byte of the message in a JavaScript loop for a dot at
 * the start of a line (the end of the message, or an escape dot to remove): 6% of the master's
 * CPU when accepting 100 KB messages. Most chunks of a message have no such dot at all, and that
 * can be known with one native search. Such a chunk is held, whole, until the next one shows no
 * dot at a line start across the seam between them either (the terminator may straddle chunks),
 * then counted and passed on as it is (smtp-server keeps the last four bytes instead and joins
 * them to the next chunk: a copy of every byte). A chunk with such a dot is passed on up to it,
 * and smtp-server's own code takes it from there; so is a first chunk that starts with a dot
 * (their protections against early termination and smuggling live there). Only a message that
 * never ends differs: one chunk less of it has gone out when smtp-server destroys its stream.
 *
 * It replaces SMTPStream's _feedDataStream once, in the process that accepts mail, and only on
 * the smtp-server version it was tested with (lib/pinned/internals.ts; elsewhere smtp-server's
 * own scan runs). test/pinned/data-scan.test.ts feeds random messages, split at random places,
 * through both and compares what comes out and where data mode ends.
 */
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import type { PassThrough } from 'node:stream';
import { decide, withPrivateMembers } from './internals.js';

interface DataModeState {
  _atDataStart: boolean;
  _lastBytes: Buffer | false;
  _dataStream: PassThrough & { writable: boolean };
  _countDataBytes(len: number): void;
  _endDataMode(chunk: Buffer | false, remainder: Buffer, done: () => void): void;
  /** a chunk passed on whole once the next one shows no dot at a line start across the seam */
  _sluiceHeld?: Buffer;
  /** the data stream `_sluiceHeld` belongs to (a held chunk never crosses into another message) */
  _sluiceHeldFor?: PassThrough;
}

type FeedFn = (this: DataModeState, chunk: Buffer, done: () => void) => void;

const proto = withPrivateMembers<{ _feedDataStream: FeedFn }>(SMTPStream.prototype);

/** smtp-server's own scan, for every chunk that may hold a dot at a line start. */
export const originalFeed: FeedFn = proto._feedDataStream;

const LF_DOT = Buffer.from('\n.');
const DOT = 0x2e;
const LF = 0x0a;
const CR = 0x0d;

/** Passes `buf` on to the data stream (counted as smtp-server counts), without waiting. */
function emit(state: DataModeState, buf: Buffer): void {
  if (!buf.length) return;
  state._countDataBytes(buf.length);
  if (state._dataStream.writable) state._dataStream.write(buf);
}

/**
 * When the line start at `at` (the LF before a dot, `at` >= 1) is the terminator CRLF.CRLF: passes
 * on `buf` up to and with that CRLF in one piece and ends data mode, as smtp-server's loop would
 * on finding it there. (Handing smtp-server the bytes from the CR on made the body's last CRLF a
 * separate 2-byte piece, which the body writer then copied the message's tail onto.)
 */
function endedAt(state: DataModeState, buf: Buffer, at: number, done: () => void): boolean {
  if (at + 3 >= buf.length || buf[at - 1] !== CR || buf[at + 2] !== CR || buf[at + 3] !== LF) return false;
  const last = buf.subarray(0, at + 1);
  state._countDataBytes(last.length);
  state._endDataMode(last, buf.subarray(at + 4), done);
  return true;
}

/** Passes `buf` on and calls `done` when the data stream wants more, as smtp-server does. */
function emitThen(state: DataModeState, buf: Buffer, done: () => void): void {
  state._countDataBytes(buf.length);
  const dataStream = state._dataStream;
  if (!dataStream.writable) return done();
  if (dataStream.write(buf) || dataStream.destroyed) return done();
  const onDrain = () => {
    dataStream.removeListener('drain', onDrain);
    dataStream.removeListener('close', onDrain);
    done();
  };
  dataStream.once('drain', onDrain);
  dataStream.once('close', onDrain);
}

/**
 * Chunks without a dot at a line start are passed on whole, one chunk late: a chunk is held until
 * the next one shows that the seam between them holds no dot at a line start either (the
 * terminator may straddle chunks). smtp-server keeps the last four bytes instead and joins them
 * to the next chunk, a copy of every chunk of every message; a held chunk is a view of the socket
 * read and is passed on as it is.
 */
export const fastFeed: FeedFn = function (this: DataModeState, chunk, done) {
  let held = this._sluiceHeld;
  if (held && this._sluiceHeldFor !== this._dataStream) held = undefined;
  this._sluiceHeld = undefined;
  this._sluiceHeldFor = undefined;

  if (held) {
    if (!chunk.length) {
      this._sluiceHeld = held;
      this._sluiceHeldFor = this._dataStream;
      return done();
    }
    const at = chunk.indexOf(LF_DOT);
    // the seam: the held chunk ends a line and this one starts with a dot
    const seam = held[held.length - 1] === LF && chunk[0] === DOT;
    // a held chunk is always longer than four bytes: should the next seam hold a dot, smtp-server
    // needs the four bytes before it, and they must all be in the held chunk
    if (!seam && at === -1 && chunk.length > 4) {
      this._sluiceHeld = chunk;
      this._sluiceHeldFor = this._dataStream;
      return emitThen(this, held, done);
    }
    if (!seam && at >= 1) {
      // smtp-server's code from the CR before the dot's line start; everything before it is plain
      emit(this, held);
      if (endedAt(this, chunk, at, done)) return;
      emit(this, chunk.subarray(0, at - 1));
      return originalFeed.call(this, chunk.subarray(at - 1), done);
    }
    // a dot's line starts at the seam, or this chunk is too short to hold: on as smtp-server
    // would, with the held chunk's last four bytes kept to be joined to this one
    emit(this, held.subarray(0, held.length - 4));
    this._lastBytes = held.subarray(held.length - 4);
    return fastFeed.call(this, chunk, done);
  }

  if (this._atDataStart && (chunk.length < 3 || chunk[0] === DOT || (this._lastBytes && this._lastBytes.length))) {
    return originalFeed.call(this, chunk, done);
  }
  const last = this._lastBytes;
  if (!(last && last.length) && chunk.length > 4 && chunk.indexOf(LF_DOT, 1) === -1) {
    // nothing passed on yet: the next chunk decides (a held chunk is longer than four bytes, so
    // passing on all but its last four always leaves data start behind, as smtp-server would)
    this._sluiceHeld = chunk;
    this._sluiceHeldFor = this._dataStream;
    return done();
  }
  const all = last && last.length ? Buffer.concat([last, chunk], last.length + chunk.length) : chunk;
  const at = all.indexOf(LF_DOT, 1);
  if (at !== -1) {
    this._lastBytes = false;
    if (at >= all.length - 3) return originalFeed.call(this, all, done);
    if (endedAt(this, all, at, done)) return;
    if (at > 1) emit(this, all.subarray(0, at - 1));
    return originalFeed.call(this, all.subarray(at - 1), done);
  }

  this._lastBytes = all.length < 4 ? all : all.subarray(all.length - 4);
  if (this._lastBytes.length >= all.length) return done();
  emitThen(this, all.subarray(0, all.length - this._lastBytes.length), done);
};

let installed = false;

/**
 * Makes every SMTPStream of this process use fastFeed, when smtp-server is the tested version.
 * `version` stands in for the installed one (tests). True when fastFeed is installed.
 */
export function installFastDataScan(version?: string): boolean {
  if (installed) return proto._feedDataStream === fastFeed;
  installed = true;
  if (!decide('dataScan', version).enabled) return false;
  proto._feedDataStream = fastFeed;
  return true;
}
