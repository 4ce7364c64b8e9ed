/**
 * The inbox: what the receiver hands received mail to and what the API reads. It joins the store,
 * the parser and the retention rules behind a few named functions; nothing outside lib/inbound
 * sees the store.
 *
 *   receive()   raw bytes → the store (one synced commit) → the id; the 250 is said after this
 *   (parser)    after the commit: headers, text, HTML, attachments, links, auth, spam score → the store
 *   message() / entry() / raw() / attachment()     what the API serves of one message
 *   list() / newer() / search() / count()           reading inboxes (inbox-reader.ts)
 *   removeFrom() / remove() / empty()               deletions
 *
 * Reads see a message as soon as receive() has returned: one not parsed yet is parsed first (it
 * jumps the parser's line). The parser knows every message waiting for it (those a restart found
 * unparsed included), so a read asks it, not the store: under a flood each read of the store
 * waits its turn behind the receipts' synced writes. Retention holds on read as well as in the
 * sweeper: an expired message or one past an inbox's cap is not served even before the sweeper
 * removes it.
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { readChunks } from '../accept/read-chunks.js';
import type { InboundConfig } from '../config/schema.js';
import { SmtpError } from '../errors/smtp-error.js';
import { logEvent } from '../log/logger.js';
import { Aliases } from './aliases.js';
import { eventFor, InboxEvents } from './events.js';
import { InboxWebhooks } from './webhooks.js';
import { PrivateInboxes } from './private.js';
import { releaseRecord, type ReleaseSink } from './release.js';
import { attachmentBytes } from './parse/attachment-bytes.js';
import { AuthChecker } from './parse/auth.js';
import { parseMessage } from './parse/parse-message.js';
import { DEFAULT_PACING, IntakeActivity } from './parse/pacing.js';
import { ParseQueue } from './parse/parse-queue.js';
import type { InboxTarget } from './recipients.js';
import { Retention } from './retention.js';
import { inboxIdTime, isInboxId } from './store/ids.js';
import type { Query } from './search/query.js';
import { InboxReader, type ListedMessage, type SearchOptions, type SearchPage } from './inbox-reader.js';
import { SpamScorer } from './spam/scorer.js';
import { InboxStore } from './store/inbox-store.js';
import type { ClientInfo, InboundEnvelope, InboxEntry, MessageSummary, ParsedMessage, Release } from './store/types.js';

/** Parses running at once: the rest wait their turn, off the SMTP reply path. */
const PARSE_CONCURRENCY = 2;

export interface Receipt {
  from: string;
  rcpts: readonly InboxTarget[];
  client: ClientInfo;
  source: Readable;
  maxSizeBytes: number;
}

/** A stored message: its envelope and what the parser made of it (null if parsing failed). */
export interface StoredMessage {
  envelope: InboundEnvelope;
  parsed: ParsedMessage | null;
}

export type { ListedMessage } from './inbox-reader.js';

export type StoredListener = (envelope: InboundEnvelope, summary: MessageSummary | null) => void;

export interface InboxDeps {
  config: InboundConfig;
  hostname: string;
  dns: { servers: readonly string[]; timeoutMs: number };
  logger: Logger;
  /** told of every chunk received or parsed (the master's GcNudge counts them) */
  onBytes?: (n: number) => void;
}

export class Inbox {
  private store!: InboxStore;
  private parser!: ParseQueue;
  private reader!: InboxReader;
  /** receipts in flight: background parses wait while there are any */
  private readonly intake = new IntakeActivity();
  private retention!: Retention;
  private auth: AuthChecker | undefined;
  /** private inboxes and domains (reading them needs their key) */
  privates!: PrivateInboxes;
  /** altinbox aliases */
  aliases!: Aliases;
  private spam: SpamScorer | undefined;
  private readonly listeners: StoredListener[] = [];
  /** new-message events per inbox, for the live routes */
  readonly events = new InboxEvents();
  /** new-message notifications to URLs (off unless configured) */
  webhooks!: InboxWebhooks;

  /** every line of the inbox (store, parser, retention, webhooks) says component "inbox" */
  private readonly log: Logger;

  constructor(private readonly deps: InboxDeps) {
    this.log = deps.logger.child({ component: 'inbox' });
  }

  async start(): Promise<void> {
    const { config } = this.deps;
    this.store = await InboxStore.open(config.path, this.log);
    this.privates = new PrivateInboxes(this.store.records);
    await this.privates.load();
    this.aliases = new Aliases(this.store.records, config.aliasSecret);
    this.webhooks = new InboxWebhooks(config.webhook, this.store.records, this.log);
    await this.webhooks.start();
    if (config.checkAuth) this.auth = new AuthChecker({ dnsServers: this.deps.dns.servers, dnsTimeoutMs: this.deps.dns.timeoutMs, hostname: this.deps.hostname });
    this.spam = new SpamScorer(config.spam, this.log);
    this.spam.start();
    this.parser = new ParseQueue((id) => this.parse(id), PARSE_CONCURRENCY, this.log, { ...DEFAULT_PACING, busy: () => this.intake.busy() });
    this.retention = new Retention(this.store, config, this.log);
    this.reader = new InboxReader(this.store, this.parser, config);
    // what a crash left unparsed is parsed now (its 250 was given: it must be served)
    for await (const id of this.store.pendingIds()) this.parser.add(id);
    this.retention.start();
  }

