/**
 * How `sluice queue …` reaches a running Sluice: its HTTP API, at `--url` or where the app dir's
 * config says the API listens, with the token from that config or SLUICE_API__TOKEN (the variable
 * the server reads). Errors come back as one sentence (the API's own message when it gave one).
 */
import { Readable } from 'node:stream';

export class ApiClientError extends Error {}

export interface ApiTarget {
  url: string;
  token?: string;
}

/** The API's address and token: --url wins; otherwise the app dir's config (which reads SLUICE_… too). */
export async function resolveTarget(opts: { url?: string; dir: string }): Promise<ApiTarget> {
  const envToken = process.env.SLUICE_API__TOKEN || undefined;
  let config: { api: { host: string; port: number; token?: string } } | undefined;
  let problem: string | undefined;
  try {
    const { loadConfig } = await import('../config/load.js');
    config = loadConfig({ appDir: opts.dir }).config;
  } catch (err) {
    problem = (err as { problems?: string[] }).problems?.join('; ') ?? (err as Error).message;
  }
  if (opts.url) return { url: opts.url.replace(/\/+$/, ''), token: config?.api.token ?? envToken };
  if (!config) throw new ApiClientError(`cannot read the config of ${opts.dir} (${problem}); give the API's address with --url`);
  const host = config.api.host === '0.0.0.0' || config.api.host === '::' ? '127.0.0.1' : config.api.host;
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${config.api.port}`, token: config.api.token };
}

export class ApiClient {
  constructor(
    private readonly target: ApiTarget,
    private readonly timeoutMs = 30_000,
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.target.token ? { authorization: `Bearer ${this.target.token}` } : {}), ...extra };
  }

  async send(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, timeoutMs = this.timeoutMs): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(this.target.url + path, {
        method,
        headers: this.headers(body === undefined ? headers : { 'content-type': 'application/json', ...headers }),
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined,
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string; errors?: { code?: string }[] } }).cause;
      const why = cause?.code ?? cause?.errors?.find((e) => e.code)?.code ?? cause?.message ?? (err as Error).message;
      throw new ApiClientError(`cannot reach Sluice's API at ${this.target.url} (${why}); is it running? (--url to name another address)`);
    }
    if (!res.ok) {
      const text = await res.text();
      let message = text.slice(0, 300);
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? message;
      } catch {
        // not JSON: the text as it came
      }
      throw new ApiClientError(`${res.status}: ${message}`);
    }
    return res;
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await (await this.send(method, path, body)).json()) as T;
  }

  /** A bulk action: progress lines as they come (onProgress), then the result. */
  async stream<T>(path: string, body: unknown, onProgress: (p: T) => void): Promise<T> {
    const res = await this.send('POST', path, body, { accept: 'application/x-ndjson' }, 0);
    let buffered = '';
    let result: T | undefined;
    const decoder = new TextDecoder();
    for await (const chunk of Readable.fromWeb(res.body!)) {
      buffered += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffered.slice(0, nl)) as { progress?: T; result?: T; message?: string };
        buffered = buffered.slice(nl + 1);
        if (line.progress) onProgress(line.progress);
        else if (line.result) result = line.result;
        else if (line.message) throw new ApiClientError(line.message);
      }
    }
    if (!result) throw new ApiClientError('the API closed the stream before the result');
    return result;
  }
}
