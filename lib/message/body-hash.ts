/**
 * The DKIM relaxed body hash (RFC 6376 §3.4.4, sha256), computed chunk by chunk as the body
 * streams into the queue, so signing at delivery never reads the body twice. nodemailer's
 * canonicaliser does the work; we drive it directly instead of as a stream to save a copy.
 */
import RelaxedBody from 'nodemailer/lib/dkim/relaxed-body';

export class BodyHasher {
  private readonly relaxed = new RelaxedBody({ hashAlgo: 'sha256' });

  update(chunk: Buffer): void {
    if (chunk.length) this.relaxed.updateHash(chunk);
  }

  /** base64 digest, as it goes into the bh= tag */
  digest(): string {
    let hash = '';
    this.relaxed.once('hash', (value: string) => (hash = value));
    // _flush finishes the canonical form (trailing empty lines, final CRLF) and emits 'hash'
    // synchronously
    (this.relaxed as unknown as { _flush(cb: () => void): void })._flush(() => undefined);
    return hash;
  }
}
