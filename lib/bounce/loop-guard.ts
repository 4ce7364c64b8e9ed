/**
 * Whether a failed or delayed message may get a DSN at all: the guard against mail loops.
 *
 * The rule, and why:
 *  - Null envelope sender (MAIL FROM:<>): never. It is how DSNs, MDNs and other notices are sent
 *    precisely so that nothing answers them (RFC 5321 §4.5.5, RFC 3464 §2, RFC 3834 §3.1).
 *  - `Auto-Submitted:` with any value but "no" (RFC 3834 §5): the message was made by a machine
 *    (auto-replied, auto-generated, auto-notified); answering machines with machines is how
 *    loops start. "no" (comments and parameters aside) means a person sent it: DSN as usual.
 *  - `Content-Type: multipart/report` (RFC 6522): a report (DSN, MDN, ARF) that somehow has a
 *    sender; a report about a report helps nobody.
 *  - `Precedence: bulk | list | junk` does NOT stop a DSN. RFC 3834's advice against answering
 *    bulk and list mail is for auto-responders (vacation notices) that would write to the list
 *    or its readers. A DSN goes to the envelope sender, which for list mail is the list's bounce
 *    address (often VERP): that is exactly who must learn that a member's address fails, and
 *    mailing-list software depends on it (RFC 3461 §6.2, RFC 2919 §1). So list and bulk mail get
 *    DSNs like any other mail.
 * A message refused here still has its failure logged and reported by webhook; only the mail is
 * not sent.
 */
import { parseHeaders } from '../message/headers.js';

export function mayBounceTo(input: { sender: string; originalHeaders: string }): boolean {
  const sender = input.sender.trim().replace(/^<(.*)>$/, '$1').trim();
  if (!sender) return false;
  const headers = parseHeaders(Buffer.from(input.originalHeaders, 'latin1'));
  for (const line of headers.get('auto-submitted')) {
    // "Auto-Submitted: no (sent by a person)" is still "no"; an empty or odd value is not.
    const value = fieldValue(line).replace(/\([^)]*\)/g, ' ').split(';')[0]!.trim().toLowerCase();
    if (value !== 'no') return false;
  }
  for (const line of headers.get('content-type')) {
    if (/^multipart\/report\b/i.test(fieldValue(line))) return false;
  }
  return true;
}

/** The value of one raw header line, unfolded. */
function fieldValue(line: string): string {
  const colon = line.indexOf(':');
  return (colon >= 0 ? line.slice(colon + 1) : '').replace(/\r?\n[ \t]+/g, ' ').trim();
}
