/**
 * Envelope address checks shared by both doors. An address reaches the queue only when it is a
 * plain local@domain with no controls, no spaces outside quotes, no source route and a domain
 * that looks like a host name or an address literal.
 */
import { SmtpError } from '../errors/smtp-error.js';

const DOMAIN = /^(?=.{1,253}$)(?:[a-z0-9\u0080-\uffff](?:[a-z0-9\u0080-\uffff-]{0,61}[a-z0-9\u0080-\uffff])?\.)*[a-z0-9\u0080-\uffff](?:[a-z0-9\u0080-\uffff-]{0,61}[a-z0-9\u0080-\uffff])?$/i;
const LITERAL = /^\[(?:\d{1,3}(?:\.\d{1,3}){3}|IPv6:[0-9a-f:.]+)\]$/i;
const LOCAL_ATOM = /^[^\s"(),:;<>@[\\\]\x00-\x1f\x7f]+$/;
const LOCAL_QUOTED = /^"(?:[^"\\\x00-\x1f\x7f]|\\[\x20-\x7e])*"$/;

/** Why an address is not acceptable, or undefined when it is. */
export function addressProblem(address: string): string | undefined {
  if (address.length > 320) return 'too long';
  if (/[\x00-\x1f\x7f]/.test(address)) return 'control characters';
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return 'expected local-part@domain';
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (local.length > 64) return 'local part longer than 64 characters';
  if (!(LOCAL_QUOTED.test(local) || (LOCAL_ATOM.test(local) && !local.startsWith('.') && !local.endsWith('.') && !local.includes('..')))) {
    return 'invalid local part';
  }
  if (!(DOMAIN.test(domain) || LITERAL.test(domain))) return 'invalid domain';
  return undefined;
}

/** Throws 553 for a bad address; '' (the null sender) is allowed only when `allowNull`. */
export function checkAddress(address: string, allowNull: boolean): void {
  if (address === '' && allowNull) return;
  const problem = addressProblem(address);
  if (problem) throw SmtpError.badAddress(address, problem);
}