  async stop(): Promise<void> {
    await this.retention?.stop();
    // parses under way finish (and queue their notifications) before the senders stop; what is
    // not delivered stays in the store for the next start
    await this.parser?.stop();
    this.webhooks?.stop();
    this.spam?.stop();
    if (this.store?.isOpen) await this.store.close();
  }

  /** Told of every message once it is stored and parsed (live events, hooks). */
  onStored(listener: StoredListener): void {
    this.listeners.push(listener);
  }

  /** Live figures for metrics (read them when needed: they change). */
  stats(): { readonly messages: number; readonly bytes: number; readonly parseBacklog: number; readonly evicted: { ttl: number; cap: number; size: number } } {
    const inbox = this;
    return {
      get messages() {
        return inbox.store.messageCount;
      },
      get bytes() {
        return inbox.store.totalBytes;
      },
      get parseBacklog() {
        return inbox.parser.backlog;
      },
      get evicted() {
        return inbox.retention.evicted;
      },
    };
  }

  /** For the load gate: store writes in flight. */
  get pendingWrites(): number {
    return this.store.pendingWrites;
  }

  /**
   * For the receiver, at MAIL FROM: the store cannot write now (451), or it is over its size by
   * more than a tenth even after the oldest were evicted (452: no room could be made).
   */
  async admission(): Promise<SmtpError | undefined> {
    if (!this.store.writable) return SmtpError.storageFailed();
    const hardLimit = this.deps.config.maxStoreSize * 1.1;
    // the size eviction alone: a whole sweep would also trim every inbox that received mail
    if (this.store.totalBytes > hardLimit) await this.retention.trimToSize();
    if (this.store.totalBytes > hardLimit) return SmtpError.insufficientStorage();
    return undefined;
  }

  /**
   * Stores a message for its recipients' inboxes. Resolves with its id once it is durably on
   * disk; any failure is an SmtpError (552 too big, 451 the store failed) and leaves nothing
   * visible. The source is read to its end either way, so the SMTP session stays in step.
   */
  async receive(r: Receipt): Promise<string> {
    const id = this.store.newId();
    const writer = this.store.rawWriter(id);
    let size = 0;
    let failure: unknown;
    const ended = this.intake.begin();
    try {
      for await (const raw of readChunks(r.source)) {
        const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
        size += chunk.length;
        this.deps.onBytes?.(chunk.length);
        if (failure) continue;
        if (size > r.maxSizeBytes) {
          failure = SmtpError.messageTooBig(r.maxSizeBytes);
          continue;
        }
        try {
          await writer.write(chunk);
        } catch (err) {
          failure = err;
        }
      }
      if (failure) throw failure;
      const entries = new Map<string, InboxEntry>();
      for (const t of r.rcpts) {
        const e = entries.get(t.inbox) ?? { rcpts: [], tags: [], read: false };
        e.rcpts.push(t.original);
        if (t.tag && !e.tags.includes(t.tag)) e.tags.push(t.tag);
        entries.set(t.inbox, e);
      }
      const envelope: InboundEnvelope = {
        id,
        receivedAt: Date.now(),
        size,
        chunks: writer.chunks,
        from: r.from,
        rcpts: r.rcpts.map((t) => ({ address: t.original, inbox: t.inbox, tag: t.tag })),
        inboxes: [...entries.keys()],
        client: r.client,
      };
      await this.store.commit(envelope, writer, entries);
      this.retention.touched(envelope.inboxes);
    } catch (err) {
      await this.store.discard(id, writer);
      if (err instanceof SmtpError) throw err;
      logEvent(this.log, 'RECEIVE_FAILED', { id, err }, `storing inbound message ${id} failed: ${(err as Error)?.message ?? err}`);
      throw SmtpError.storageFailed();
    } finally {
      ended();
    }
    this.parser.add(id);
    // someone is waiting for this inbox: its message goes before the rest of the parser's line
    if (this.events.watched(r.rcpts.map((t) => t.inbox))) void this.parser.ensure(id);
    logEvent(this.log, 'RECEIVED', { id, from: r.from, inboxes: r.rcpts.length > 20 ? r.rcpts.length : r.rcpts.map((t) => t.inbox), size, ip: r.client.ip, tls: r.client.tls });
    return id;
  }

  private async parse(id: string): Promise<void> {
    const envelope = await this.store.readEnvelope(id);
    if (!envelope) return; // deleted before its turn
    const { parsed, summary, search } = await parseMessage(this.store, envelope, this.auth, this.deps.onBytes, this.spam);
    if (!(await this.store.saveParsed(id, parsed, summary, search))) return;
    this.events.publish(envelope, summary);
    if (this.webhooks.enabled) for (const inbox of envelope.inboxes) this.webhooks.notify(eventFor(inbox, envelope, summary));
    for (const listener of this.listeners) {
      try {
        listener(envelope, summary);
      } catch (err) {
        this.log.warn({ err, id }, 'an inbox listener failed');
      }
    }
  }

