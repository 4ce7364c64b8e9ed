/**
 * The closed map of hook names and their arguments. Registering a name that is not here is an
 * error at start-up; a handler's arguments are typed by its name. Shapes follow ZoneMTA's where
 * it has the hook.
 */
import type { SMTPServerAddress, SMTPServerSession } from 'smtp-server';
import type { MessageHeaders } from '../message/headers.js';
import type { Origin } from '../queue/types.js';

/** The envelope as hooks see it while a message is accepted. */
export interface HookEnvelope {
  /** the queue id the message will get */
  id: string;
  /** envelope sender; '' is the null sender */
  from: string;
  to: string[];
  origin: Origin;
  /** the SMTP session when the message came by SMTP */
  session?: SMTPServerSession;
}

export interface MessageInfo {
  /** the header block; a hook may get, add, update and remove headers */
  headers: MessageHeaders;
  /** the Message-ID once known */
  messageId?: string;
  size?: number;
  bodyHash?: string;
}

/** Which zone each recipient goes to; `queue:route` handlers may change `zones[i]`. */
export interface Routing {
  recipients: readonly string[];
  zones: string[];
}

export interface HookMap {
  'smtp:connect': [session: SMTPServerSession];
  'smtp:mail_from': [address: SMTPServerAddress, session: SMTPServerSession];
  'smtp:rcpt_to': [address: SMTPServerAddress, session: SMTPServerSession];
  'smtp:data': [envelope: HookEnvelope, session: SMTPServerSession];
  'api:mail': [envelope: HookEnvelope, message: Record<string, unknown>];
  'message:headers': [envelope: HookEnvelope, messageInfo: MessageInfo];
  'message:store': [envelope: HookEnvelope, messageInfo: MessageInfo];
  'message:queue': [envelope: HookEnvelope, messageInfo: MessageInfo];
  'queue:route': [envelope: HookEnvelope, routing: Routing];
}

export type HookName = keyof HookMap;
export type HookHandler<N extends HookName> = (...args: HookMap[N]) => unknown | Promise<unknown>;

export const HOOK_NAMES: readonly HookName[] = [
  'smtp:connect',
  'smtp:mail_from',
  'smtp:rcpt_to',
  'smtp:data',
  'api:mail',
  'message:headers',
  'message:store',
  'message:queue',
  'queue:route',
];

export function isHookName(name: string): name is HookName {
  return (HOOK_NAMES as readonly string[]).includes(name);
}
