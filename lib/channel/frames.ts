/**
 * Framing for the master–worker data channel over TCP.
 *
 *   frame   = u32 length (big-endian, counts kind + payload) · u8 kind · payload
 *   kind 1  = JSON message (UTF-8)
 *   kind 2  = body bytes: u32 request id · raw bytes
 *
 * The decoder takes TCP chunks as they come (split or coalesced) and yields whole frames. A
 * frame over the size cap is a protocol error: the connection is closed, never buffered.
 */
export const FRAME_JSON = 1;
export const FRAME_BODY = 2;
/** Body chunks are ≤ the queue's chunk size (≤ 16 MB); headers travel in JSON (≤ 16 MB). */
export const MAX_FRAME_BYTES = 40 * 1024 * 1024;

/** A body frame's bytes come as views of the TCP reads they arrived in (one or more, in order). */
export type Frame = { kind: typeof FRAME_JSON; message: unknown } | { kind: typeof FRAME_BODY; req: number; data: Buffer[] };

export class FrameError extends Error {}

export function encodeJson(message: unknown): Buffer {
  const payload = Buffer.from(JSON.stringify(message));
  const out = Buffer.allocUnsafe(5 + payload.length);
  out.writeUInt32BE(payload.length + 1, 0);
  out[4] = FRAME_JSON;
  payload.copy(out, 5);
  return out;
}

export function encodeBody(req: number, data: Buffer): Buffer[] {
  const head = Buffer.allocUnsafe(9);
  head.writeUInt32BE(data.length + 5, 0);
  head[4] = FRAME_BODY;
  head.writeUInt32BE(req >>> 0, 5);
  return [head, data];
}

/** length prefix, kind, and a body frame's request id */
const BODY_HEAD_BYTES = 9;

/**
 * Body payloads are not joined: a 100 KB body arrives in several TCP reads, and joining them was
 * the worker's largest allocation (a copy of every body, left to V8's major collections). JSON
 * frames are joined (they are small and parsed at once).
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private bytes = 0;
  /** the largest frame taken (the server lowers it until the peer has said hello) */
  maxFrameBytes = MAX_FRAME_BYTES;

  /** Feeds TCP bytes; returns every frame completed by them. Throws FrameError on bad input. */
  push(chunk: Buffer): Frame[] {
    if (chunk.length) {
      this.chunks.push(chunk);
      this.bytes += chunk.length;
    }
    const frames: Frame[] = [];
    while (this.bytes >= 4) {
      const head = this.peek(Math.min(this.bytes, BODY_HEAD_BYTES));
      const length = head.readUInt32BE(0);
      if (length < 1 || length > this.maxFrameBytes) throw new FrameError(`bad frame length ${length}`);
      if (this.bytes < 4 + length) break;
      const kind = head[4];
      if (kind === FRAME_JSON) {
        const frame = this.take(4 + length);
        const payload = frame.length === 1 ? frame[0]!.subarray(5) : Buffer.concat(frame).subarray(5);
        let message: unknown;
        try {
          message = JSON.parse(payload.toString('utf8'));
        } catch {
          throw new FrameError('bad JSON frame');
        }
        frames.push({ kind: FRAME_JSON, message });
      } else if (kind === FRAME_BODY) {
        if (length < 5) throw new FrameError('short body frame');
        const req = head.readUInt32BE(5);
        this.take(BODY_HEAD_BYTES);
        frames.push({ kind: FRAME_BODY, req, data: this.take(length - 5) });
      } else {
        throw new FrameError(`unknown frame kind ${kind}`);
      }
    }
    return frames;
  }

  /** The first `n` buffered bytes in one buffer (a small copy when they span reads). */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first;
    return Buffer.concat(this.take(n, false), n);
  }

  /** The next `n` buffered bytes as views, in order; `consume` false leaves them buffered. */
  private take(n: number, consume = true): Buffer[] {
    const out: Buffer[] = [];
    let i = 0;
    let left = n;
    while (left > 0) {
      const c = this.chunks[i]!;
      if (c.length <= left) {
        out.push(c);
        left -= c.length;
        i++;
      } else {
        out.push(c.subarray(0, left));
        if (consume) this.chunks[i] = c.subarray(left);
        left = 0;
      }
    }
    if (consume) {
      this.chunks.splice(0, i);
      this.bytes -= n;
    }
    return out;
  }
}
