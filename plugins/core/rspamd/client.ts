/**
 * A small typed client for Rspamd's scanner protocol: POST /checkv2 with the message as the body
 * (streamed, chunked) and the envelope in headers; the answer is JSON. There is no maintained npm
 * client, and this is all we need. The answer is checked at the boundary: anything that does not
 * have an action and a score is an error, like no answer at all.
 *
 * Protocol: https://rspamd.com/doc/developers/protocol.html (From, Rcpt, IP, Helo, User,
 * Queue-Id request headers; `action`, `score`, `required_score`, `symbols`, `messages` in reply).
 */
import { Readable } from 'node:stream';

export interface RspamdRequest {
  message: Readable;
  /** envelope sender; '' for the null sender */
  from: string;
  rcpt: readonly string[];
  /** the client's IP address */
  ip?: string;
  helo?: string;
  /** the authenticated user: Rspamd then treats the message as outbound */
  user?: string;
  queueId?: string;
}

export interface RspamdResult {
  /** "no action", "greylist", "add header", "rewrite subject", "soft reject", "reject" */
  action: string;
  score: number;
  requiredScore: number;
  /** names of the symbols that matched, sorted */
  symbols: string[];
  /** the text Rspamd suggests for an SMTP reply, if any */
  smtpMessage?: string;
}

export class RspamdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RspamdError';
  }
}

export class RspamdClient {
  private readonly url: URL;

  constructor(
    baseUrl: string,
    private readonly timeoutMs: number,
  ) {
    this.url = new URL('checkv2', baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  }

  async check(req: RspamdRequest): Promise<RspamdResult> {
    const headers: Record<string, string> = { 'content-type': 'message/rfc822' };
    // header values must stay on one line whatever a client sent
    const one = (v: string) => v.replace(/[\r\n]+/g, ' ').slice(0, 998);
    if (req.from) headers.from = one(req.from);
    // Rspamd reads a comma-separated Rcpt as several recipients
    if (req.rcpt.length) headers.rcpt = one(req.rcpt.join(', '));
    if (req.ip) headers.ip = one(req.ip);
    if (req.helo) headers.helo = one(req.helo);
    if (req.user) headers.user = one(req.user);
    if (req.queueId) headers['queue-id'] = one(req.queueId);
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: 'POST',
        headers,
        body: Readable.toWeb(req.message) as ReadableStream,
        duplex: 'half',
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'error',
      } as RequestInit & { duplex: 'half' });
    } catch (err) {
      req.message.destroy();
      const e = err as Error & { cause?: { code?: string } };
      throw new RspamdError(e.name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : `cannot reach Rspamd: ${e.cause?.code ?? e.message}`);
    }
    let json: unknown;
    try {
      json = await res.json();
    } catch {
      throw new RspamdError(`HTTP ${res.status} without a JSON answer`);
    }
    if (!res.ok) throw new RspamdError(`HTTP ${res.status}: ${JSON.stringify(json).slice(0, 200)}`);
    return parseResult(json);
  }
}

/** The /checkv2 answer, checked. */
export function parseResult(json: unknown): RspamdResult {
  if (typeof json !== 'object' || json === null) throw new RspamdError('the answer is not a JSON object');
  const r = json as Record<string, unknown>;
  if (typeof r.action !== 'string' || typeof r.score !== 'number') throw new RspamdError('the answer has no action or score');
  const symbols = typeof r.symbols === 'object' && r.symbols !== null ? Object.keys(r.symbols).sort() : [];
  const messages = typeof r.messages === 'object' && r.messages !== null ? (r.messages as Record<string, unknown>) : {};
  return {
    action: r.action,
    score: r.score,
    requiredScore: typeof r.required_score === 'number' ? r.required_score : NaN,
    symbols,
    ...(typeof messages.smtp_message === 'string' ? { smtpMessage: messages.smtp_message } : {}),
  };
}
