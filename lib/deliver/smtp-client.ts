/**
 * One SMTP transaction to one address of one destination host, on nodemailer's SMTPConnection:
 * connect (from the zone's local address, with its HELO name), STARTTLS by policy, MAIL/RCPT for
 * every recipient, DATA, QUIT. Resolves with per-recipient answers; rejects with nodemailer's
 * structured error (code, responseCode, response, command) — plus `connected` (did we reach the
 * server's greeting?) and `dataSent` (had the whole message been handed over when it failed?).
 */
import type { Readable } from 'node:stream';
import SMTPConnection from 'nodemailer/lib/smtp-connection';

export type TlsPolicy = 'none' | 'may' | 'encrypt' | 'verify';

export interface TransactionOptions {
  address: string;
  port: number;
  /** the MX name, for SNI and certificate checks */
  hostname: string;
  localAddress?: string;
  heloName: string;
  tls: TlsPolicy;
  connectTimeoutMs: number;
  greetingTimeoutMs: number;
  socketTimeoutMs: number;
}

export interface TransactionResult {
  accepted: string[];
  rejected: { recipient: string; responseCode?: number; response: string }[];
  response: string;
  tls: boolean;
}

export interface TransactionError extends Error {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  connected: boolean;
  dataSent: boolean;
  tls: boolean;
}

export function sendTransaction(opts: TransactionOptions, envelope: { from: string; to: string[]; size: number }, message: Readable, dataSent: () => boolean): Promise<TransactionResult> {
  const conn = new SMTPConnection({
    host: opts.address,
    port: opts.port,
    servername: opts.hostname,
    name: opts.heloName,
    localAddress: opts.localAddress,
    ignoreTLS: opts.tls === 'none',
    requireTLS: opts.tls === 'encrypt' || opts.tls === 'verify',
    tls: { rejectUnauthorized: opts.tls === 'verify', servername: opts.hostname, minVersion: 'TLSv1.2' },
    connectionTimeout: opts.connectTimeoutMs,
    greetingTimeout: opts.greetingTimeoutMs,
    socketTimeout: opts.socketTimeoutMs,
    allowInternalNetworkInterfaces: true,
    logger: false,
  });
  let connected = false;
  return new Promise<TransactionResult>((resolve, reject) => {
    let settled = false;
    const fail = (err: Error & { code?: string; responseCode?: number; response?: string; command?: string }) => {
      if (settled) return;
      settled = true;
      conn.close();
      message.destroy();
      reject(Object.assign(err, { connected, dataSent: dataSent(), tls: conn.secure }) as TransactionError);
    };
    conn.once('error', fail);
    conn.once('end', () => fail(Object.assign(new Error('Connection closed unexpectedly'), { code: 'ECONNECTION' })));
    conn.connect(() => {
      connected = true;
      conn.send({ from: envelope.from, to: envelope.to, size: envelope.size }, message, (err, info) => {
        if (err) return fail(err);
        if (settled) return;
        settled = true;
        const errors = info.rejectedErrors ?? [];
        const rejected = info.rejected.map((recipient, i) => {
          const e = errors[i] as { responseCode?: number; response?: string; message?: string } | undefined;
          return { recipient, responseCode: e?.responseCode, response: e?.response ?? e?.message ?? 'rejected' };
        });
        const tls = conn.secure;
        conn.quit();
        resolve({ accepted: info.accepted, rejected, response: info.response, tls });
      });
    });
  });
}
