/**
 * The signature every webhook of Sluice carries when a secret is set:
 * `X-Sluice-Signature: sha256=<hex HMAC-SHA256 of "<X-Sluice-Timestamp>.<body>">`. A receiver
 * recomputes it with the shared secret and checks the timestamp is recent (replays).
 */
import { createHmac } from 'node:crypto';

export function signBody(secret: string, timestamp: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}
