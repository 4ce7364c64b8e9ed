/**
 * Large encoded attachment content for the composer, decoded a piece per event-loop turn.
 *
 * Given a 20 MB attachment as one base64 string, the composer decodes it whole and base64-encodes
 * the result for the message in one synchronous step, which held the master's event loop for
 * hundreds of milliseconds (SMTP sessions, the API and delivery reports with it). As a stream of
 * pieces, the composer's own encoder works one piece at a time, between turns.
 *
 * Only content whose decoded bytes are the same in pieces as whole is given this way: valid
 * base64 (whitespace allowed, padding only at the end) or hex of even length. Anything else is
 * left to the composer as it was, so malformed content decodes exactly as before.
 */
import { Readable } from 'node:stream';

/** Content this long or longer is decoded in pieces (shorter content costs under a millisecond). */
export const PIECEWISE_MIN_CHARS = 256 * 1024;
const PIECE_CHARS = 256 * 1024;

const BASE64 = /^[A-Za-z0-9+/\s]*(?:=\s*){0,2}$/;
const HEX = /^[0-9a-fA-F]*$/;

/** A stream of the decoded bytes of `text`, or undefined when it must be decoded whole. */
export function piecewiseDecoded(text: string, encoding: string): Readable | undefined {
  const unit = encoding === 'base64' ? 4 : encoding === 'hex' ? 2 : 0;
  if (!unit || text.length < PIECEWISE_MIN_CHARS) return undefined;
  if (unit === 4 ? !BASE64.test(text) : !HEX.test(text) || text.length % 2 !== 0) return undefined;
  const kind = encoding as 'base64' | 'hex';
  let at = 0;
  // characters of an encoding unit cut by a piece's end, carried into the next piece
  let carry = '';
  return new Readable({
    read() {
      setImmediate(() => {
        if (at >= text.length) {
          if (carry) this.push(Buffer.from(carry, kind));
          carry = '';
          this.push(null);
          return;
        }
        const slice = text.slice(at, at + PIECE_CHARS);
        const piece = carry + (unit === 4 ? slice.replace(/\s+/g, '') : slice);
        at += PIECE_CHARS;
        const whole = piece.length - (piece.length % unit);
        carry = piece.slice(whole);
        this.push(Buffer.from(piece.slice(0, whole), kind));
      });
    },
  });
}
