/**
 * Which addresses have an inbox here, and which inbox. Any local part at a configured domain is
 * taken without registration; everything else is refused, so the receiver is never a relay.
 *
 * Invariants:
 * - an inbox name is the whole address in lower case (local part included, as the inbox services
 *   treat it), with the domain in its ASCII form;
 * - only an address whose domain is exactly one of ours (or a subdomain of a "*." entry) is
 *   accepted: address literals, a trailing dot, look-alike domains are not ours (550);
 * - local parts that could route elsewhere (%, !, a quoted "@") are refused at our domains too,
 *   never stored under a name another server would read as a route (550);
 * - with plusAddressing = "fold", foo+tag@D is inbox foo@D and keeps "tag".
 */
import { addressProblem } from '../accept/address.js';
import { asciiDomain, domainMatcher, type DomainMatcher } from '../config/domains.js';
import { SmtpError } from '../errors/smtp-error.js';

/** Where one envelope recipient goes. */
export interface InboxTarget {
  /** the inbox: the canonical address */
  inbox: string;
  /** the plus-address tag when it was folded into the inbox ("" when none) */
  tag: string;
  /** the recipient as the client gave it */
  original: string;
}

export class RecipientPolicy {
  private readonly ours: DomainMatcher;

  constructor(
    domains: readonly string[],
    private readonly plusAddressing: 'fold' | 'keep',
  ) {
    this.ours = domainMatcher(domains);
  }

  /** Is this domain one of the receiver's? */
  isOurDomain(domain: string): boolean {
    return this.ours(domain);
  }

  /** The inbox of an envelope recipient, or an SmtpError: 553 malformed, 550 not ours. */
  target(address: string): InboxTarget {
    const at = address.lastIndexOf('@');
    if (at <= 0 || at === address.length - 1) throw SmtpError.badAddress(address, 'expected local-part@domain');
    const domain = address.slice(at + 1);
    // named in its ASCII form: a look-alike shows as the xn-- name it is, and the reply stays ASCII
    if (!this.ours(domain)) throw SmtpError.relayDenied((asciiDomain(domain) || domain.replace(/[^\x21-\x7e]/g, '?')).slice(0, 255));
    const local = address.slice(0, at);
    if (/[%!]/.test(local) || (local.startsWith('"') && local.includes('@'))) throw SmtpError.routedAddress();
    const problem = addressProblem(address);
    if (problem) throw SmtpError.badAddress(address, problem);
    return { ...this.fold(local.toLowerCase(), asciiDomain(domain)), original: address };
  }

  /**
   * The inbox an address given to the API names, whatever its domain (an inbox of a domain we do
   * not serve is simply empty), or undefined when it is not an address at all.
   */
  lookup(address: string): Omit<InboxTarget, 'original'> | undefined {
    if (address.length > 320 || addressProblem(address)) return undefined;
    const at = address.lastIndexOf('@');
    const domain = asciiDomain(address.slice(at + 1));
    if (!domain) return undefined;
    return this.fold(address.slice(0, at).toLowerCase(), domain);
  }

  private fold(local: string, domain: string): { inbox: string; tag: string } {
    const plus = local.indexOf('+');
    if (this.plusAddressing === 'fold' && plus > 0 && !local.startsWith('"')) {
      return { inbox: `${local.slice(0, plus)}@${domain}`, tag: local.slice(plus + 1) };
    }
    return { inbox: `${local}@${domain}`, tag: '' };
  }
}
