/**
 * A tiny authoritative DNS server for tests: UDP on 127.0.0.1, port 0, a zone given as a plain
 * object and changeable at run time. It answers A, AAAA, MX, TXT, TLSA and CNAME (one level
 * followed, as a real server puts the target's records beside the CNAME), and NXDOMAIN for names
 * it does not know. A name can instead be a fault: 'NXDOMAIN', 'SERVFAIL', 'REFUSED', or 'DROP'
 * (no answer at all, so the client times out).
 *
 * DNSSEC is played, not done: a name marked `secure: true` is answered with the AD flag set, as a
 * validating resolver would after checking its signatures (DANE trusts that flag, nothing more).
 * `{ tcp: true }` also listens on TCP on the same port, for clients that retry a truncated reply.
 *
 *   const dns = await startDnsServer({
 *     'a.test': { MX: [{ priority: 10, exchange: 'mx1.a.test' }] },
 *     'mx1.a.test': { A: ['127.0.0.1'] },
 *     'gone.test': 'NXDOMAIN', 'broken.test': 'SERVFAIL', 'slow.test': 'DROP',
 *   });
 *   new Resolver().setServers([dns.address]);   // '127.0.0.1:PORT'
 *
 * The wire format (RFC 1035 §4) is written here by hand: only the few record types above, no
 * compression in answers. An answer that would not fit the client's UDP size is sent truncated
 * (TC set, no records), as RFC 1035 says; without `tcp` keep test zones small. Every query is recorded in `queries` so a test can assert that DNS was (not) asked.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import ipaddr from 'ipaddr.js';

export interface MxRecord {
  priority: number;
  /** Target host name; '.' (or '') is the null MX of RFC 7505. */
  exchange: string;
}

export interface NameRecords {
  A?: string[];
  AAAA?: string[];
  MX?: MxRecord[];
  TXT?: string[];
  CNAME?: string;
  /** DANE records (RFC 6698): certificate usage, selector, matching type, data in hex */
  TLSA?: TlsaData[];
  /** answer with AD set: "validated", as a validating resolver says it */
  secure?: boolean;
  /** TTL of every record of this name, seconds (default 60). */
  ttl?: number;
}

export interface TlsaData {
  usage: number;
  selector: number;
  matching: number;
  data: string;
}

export type Fault = 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED' | 'DROP';
export type ZoneEntry = NameRecords | Fault;
export type Zone = Record<string, ZoneEntry>;

export interface DnsQuery {
  name: string;
  type: string;
  at: number;
}

export interface TestDnsServer {
  /** 'address:port', ready for Resolver.setServers(). */
  readonly address: string;
  readonly port: number;
  /** Every query received, oldest first. */
  readonly queries: DnsQuery[];
  /** Adds or replaces a name (undefined removes it: NXDOMAIN from then on). */
  set(name: string, entry: ZoneEntry | undefined): void;
  stop(): Promise<void>;
}

const TYPE = { A: 1, CNAME: 5, MX: 15, TXT: 16, AAAA: 28, OPT: 41, TLSA: 52 } as const;
const TYPE_NAME = new Map<number, string>(Object.entries(TYPE).map(([k, v]) => [v, k]));
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const CLASS_IN = 1;
const DEFAULT_TTL_S = 60;
/** RFC 1035's UDP limit when the query carries no EDNS OPT record. */
const PLAIN_UDP_MAX = 512;

