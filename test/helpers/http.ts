/**
 * A small HTTP client for API tests: JSON in, status and parsed JSON out, plus a raw variant
 * for bodies that are not JSON at all (broken JSON, nesting bombs, wrong content types).
 */
export type Json = Record<string, unknown>;

export interface ApiReply {
  status: number;
  body: Json;
  /** wall time from the request to the parsed reply */
  ms: number;
}

export async function request(
  url: string,
  init: { method?: string; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<ApiReply> {
  const started = performance.now();
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: init.headers,
    body: init.body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let body: Json;
  try {
    body = JSON.parse(text) as Json;
  } catch {
    body = { _raw: text };
  }
  return { status: res.status, body, ms: performance.now() - started };
}

/** POST a value as JSON. */
export function postJson(url: string, value: unknown, headers: Record<string, string> = {}): Promise<ApiReply> {
  return request(url, { method: 'POST', body: JSON.stringify(value), headers: { 'content-type': 'application/json', ...headers } });
}

/** The shape of a successful POST /send reply. */
export interface SendReply {
  id: string;
  messageId: string;
  recipients: { recipient: string; seq: number; zone: string }[];
}

/** An error reply is JSON with exactly the public fields, never a stack. */
export function isErrorShape(body: Json): boolean {
  return typeof body.error === 'string' && typeof body.message === 'string' && body.stack === undefined;
}
