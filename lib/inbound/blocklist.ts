/**
 * The receiver's blocklist: a text file in the app dir (inbound.blocklist), one entry a line, "#"
 * starts a comment:
 *
 *   203.0.113.7          one address
 *   198.51.100.0/24      a network (IPv6 too)
 *   spam.test            a sender domain and every subdomain of it
 *
 * Mail from a listed address is refused at connect, mail from a listed domain at MAIL FROM, with
 * 554 5.7.1 and a line naming the entry. The file is re-read when it changes (checked every
 * second), so a change needs neither a restart nor the HTTP API; a missing file is an empty list;
 * a line that is neither an address nor a domain is skipped with a warning naming it.
 */
import { readFileSync } from 'node:fs';
import ipaddr from 'ipaddr.js';
import type { Logger } from 'pino';
import { asciiDomain } from '../config/domains.js';
import { isCidr } from '../config/net.js';
import { SmtpError } from '../errors/smtp-error.js';
import { watchForChanges } from './file-watch.js';

const DOMAIN = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

interface Entries {
  networks: { entry: string; range: [ipaddr.IPv4 | ipaddr.IPv6, number] }[];
  domains: Set<string>;
}

export class Blocklist {
  private entries: Entries = { networks: [], domains: new Set() };
  private unwatch: (() => void) | undefined;

  constructor(
    private readonly file: string,
    private readonly logger: Logger,
  ) {}

  /** Reads the file now and watches it from then on. */
  start(): void {
    this.load();
    this.unwatch = watchForChanges(this.file, () => this.load());
  }

  stop(): void {
    this.unwatch?.();
    this.unwatch = undefined;
  }

  get size(): number {
    return this.entries.networks.length + this.entries.domains.size;
  }

  /** Re-reads the file; a file that cannot be read keeps nothing blocked. */
  load(): void {
    let text = '';
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.logger.warn({ err, file: this.file }, `cannot read the inbound blocklist ${this.file}`);
    }
    const next: Entries = { networks: [], domains: new Set() };
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.replace(/#.*/, '').trim();
      if (!line) return;
      if (isCidr(line)) {
        const range = line.includes('/') ? ipaddr.parseCIDR(line) : ([ipaddr.parse(line), ipaddr.parse(line).kind() === 'ipv4' ? 32 : 128] as [ipaddr.IPv4 | ipaddr.IPv6, number]);
        next.networks.push({ entry: line, range });
        return;
      }
      const domain = asciiDomain(line.replace(/^\*\./, '').replace(/\.$/, ''));
      if (domain && DOMAIN.test(domain)) next.domains.add(domain);
      else this.logger.warn({ event: 'BLOCKLIST_ENTRY_SKIPPED', file: this.file, line: i + 1, entry: line.slice(0, 100) }, `inbound blocklist ${this.file} line ${i + 1}: not an address, network or domain; skipped`);
    });
    this.entries = next;
    this.logger.info({ event: 'BLOCKLIST_LOADED', file: this.file, entries: this.size }, `inbound blocklist loaded: ${this.size} entries`);
  }

  /** Why a client address is refused (554), or undefined. */
  checkClient(ip: string | undefined): SmtpError | undefined {
    if (!ip || !this.entries.networks.length || !ipaddr.isValid(ip)) return undefined;
    let addr = ipaddr.parse(ip);
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
    const hit = this.entries.networks.find(({ range }) => range[0].kind() === addr.kind() && addr.match(range));
    return hit ? SmtpError.blocklisted(`Your address ${ip} is on this server's blocklist (entry ${hit.entry})`) : undefined;
  }

  /** Why a sender is refused (554), or undefined: its domain or a parent of it is listed. */
  checkSender(address: string): SmtpError | undefined {
    if (!this.entries.domains.size) return undefined;
    const domain = asciiDomain(address.slice(address.lastIndexOf('@') + 1));
    if (!domain) return undefined;
    const labels = domain.split('.');
    for (let i = 0; i < labels.length; i++) {
      const candidate = labels.slice(i).join('.');
      if (this.entries.domains.has(candidate)) return SmtpError.blocklisted(`Mail from ${domain} is refused by this server's blocklist (entry ${candidate})`);
    }
    return undefined;
  }
}
