/**
 * The domain of the From: header of a stored header block: DKIM signs for it (DMARC aligns on
 * it, not on the envelope sender).
 */
import addressparser from 'nodemailer/lib/addressparser';
import { parseHeaders } from '../message/headers.js';

export function fromDomain(headerBlock: string): string {
  const value = parseHeaders(Buffer.from(headerBlock, 'latin1')).getFirst('from');
  const parsed = addressparser(value, { flatten: true }) as { address?: string }[];
  const address = parsed.find((a) => a.address)?.address ?? '';
  const at = address.lastIndexOf('@');
  return at === -1 ? '' : address.slice(at + 1).toLowerCase();
}
