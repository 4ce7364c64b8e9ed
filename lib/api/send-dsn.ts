/**
 * The `dsn` field of POST /send, as nodemailer names the DSN parameters of RFC 3461:
 *   { id: ENVID, return: "headers" | "full" (RET), notify: "never" or a list of "success",
 *     "failure", "delay" (NOTIFY, for every recipient), recipient: ORCPT (for every recipient) }
 * turned into what ingest takes, with a 400 for what an SMTP server would refuse with 501.
 */
import { checkAddress } from '../accept/address.js';
import type { IngestRequest } from '../accept/ingest.js';
import type { NotifyOn, RecipientDsn } from '../queue/types.js';
import { HttpError } from './errors.js';

interface DsnField {
  id?: string;
  return?: string;
  notify?: string | string[];
  recipient?: string;
}

export function dsnRequest(field: unknown, recipients: readonly string[]): IngestRequest['dsn'] {
  if (field === undefined) return undefined;
  const dsn = field as DsnField;
  if (dsn.id !== undefined && !/^[\x21-\x7e]{1,100}$/.test(dsn.id)) {
    throw HttpError.badRequest('dsn.id: the envelope id (ENVID) must be printable ASCII without spaces, at most 100 characters');
  }
  const notify = dsn.notify === undefined ? undefined : ([] as string[]).concat(dsn.notify).map((n) => n.toUpperCase() as NotifyOn);
  if (notify?.includes('NEVER') && notify.length > 1) throw HttpError.badRequest('dsn.notify: NEVER cannot be combined with other values');
  if (dsn.recipient !== undefined) {
    try {
      checkAddress(dsn.recipient, false);
    } catch (err) {
      throw HttpError.badRequest(`dsn.recipient: ${(err as Error).message}`);
    }
  }
  const each: RecipientDsn = { ...(notify ? { notify: [...new Set(notify)] } : {}), ...(dsn.recipient ? { orcpt: `rfc822;${dsn.recipient}` } : {}) };
  const ret = dsn.return === undefined ? undefined : dsn.return.toLowerCase() === 'headers' || dsn.return === 'HDRS' ? 'HDRS' : 'FULL';
  return {
    ...(ret ? { ret } : {}),
    ...(dsn.id ? { envid: dsn.id } : {}),
    ...(Object.keys(each).length ? { recipients: new Map(recipients.map((r) => [r.toLowerCase(), each])) } : {}),
  };
}
