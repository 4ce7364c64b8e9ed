/**
 * TOP's cut of a message (RFC 1939 §7): the header block, the empty line after it, then the
 * first `bodyLines` lines of the body. It reads the stored chunks only as far as the cut and
 * stops the reading there; a message without a body is given whole.
 *
 * Lines end at LF (a CR before it belongs to the line end), as the header/body split of any
 * mail reader: the empty line is LF or CRLF at the start of a line.
 */

const LF = 0x0a;
const CR = 0x0d;

export async function* topOf(chunks: AsyncIterable<Buffer>, bodyLines: number): AsyncGenerator<Buffer> {
  let inHeader = true;
  let left = bodyLines;
  /** bytes of the current line before this chunk */
  let lineBytes = 0;
  /** the last byte of the previous chunk */
  let lastByte = -1;
  for await (const chunk of chunks) {
    let at = 0;
    let cut = -1;
    while (at < chunk.length) {
      const lf = chunk.indexOf(LF, at);
      if (lf === -1) {
        lineBytes += chunk.length - at;
        break;
      }
      const length = lineBytes + lf - at;
      const before = lf > 0 ? chunk[lf - 1] : lastByte;
      const empty = length === 0 || (length === 1 && before === CR);
      lineBytes = 0;
      at = lf + 1;
      if (inHeader) {
        if (!empty) continue;
        inHeader = false;
        if (left === 0) cut = at;
      } else if (--left === 0) {
        cut = at;
      }
      if (cut !== -1) break;
    }
    if (cut !== -1) {
      yield chunk.subarray(0, cut);
      return;
    }
    if (chunk.length) lastByte = chunk[chunk.length - 1]!;
    yield chunk;
  }
}
