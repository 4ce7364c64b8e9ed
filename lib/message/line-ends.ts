/**
 * Normalises line ends to CRLF as bytes stream through: a bare CR or a bare LF becomes CRLF.
 * Stored messages therefore contain no stray CR/LF, so nothing we later send can smuggle a
 * second message past a receiver (Postfix's cleanup_replace_stray_cr_lf), and the DKIM body
 * hash is made over exactly the bytes that go out.
 *
 * NUL bytes are dropped too: RFC 5322 allows none, and nodemailer sends "\r\n\0.\r\n" as it is,
 * which a receiver that discards NULs would read as the end of the data (smuggling).
 */
const NUL = 0x00;
const CR = 0x0d;
const LF = 0x0a;

export interface LineEndNormalizer {
  /** Normalises one chunk; a CR at its end is held until the next chunk shows what follows. */
  push(chunk: Buffer): Buffer;
  /** Whatever is held at the end of the stream. */
  end(): Buffer;
}

export function createLineEndNormalizer(): LineEndNormalizer {
  let heldCr = false;
  return {
    push(chunk) {
      if (!chunk.length) return chunk;
      if (!heldCr && isClean(chunk)) return chunk;
      const out = Buffer.allocUnsafe(chunk.length * 2 + 2);
      let o = 0;
      let i = 0;
      if (heldCr) {
        out[o++] = CR;
        out[o++] = LF;
        if (chunk[0] === LF) i = 1;
        heldCr = false;
      }
      for (; i < chunk.length; i++) {
        const c = chunk[i]!;
        if (c === CR) {
          if (i + 1 === chunk.length) {
            heldCr = true;
            break;
          }
          out[o++] = CR;
          out[o++] = LF;
          if (chunk[i + 1] === LF) i++;
        } else if (c === LF) {
          out[o++] = CR;
          out[o++] = LF;
        } else if (c !== NUL) {
          out[o++] = c;
        }
      }
      return out.subarray(0, o);
    },
    end() {
      if (!heldCr) return Buffer.alloc(0);
      heldCr = false;
      return Buffer.from('\r\n');
    },
  };
}

/** True when every CR is followed by LF and every LF preceded by CR, with no CR at the end and no NUL. */
function isClean(chunk: Buffer): boolean {
  if (chunk.includes(NUL)) return false;
  let pos = chunk.indexOf(LF);
  let crPos = chunk.indexOf(CR);
  while (pos !== -1 || crPos !== -1) {
    if (crPos === -1 || (pos !== -1 && pos < crPos)) return false; // LF without CR before it
    if (chunk[crPos + 1] !== LF) return false; // CR not followed by LF (or at the end)
    pos = chunk.indexOf(LF, crPos + 2);
    crPos = chunk.indexOf(CR, crPos + 2);
  }
  return true;
}