  // --- reading ------------------------------------------------------------------------------

  private live(id: string, nowMs = Date.now()): boolean {
    return inboxIdTime(id) > nowMs - this.deps.config.ttl;
  }

  /** A message by id, parsed (waiting for its parse if need be); undefined when there is none. */
  async message(id: string): Promise<StoredMessage | undefined> {
    if (!isInboxId(id) || !this.live(id)) return undefined;
    await this.parser.ensure(id);
    const [envelope, parsed] = await Promise.all([this.store.getEnvelope(id), this.store.getParsed(id)]);
    return envelope ? { envelope, parsed: parsed ?? null } : undefined;
  }

  /** The inbox entry of a message, when the message is in that inbox and within its cap. */
  async entry(inbox: string, id: string): Promise<InboxEntry | undefined> {
    if (!isInboxId(id) || !this.live(id)) return undefined;
    const entry = await this.store.entry(inbox, id);
    if (!entry) return undefined;
    if ((await this.store.countNewer(inbox, id)) >= this.deps.config.maxPerInbox) return undefined;
    return entry;
  }

  /** An inbox, newest first, a page at a time (inbox-reader.ts). */
  list(inbox: string, opts: { limit: number; before?: string; tag?: string }): Promise<{ items: ListedMessage[]; more: boolean }> {
    return this.reader.list(inbox, opts);
  }

  /** An inbox's messages newer than an id or a time, oldest first (inbox-reader.ts). */
  newer(inbox: string, opts: { after?: string; sinceMs?: number; tag?: string; limit: number }): Promise<ListedMessage[]> {
    return this.reader.newer(inbox, opts);
  }

  /** Messages matching a search, newest first (inbox-reader.ts). */
  search(q: Query, opts: SearchOptions): Promise<SearchPage> {
    return this.reader.search(q, opts);
  }

  count(inbox: string, tag?: string): Promise<number> {
    return this.reader.count(inbox, tag);
  }

  /** The raw message as received; undefined when there is no such message. */
  async raw(id: string): Promise<{ size: number; chunks: AsyncGenerator<Buffer> } | undefined> {
    if (!isInboxId(id) || !this.live(id)) return undefined;
    const envelope = await this.store.getEnvelope(id);
    return envelope ? { size: envelope.size, chunks: this.store.readRaw(id) } : undefined;
  }

  /** Attachment `index` of a parsed message: its description, and its bytes decoded from the raw message. */
  async attachment(id: string, index: number): Promise<{ info: ParsedMessage['attachments'][number]; chunks: AsyncGenerator<Buffer> } | undefined> {
    const msg = await this.message(id);
    const info = msg?.parsed?.attachments[index];
    return info ? { info, chunks: attachmentBytes(this.store.readRaw(id), index) } : undefined;
  }

  /** What of a message is on disk (tests and tools check that a removal took everything). */
  footprint(id: string): ReturnType<InboxStore['footprint']> {
    return this.store.footprint(id);
  }

  /** Runs one retention pass now (tests; the sweeper runs by itself). */
  sweep(nowMs?: number): Promise<void> {
    return this.retention.sweep(nowMs);
  }

  // --- deleting -----------------------------------------------------------------------------

  /** Takes a message out of one inbox; false when it was not there. */
  removeFrom(inbox: string, id: string): Promise<boolean> {
    return isInboxId(id) ? this.store.removeFromInbox(inbox, id) : Promise.resolve(false);
  }

  /** Deletes a message from every inbox; false when there was no such message. */
  remove(id: string): Promise<boolean> {
    return isInboxId(id) ? this.store.remove(id) : Promise.resolve(false);
  }

  /** Empties an inbox (or only its messages with `tag`); returns how many went. */
  async empty(inbox: string, tag?: string): Promise<number> {
    const ids: string[] = [];
    for await (const e of this.store.entries(inbox)) if (!tag || e.entry.tags.includes(tag)) ids.push(e.id);
    let n = 0;
    for (const id of ids) if (await this.store.removeFromInbox(inbox, id)) n++;
    return n;
  }

  /**
   * Hands the stored message to the outbound queue (`sink`: ingest) for `to`, from `from`; the
   * outcome is kept with the message. Resolves with it; throws what ingest threw (after keeping it).
   */
  async release(envelope: InboundEnvelope, to: string[], from: string, sink: ReleaseSink): Promise<Release> {
    try {
      const { id } = await sink({ from, to, source: this.store.readRaw(envelope.id) });
      const record = releaseRecord(to, { queueId: id });
      await this.store.noteRelease(envelope.id, record);
      return record;
    } catch (err) {
      await this.store.noteRelease(envelope.id, releaseRecord(to, { error: (err as Error)?.message ?? String(err) })).catch(() => undefined);
      throw err;
    }
  }

  setRead(inbox: string, id: string, read: boolean): Promise<boolean> {
    return isInboxId(id) ? this.store.setRead(inbox, id, read) : Promise.resolve(false);
  }
}
