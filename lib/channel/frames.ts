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

export type Frame = { kind: typeof FRAME_JSON; message: unknown } | { kind: typeof FRAME_BODY; req: number; data: Buffer };

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

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private bytes = 0;

  /** Feeds TCP bytes; returns every frame completed by them. Throws FrameError on bad input. */
  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    const frames: Frame[] = [];
    while (this.bytes >= 4) {
      const head = this.peek(5);
      const length = head.readUInt32BE(0);
      if (length < 1 || length > MAX_FRAME_BYTES) throw new FrameError(`bad frame length ${length}`);
      if (this.bytes < 4 + length) break;
      const frame = this.take(4 + length).subarray(4);
      const kind = frame[0];
      if (kind === FRAME_JSON) {
        let message: unknown;
        try {
          message = JSON.parse(frame.subarray(1).toString('utf8'));
        } catch {
          throw new FrameError('bad JSON frame');
        }
        frames.push({ kind: FRAME_JSON, message });
      } else if (kind === FRAME_BODY) {
        if (frame.length < 5) throw new FrameError('short body frame');
        frames.push({ kind: FRAME_BODY, req: frame.readUInt32BE(1), data: frame.subarray(5) });
      } else {
        throw new FrameError(`unknown frame kind ${kind}`);
      }
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n || this.chunks.length === 1) return this.chunks[0]!;
    const all = Buffer.concat(this.chunks, this.bytes);
    this.chunks = [all];
    return all;
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.bytes);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.bytes = rest.length;
    return out;
  }
}
