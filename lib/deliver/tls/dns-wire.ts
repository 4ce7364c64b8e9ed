/**
 * A small DNS client on the wire (RFC 1035, EDNS0 of RFC 6891), for what node's dns module cannot
 * do on Node 20: ask for any record type (TLSA, type 52) and read the AD flag of the reply.
 * DANE (lib/deliver/tls/dane.ts) needs both.
 *
 * Sluice does not validate DNSSEC itself: like Postfix with smtp_dns_support_level=dane, it trusts
 * the resolver it is configured with (`[dns] servers`, else the system's) to validate, and treats an
 * answer as secure only when that resolver sets AD. So queries go with RD, AD (RFC 6840 §5.7: "tell
 * me whether you validated") and the EDNS0 DO bit set. The path to the resolver must be trusted
 * (loopback, or a local network), as for any resolver whose AD bit one believes.
 *
 * Bounds: every query has one deadline for all its tries (round robin over the servers); a reply
 * must carry our id and question and come from the server asked; a truncated UDP reply is asked
 * again over TCP (at most 64 KiB, the DNS limit). SERVFAIL and REFUSED move on to the next server
 * and are returned when no server did better; NOERROR and NXDOMAIN end the query.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { getServers } from 'node:dns';
import { randomInt } from 'node:crypto';

export const DNS_TYPE = { A: 1, CNAME: 5, TXT: 16, AAAA: 28, OPT: 41, TLSA: 52 } as const;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export interface WireRecord {
  /** owner name, lower case, without the trailing dot */
  name: string;
  type: number;
  ttlS: number;
  data: Buffer;
}

export interface WireAnswer {
  rcode: number;
  /** AD: the resolver validated the answer with DNSSEC */
  authenticated: boolean;
  answers: WireRecord[];
}

export interface WireOptions {
  /** "127.0.0.1:5353", "192.0.2.53", "[::1]:53", "::1"; default: the system's (dns.getServers()) */
  servers?: readonly string[];
  /** one deadline for the whole query, all tries included (default 10 s) */
  timeoutMs?: number;
  /** rounds over the server list (default 2) */
  tries?: number;
}

/** The query could not be answered at all (timeouts, unreachable servers, junk replies). */
export class DnsWireError extends Error {
  constructor(
    message: string,
    readonly code: 'ETIMEOUT' | 'ECONNREFUSED' | 'EBADRESP' | 'ENOSERVERS',
  ) {
    super(message);
    this.name = 'DnsWireError';
  }
}

interface Server {
  address: string;
  port: number;
  family: 4 | 6;
}

/** what we offer in EDNS0: the size that avoids IP fragmentation (DNS flag day 2020) */
const EDNS_UDP_SIZE = 1232;
const MAX_TCP_BYTES = 65_535;
const MAX_CNAME_HOPS = 8;

export class WireResolver {
  private readonly servers: Server[];
  private readonly timeoutMs: number;
  private readonly tries: number;

  constructor(opts: WireOptions = {}) {
    const list = opts.servers?.length ? opts.servers : getServers();
    this.servers = list.map(parseServer).filter((s): s is Server => s !== undefined);
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.tries = Math.max(1, opts.tries ?? 2);
  }

  async query(name: string, type: number): Promise<WireAnswer> {
    if (!this.servers.length) throw new DnsWireError('no DNS server configured', 'ENOSERVERS');
    const qname = name.toLowerCase().replace(/\.$/, '');
    const deadline = Date.now() + this.timeoutMs;
    const attempts = this.servers.length * this.tries;
    const perTryMs = Math.max(200, Math.floor(this.timeoutMs / attempts));
    let fallback: WireAnswer | undefined;
    let lastError: DnsWireError | undefined;
    for (let i = 0; i < attempts; i++) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const server = this.servers[i % this.servers.length]!;
      try {
        const answer = await this.ask(server, qname, type, Math.min(left, perTryMs), deadline);
        if (answer.rcode === RCODE.NOERROR || answer.rcode === RCODE.NXDOMAIN) return answer;
        fallback = answer; // SERVFAIL, REFUSED…: another server may do better
      } catch (err) {
        lastError = err instanceof DnsWireError ? err : new DnsWireError((err as Error).message, 'ECONNREFUSED');
      }
    }
    if (fallback) return fallback;
    throw lastError ?? new DnsWireError(`DNS query for ${qname} timed out after ${this.timeoutMs} ms`, 'ETIMEOUT');
  }

  /** One UDP exchange with one server; over TCP again when the reply was truncated. */
  private async ask(server: Server, qname: string, type: number, waitMs: number, deadline: number): Promise<WireAnswer> {
    const id = randomInt(0, 0x10000);
    const packet = buildQuery(id, qname, type);
    const reply = await udpExchange(server, packet, waitMs, (msg) => isReplyTo(msg, id, qname, type));
    const truncated = (reply.readUInt16BE(2) & 0x0200) !== 0;
    if (!truncated) return parseReply(reply);
    const tcpMs = deadline - Date.now();
    if (tcpMs <= 0) throw new DnsWireError(`DNS query for ${qname} timed out`, 'ETIMEOUT');
    const tcpId = randomInt(0, 0x10000);
    const full = await tcpExchange(server, buildQuery(tcpId, qname, type), tcpMs);
    if (!isReplyTo(full, tcpId, qname, type)) throw new DnsWireError(`DNS reply over TCP for ${qname} does not match the query`, 'EBADRESP');
    return parseReply(full);
  }
}

