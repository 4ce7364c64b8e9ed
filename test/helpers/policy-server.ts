/**
 * An HTTPS server on 127.0.0.1, port 0, standing in for the MTA-STS policy hosts of several test
 * domains at once: it answers by Host header, with what the test set for that host (status, body,
 * content type, a redirect), and counts requests. Its certificate is the test's to choose.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';

export interface PolicyReply {
  status?: number;
  body?: string;
  contentType?: string;
  location?: string;
}

export interface PolicyServer {
  port: number;
  /** requests per host name */
  hits: Map<string, number>;
  set(host: string, reply: PolicyReply | undefined): void;
  stop(): Promise<void>;
}

export async function startPolicyServer(tls: { key: Buffer; cert: Buffer }): Promise<PolicyServer> {
  const replies = new Map<string, PolicyReply>();
  const hits = new Map<string, number>();
  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const host = String(req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
    hits.set(host, (hits.get(host) ?? 0) + 1);
    const reply = replies.get(host);
    if (!reply || req.url !== '/.well-known/mta-sts.txt') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(reply.status ?? 200, { 'content-type': reply.contentType ?? 'text/plain', ...(reply.location ? { location: reply.location } : {}) });
    res.end(reply.body ?? '');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    hits,
    set(host, reply) {
      if (reply) replies.set(host.toLowerCase(), reply);
      else replies.delete(host.toLowerCase());
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A policy file's text. */
export function policyText(mode: 'enforce' | 'testing' | 'none', mx: string[], maxAgeS = 86400): string {
  return ['version: STSv1', `mode: ${mode}`, ...mx.map((m) => `mx: ${m}`), `max_age: ${maxAgeS}`, ''].join('\r\n');
}