export async function startDnsServer(initial: Zone = {}, opts: { tcp?: boolean } = {}): Promise<TestDnsServer> {
  const zone = new Map<string, ZoneEntry>();
  const key = (name: string) => name.toLowerCase().replace(/\.$/, '');
  for (const [name, entry] of Object.entries(initial)) zone.set(key(name), entry);
  const queries: DnsQuery[] = [];
  const reply = (msg: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined => {
    try {
      return answer(msg, transport, (q) => {
        queries.push({ name: q.name, type: TYPE_NAME.get(q.type) ?? String(q.type), at: Date.now() });
        return zone.get(key(q.name));
      }, (name) => zone.get(key(name)));
    } catch {
      return undefined; // unparsable junk: say nothing, like a real server under attack
    }
  };

  // TCP wants the same port as UDP: take a UDP port, then try TCP on it (again if it is taken)
  for (let attempt = 0; ; attempt++) {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (msg, rinfo) => {
      const out = reply(msg, 'udp');
      if (out) socket.send(out, rinfo.port, rinfo.address);
    });
    // A send to a client that went away gives ECONNREFUSED on some kernels; never crash a test.
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const { port } = socket.address();
    let tcp: net.Server | undefined;
    if (opts.tcp) {
      tcp = net.createServer((conn) => serveTcp(conn, (msg) => reply(msg, 'tcp')));
      const listening = await new Promise<boolean>((resolve) => {
        tcp!.once('error', () => resolve(false));
        tcp!.listen(port, '127.0.0.1', () => resolve(true));
      });
      if (!listening) {
        await new Promise<void>((resolve) => socket.close(() => resolve()));
        if (attempt < 20) continue;
        throw new Error('dns-server: no port free for both UDP and TCP');
      }
    }
    const server = tcp;
    return {
      address: `127.0.0.1:${port}`,
      port,
      queries,
      set(name, entry) {
        if (entry === undefined) zone.delete(key(name));
        else zone.set(key(name), entry);
      },
      stop: async () => {
        await new Promise<void>((resolve) => socket.close(() => resolve()));
        if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }
}

/** DNS over TCP: each message with a two-byte length before it (RFC 1035 §4.2.2). */
function serveTcp(conn: net.Socket, reply: (msg: Buffer) => Buffer | undefined): void {
  let buffered = Buffer.alloc(0);
  conn.on('error', () => undefined);
  conn.setTimeout(5000, () => conn.destroy());
  conn.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
      const msg = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
      buffered = buffered.subarray(2 + msg.length);
      const out = reply(msg);
      if (!out) continue;
      const length = Buffer.alloc(2);
      length.writeUInt16BE(out.length);
      conn.write(Buffer.concat([length, out]));
    }
  });
}

interface Question {
  name: string;
  type: number;
  /** The question section's bytes, echoed in the reply. */
  raw: Buffer;
}

/** Builds the reply to one query packet, or undefined for "stay silent" (DROP). */
function answer(
  msg: Buffer,
  transport: 'udp' | 'tcp',
  lookup: (q: Question) => ZoneEntry | undefined,
  lookupName: (name: string) => ZoneEntry | undefined,
): Buffer | undefined {
  if (msg.length < 12) return undefined;
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  if (flags & 0x8000) return undefined; // a response, not a query
  const qdCount = msg.readUInt16BE(4);
  const arCount = msg.readUInt16BE(10);
  const opcode = (flags >> 11) & 0xf;
  if (qdCount !== 1 || opcode !== 0) return header(id, flags, RCODE.NOTIMP, 0, 0);

  const [name, afterName] = readName(msg, 12);
  const type = msg.readUInt16BE(afterName);
  const end = afterName + 4;
  const q: Question = { name, type, raw: msg.subarray(12, end) };
  const udpMax = transport === 'tcp' ? 65_535 : arCount > 0 ? ednsSize(msg, end) : PLAIN_UDP_MAX;

  const entry = lookup(q);
  if (entry === 'DROP') return undefined;
  if (entry === 'SERVFAIL' || entry === 'REFUSED' || entry === 'NXDOMAIN') {
    return Buffer.concat([header(id, flags, RCODE[entry], 1, 0), q.raw]);
  }
  if (entry === undefined) return Buffer.concat([header(id, flags, RCODE.NXDOMAIN, 1, 0), q.raw]);

  const records: Buffer[] = [];
  if (entry.CNAME && type !== TYPE.CNAME) {
    records.push(record(name, TYPE.CNAME, entry.ttl, encodeName(entry.CNAME)));
    const target = lookupName(entry.CNAME);
    if (target && typeof target === 'object') records.push(...recordsOf(entry.CNAME, type, target));
  } else {
    records.push(...recordsOf(name, type, entry));
  }
  const ad = entry.secure ? AD : 0;
  const reply = Buffer.concat([header(id, flags, RCODE.NOERROR, 1, records.length, ad), q.raw, ...records]);
  if (reply.length > udpMax) return Buffer.concat([header(id, flags | 0x0200, RCODE.NOERROR, 1, 0, ad), q.raw]);
  return reply;
}

