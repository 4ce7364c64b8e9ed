/**
 * What the inbound SMTP door (door-thread.ts, a worker thread of the master) and the master
 * (smtp-door.ts) say to each other.
 *
 * The thread speaks SMTP and makes every decision that needs only the session and the door's own
 * state (receiver.ts: addresses, domains, throttles, blocklist, disk space, load). What only the
 * master holds it asks for: a message's storage (its 250), plugin hooks (only when a plugin
 * registered one), altinbox aliases (only for an alt- address) and the store's admission when
 * the store is over its size. Everything else the master tells the thread as it changes (`state`),
 * so a message from a client costs one request, its data, and no more.
 *
 *   thread → master
 *     ready { address } | listenFailed { error }          once, after start
 *     ask   { id, what: hook | alias | admission }        answered by id
 *     data  { id, session, rcpts }                        a message starts; then
 *     chunk { id, bytes } … end { id } | abort { id }     its raw bytes as read (abort: the client
 *                                                         went away); answered once, by id
 *     counters { id, counters }                           the answer to `pull`
 *     log   { line }                                      a pino line for the master's log
 *     stopped                                             after `stop`: every session is over
 *   master → thread
 *     answer { id, ok: true, value } | { id, ok: false, reply, reason }
 *     ack    { id, bytes }                                raw bytes the store has taken
 *     state  { overloaded, storeWritable, storeOverLimit } when any of them changes
 *     pull   { id }                                       the door's counters, for GET /metrics
 *     stop                                                stop listening, end the sessions
 *
 * Both sides send in batches, one postMessage per event-loop turn (batched-port.ts): the port
 * carries arrays of these messages.
 *
 * Flow control: the thread keeps at most DATA_WINDOW_BYTES of a message unacknowledged and pauses
 * the client's stream past it, so a 20 MB message is never held whole on either side. The master
 * acknowledges in steps of DATA_ACK_BYTES, so a message smaller than that costs no ack at all.
 */
import type { SMTPServerAddress, SMTPServerSession } from 'smtp-server';
import type { InboundConfig } from '../../config/schema.js';
import type { RejectReason } from '../metrics.js';
import type { InboxTarget } from '../recipients.js';
import type { ThrottleTier } from '../throttle.js';

/** Raw bytes of one message the thread sends ahead of the master's acknowledgement. */
export const DATA_WINDOW_BYTES = 256 * 1024;
/** The master acknowledges raw bytes once this many have been taken (a quarter of the window). */
export const DATA_ACK_BYTES = DATA_WINDOW_BYTES / 4;

/** The gate hooks a plugin may have registered, which the thread asks the master to run. */
export type DoorHook = 'inbound:connect' | 'inbound:mail_from' | 'inbound:rcpt_to';

/** What the thread is started with (workerData). */
export interface DoorSetup {
  config: InboundConfig;
  hostname: string;
  /** the port to listen on: the configured one, or the one the first thread got (a restart) */
  port: number;
  /** the master's log level: lines below it are not sent */
  logLevel: string;
  /** the gate hooks plugins registered (the others are not asked about) */
  hooks: DoorHook[];
  /** the master's state when the thread starts */
  state: DoorState;
}

/** What the master holds that the door's decisions need, sent whenever it changes. */
export interface DoorState {
  /** the master's load gate is closed (its event loop lags, or store writes pile up) */
  overloaded: boolean;
  /** the inbox store can write (false while it reopens after a failed write: 451) */
  storeWritable: boolean;
  /** the store is over its size by more than a tenth: MAIL asks the master, which trims first */
  storeOverLimit: boolean;
}

/** An SMTP reply the master chose (the enhanced code leads the text), and how the metrics count it. */
export interface DoorRefusal {
  code: number;
  text: string;
  reason: RejectReason;
}

/** The door's running totals since its thread started, for the metrics. */
export interface DoorCounters {
  connections: { accepted: number; refused: number };
  rejected: Partial<Record<RejectReason, number>>;
  throttled: Record<ThrottleTier, number>;
  /** connections the load gate refused after their wait */
  loadRefused: number;
  /** the lag of the door thread's event loop its gate last measured, ms */
  lagMs: number;
}

/**
 * A session as smtp-server keeps it, copied into each request (a structured clone): a hook sees
 * its fields as they were when the command came; a change a hook makes stays in the master.
 */
export type DoorSession = SMTPServerSession;

export type DoorAsk =
  | { type: 'ask'; id: number; what: 'hook'; hook: 'inbound:connect'; session: DoorSession }
  | { type: 'ask'; id: number; what: 'hook'; hook: 'inbound:mail_from' | 'inbound:rcpt_to'; address: SMTPServerAddress; session: DoorSession }
  | { type: 'ask'; id: number; what: 'alias'; inbox: string }
  | { type: 'ask'; id: number; what: 'admission' };

export type ThreadMessage =
  | { type: 'ready'; address: { address: string; family: string; port: number } }
  | { type: 'listenFailed'; error: { message: string; code?: string; address?: string; port?: number; syscall?: string } }
  | DoorAsk
  /** `rcpts`: the inbox each envelope recipient got at RCPT, in envelope order */
  | { type: 'data'; id: number; session: DoorSession; rcpts: InboxTarget[] }
  | { type: 'chunk'; id: number; bytes: Uint8Array }
  | { type: 'end'; id: number }
  | { type: 'abort'; id: number }
  | { type: 'counters'; id: number; counters: DoorCounters }
  | { type: 'log'; line: string }
  | { type: 'stopped' };

/** A yes carries: an alias's inbox (or undefined: not one given out), the 250's text (data). */
export type AnswerValue = string | undefined;

export type DoorAnswer = { type: 'answer'; id: number; ok: true; value: AnswerValue } | { type: 'answer'; id: number; ok: false; refusal: DoorRefusal };

export type MasterMessage =
  | DoorAnswer
  | { type: 'ack'; id: number; bytes: number }
  | ({ type: 'state' } & DoorState)
  | { type: 'pull'; id: number }
  | { type: 'stop' };