/** Records of `type` for `qname`, following a CNAME chain inside the answer section. */
export function recordsFor(answer: WireAnswer, qname: string, type: number): WireRecord[] {
  let name = qname.toLowerCase().replace(/\.$/, '');
  for (let hop = 0; hop <= MAX_CNAME_HOPS; hop++) {
    const direct = answer.answers.filter((r) => r.name === name && r.type === type);
    if (direct.length) return direct;
    const alias = answer.answers.find((r) => r.name === name && r.type === DNS_TYPE.CNAME);
    if (!alias) return [];
    name = readName(alias.data, 0, alias.data)[0];
  }
  return [];
}

export function parseServer(spec: string): Server | undefined {
  const s = spec.trim();
  let address: string;
  let port = 53;
  const bracket = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(s);
  if (bracket) {
    address = bracket[1]!;
    if (bracket[2]) port = Number(bracket[2]);
  } else if (net.isIPv6(s)) {
    address = s;
  } else {
    const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(s);
    if (!m) return undefined;
    address = m[1]!;
    if (m[2]) port = Number(m[2]);
  }
  const family = net.isIP(address);
  if (!family || port < 1 || port > 65535) return undefined;
  return { address, port, family: family as 4 | 6 };
}

function buildQuery(id: number, qname: string, type: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100 | 0x0020, 2); // RD, AD
  header.writeUInt16BE(1, 4); // one question
  header.writeUInt16BE(1, 10); // one additional: the OPT record
  const question = Buffer.alloc(4);
  question.writeUInt16BE(type, 0);
  question.writeUInt16BE(1, 2); // class IN
  const opt = Buffer.alloc(11);
  opt.writeUInt8(0, 0); // root name
  opt.writeUInt16BE(DNS_TYPE.OPT, 1);
  opt.writeUInt16BE(EDNS_UDP_SIZE, 3);
  opt.writeUInt32BE(0x00008000, 5); // extended rcode 0, version 0, DO
  opt.writeUInt16BE(0, 9);
  return Buffer.concat([header, encodeName(qname), question, opt]);
}