function recordsOf(name: string, type: number, entry: NameRecords): Buffer[] {
  const ttl = entry.ttl;
  switch (type) {
    case TYPE.A:
      return (entry.A ?? []).map((a) => record(name, type, ttl, Buffer.from(ipBytes(a, 'ipv4'))));
    case TYPE.AAAA:
      return (entry.AAAA ?? []).map((a) => record(name, type, ttl, Buffer.from(ipBytes(a, 'ipv6'))));
    case TYPE.MX:
      return (entry.MX ?? []).map((mx) => {
        const pref = Buffer.alloc(2);
        pref.writeUInt16BE(mx.priority);
        return record(name, type, ttl, Buffer.concat([pref, encodeName(mx.exchange)]));
      });
    case TYPE.TXT:
      return (entry.TXT ?? []).map((t) => record(name, type, ttl, txtData(t)));
    case TYPE.CNAME:
      return entry.CNAME ? [record(name, type, ttl, encodeName(entry.CNAME))] : [];
    case TYPE.TLSA:
      return (entry.TLSA ?? []).map((t) => record(name, type, ttl, Buffer.concat([Buffer.from([t.usage, t.selector, t.matching]), Buffer.from(t.data, 'hex')])));
    default:
      return [];
  }
}

/** the AD flag (RFC 4035 §3.2.3) */
const AD = 0x0020;

function header(id: number, queryFlags: number, rcode: number, qd: number, an: number, extra = 0): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  // QR, the query's opcode and RD, AA (we are the authority), RA, then the rcode (and TC, AD if set)
  h.writeUInt16BE(0x8000 | (queryFlags & 0x7900) | 0x0400 | 0x0080 | (queryFlags & 0x0200) | extra | rcode, 2);
  h.writeUInt16BE(qd, 4);
  h.writeUInt16BE(an, 6);
  return h;
}

function record(name: string, type: number, ttlS: number | undefined, data: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(CLASS_IN, 2);
  fixed.writeUInt32BE(ttlS ?? DEFAULT_TTL_S, 4);
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([encodeName(name), fixed, data]);
}

function encodeName(name: string): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter((l) => l.length > 0);
  const parts: Buffer[] = [];
  for (const label of labels) {
    const bytes = Buffer.from(label, 'ascii');
    if (bytes.length > 63) throw new Error(`DNS label too long: ${label}`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/** Reads a (possibly compressed) name; returns it and the offset just after it in place. */
function readName(msg: Buffer, offset: number): [string, number] {
  const labels: string[] = [];
  let pos = offset;
  let end = -1;
  for (let hops = 0; hops < 64; hops++) {
    const len = msg.readUInt8(pos);
    if (len === 0) {
      return [labels.join('.'), end === -1 ? pos + 1 : end];
    }
    if ((len & 0xc0) === 0xc0) {
      if (end === -1) end = pos + 2;
      pos = msg.readUInt16BE(pos) & 0x3fff;
      continue;
    }
    labels.push(msg.toString('latin1', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  throw new Error('DNS name too long or looping');
}

/** The UDP payload size from the query's EDNS OPT record (RFC 6891), if it has one. */
function ednsSize(msg: Buffer, offset: number): number {
  try {
    const [, afterName] = readName(msg, offset);
    if (msg.readUInt16BE(afterName) === TYPE.OPT) return Math.max(PLAIN_UDP_MAX, msg.readUInt16BE(afterName + 2));
  } catch {
    // a malformed additional section: fall back to the plain limit
  }
  return PLAIN_UDP_MAX;
}

function ipBytes(address: string, kind: 'ipv4' | 'ipv6'): number[] {
  const ip = ipaddr.parse(address);
  if (ip.kind() !== kind) throw new Error(`${address} is not ${kind}`);
  return ip.toByteArray();
}

function txtData(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length || i === 0; i += 255) {
    const chunk = bytes.subarray(i, i + 255);
    parts.push(Buffer.from([chunk.length]), chunk);
  }
  return Buffer.concat(parts);
}
