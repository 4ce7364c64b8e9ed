/**
 * The class of a refusal, for metrics: a closed, small set read from the enhanced status code
 * (RFC 3463's subject digit), so a label made from it cannot grow with the traffic.
 */
import type { SmtpError } from './smtp-error.js';

export const REASON_CLASSES = ['address', 'mailbox', 'size', 'system', 'network', 'rate', 'protocol', 'content', 'policy', 'other'] as const;
export type ReasonClass = (typeof REASON_CLASSES)[number];

export function reasonClass(err: Pick<SmtpError, 'enhancedStatus'>): ReasonClass {
  const [, subject, detail] = err.enhancedStatus.split('.').map(Number);
  switch (subject) {
    case 1:
      return 'address';
    case 2:
      return 'mailbox';
    case 3:
      return detail === 4 ? 'size' : 'system';
    case 4:
      return detail === 5 ? 'rate' : 'network';
    case 5:
      return 'protocol';
    case 6:
      return 'content';
    case 7:
      return 'policy';
    default:
      return 'other';
  }
}