function encodeName(name: string): Buffer {
  const parts: Buffer[] = [];
  for (const label of name.split('.').filter((l) => l.length > 0)) {
    const bytes = Buffer.from(label, 'ascii');
    if (bytes.length > 63) throw new DnsWireError(`DNS label too long in ${name}`, 'EBADRESP');
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  const out = Buffer.concat(parts);
  if (out.length > 255) throw new DnsWireError(`DNS name too long: ${name.slice(0, 64)}…`, 'EBADRESP');
  return out;
}

/** A reply to our query: our id, QR set, the same question. Anything else is ignored. */
function isReplyTo(msg: Buffer, id: number, qname: string, type: number): boolean {
  try {
    if (msg.length < 12 || msg.readUInt16BE(0) !== id) return false;
    const flags = msg.readUInt16BE(2);
    if (!(flags & 0x8000) || ((flags >> 11) & 0xf) !== 0) return false;
    if (msg.readUInt16BE(4) !== 1) return false;
    const [name, end] = readName(msg, 12, msg);
    return name === qname && msg.readUInt16BE(end) === type && msg.readUInt16BE(end + 2) === 1;
  } catch {
    return false;
  }
}

function parseReply(msg: Buffer): WireAnswer {
  try {
    const flags = msg.readUInt16BE(2);
    const qd = msg.readUInt16BE(4);
    const an = msg.readUInt16BE(6);
    let pos = 12;
    for (let i = 0; i < qd; i++) pos = readName(msg, pos, msg)[1] + 4;
    const answers: WireRecord[] = [];
    for (let i = 0; i < an; i++) {
      const [name, after] = readName(msg, pos, msg);
      const type = msg.readUInt16BE(after);
      const ttlS = msg.readUInt32BE(after + 4);
      const length = msg.readUInt16BE(after + 8);
      const start = after + 10;
      if (start + length > msg.length) throw new RangeError('record beyond the end');
      // names inside RDATA (a CNAME target) may point back into the message: decode them here
      const data = type === DNS_TYPE.CNAME ? encodeName(readName(msg, start, msg)[0]) : Buffer.from(msg.subarray(start, start + length));
      answers.push({ name, type, ttlS, data });
      pos = start + length;
    }
    return { rcode: flags & 0xf, authenticated: (flags & 0x0020) !== 0, answers };
  } catch (err) {
    if (err instanceof DnsWireError) throw err;
    throw new DnsWireError(`malformed DNS reply (${(err as Error).message})`, 'EBADRESP');
  }
}

/** A (possibly compressed) name at `offset` of `buf`; pointers resolve in `msg`. */
function readName(buf: Buffer, offset: number, msg: Buffer): [string, number] {
  const labels: string[] = [];
  let src = buf;
  let pos = offset;
  let end = -1;
  let length = 0;
  for (let hops = 0; hops < 128; hops++) {
    const len = src.readUInt8(pos);
    if (len === 0) return [labels.join('.').toLowerCase(), end === -1 ? pos + 1 : end];
    if ((len & 0xc0) === 0xc0) {
      if (end === -1) end = pos + 2;
      pos = src.readUInt16BE(pos) & 0x3fff;
      src = msg;
      continue;
    }
    if (len > 63) throw new RangeError('bad label length');
    if (pos + 1 + len > src.length) throw new RangeError('label beyond the end');
    length += len + 1;
    if (length > 255) throw new RangeError('name too long');
    labels.push(src.toString('latin1', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  throw new RangeError('name compression loops');
}

function udpExchange(server: Server, packet: Buffer, waitMs: number, accept: (msg: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(server.family === 6 ? 'udp6' : 'udp4');
    let done = false;
    const finish = (err: Error | undefined, msg?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve(msg!);
    };
    const timer = setTimeout(() => finish(new DnsWireError(`no DNS reply from ${server.address}:${server.port} within ${waitMs} ms`, 'ETIMEOUT')), waitMs);
    socket.on('error', (err) => finish(new DnsWireError(`DNS server ${server.address}:${server.port}: ${err.message}`, 'ECONNREFUSED')));
    socket.on('message', (msg, rinfo) => {
      // a reply from elsewhere, or not to this query: spoofing or a late answer; keep waiting
      if (rinfo.address !== server.address || rinfo.port !== server.port || !accept(msg)) return;
      finish(undefined, msg);
    });
    socket.send(packet, server.port, server.address, (err) => {
      if (err) finish(new DnsWireError(`DNS server ${server.address}:${server.port}: ${err.message}`, 'ECONNREFUSED'));
    });
  });
}

function tcpExchange(server: Server, packet: Buffer, waitMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: server.address, port: server.port });
    const chunks: Buffer[] = [];
    let received = 0;
    let done = false;
    const finish = (err: Error | undefined, msg?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(msg!);
    };
    const timer = setTimeout(() => finish(new DnsWireError(`no DNS reply over TCP from ${server.address}:${server.port} within ${waitMs} ms`, 'ETIMEOUT')), waitMs);
    socket.on('error', (err) => finish(new DnsWireError(`DNS server ${server.address}:${server.port} over TCP: ${err.message}`, 'ECONNREFUSED')));
    socket.on('connect', () => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(packet.length);
      socket.write(Buffer.concat([length, packet]));
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received > MAX_TCP_BYTES + 2) return finish(new DnsWireError('DNS reply over TCP too long', 'EBADRESP'));
      const all = Buffer.concat(chunks);
      if (all.length >= 2 && all.length >= 2 + all.readUInt16BE(0)) finish(undefined, all.subarray(2, 2 + all.readUInt16BE(0)));
    });
    socket.on('end', () => finish(new DnsWireError('DNS server closed the TCP connection before a whole reply', 'EBADRESP')));
  });
}
