/**
 * The one way into the queue. SMTP submission, POST /send and the bounces we make all end here:
 *
 *   bytes → CRLF normaliser → header split → hop count (mail loops) → message:headers hook
 *         → Message-ID/Date/Received
 *         → DKIM relaxed body hash, chunk by chunk → body chunks into LevelDB
 *         → message:store hook (may read the whole stored message, change headers, refuse)
 *         → zone per recipient (queue:route hook) → one synced commit → the id
 *         → message:queue hook (a notification: the client has its reply)
 *
 * message:store runs before the zones are chosen, as in ZoneMTA, so that what a content check
 * decides there (a header, a zone) is seen by the routing.
 *
 * Memory per message is the header block plus one body chunk, whatever the message size. The
 * source is always read to its end, even after a failure, so an SMTP session stays in step and
 * can send its next message. Nothing is visible in the queue until the commit succeeds; any
 * failure before it discards what was written and reaches the caller as an SmtpError.
 */
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { SmtpError, asSmtpError } from '../errors/smtp-error.js';
import { readChunks } from './read-chunks.js';
import { logEvent } from '../log/logger.js';
import { BodyHasher } from '../message/body-hash.js';
import { HeaderSplitter, HeaderTooLargeError } from '../message/header-split.js';
import { addMissingHeaders, addReceived, firstValue, parseHeaders } from '../message/headers.js';
import { createLineEndNormalizer } from '../message/line-ends.js';
import type { HookEnvelope, MessageInfo, StoredMessageInfo } from '../plugins/hooks.js';
import type { HookRunner } from '../plugins/runner.js';
import type { DiskGuard } from '../queue/disk-space.js';
import type { BatchOp } from '../store/group-commit.js';
import type { QueueStore } from '../queue/store.js';
import type { BodyWriter } from '../queue/body-writer.js';
import type { DeliveryRow, MessageMeta, Origin, RecipientDsn } from '../queue/types.js';
import { reasonClass, type ReasonClass } from '../errors/reason-class.js';
import { domainOf, type ZoneSelector } from '../zones/select.js';

export interface IngestRequest {
  from: string;
  to: readonly string[];
  origin: Origin;
  source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>;
  maxSizeBytes: number;
  /** the client's HELO name, for the Received header */
  helo?: string;
  hideClientInfo?: boolean;
  /** extra fields for hooks (the SMTP session) */
  session?: HookEnvelope['session'];
  /** DSN parameters (RFC 3461): RET and ENVID, and NOTIFY/ORCPT per recipient (lower case) */
  dsn?: { ret?: 'FULL' | 'HDRS'; envid?: string; recipients?: ReadonlyMap<string, RecipientDsn> };
  /** queue changes committed in the same synced batch as the message (a DSN carries the
   * removal of the row it reports on) */
  carried?: readonly BatchOp[];
}

export interface DoorTally {
  accepted(door: Origin['via']): void;
  rejected(door: Origin['via'], reason: ReasonClass): void;
}

export interface IngestResult {
  id: string;
  messageId: string;
  recipients: { seq: number; recipient: string; zone: string }[];
}

/** How far in the future a Date header may hold a message. */
const MAX_FUTURE_MS = 365 * 24 * 3600 * 1000;
/** A Date this little ahead is clock skew, not a request to wait. */
const FUTURE_SLACK_MS = 60 * 1000;

export class Ingest {
  constructor(
    private readonly deps: {
      config: Config;
      store: QueueStore;
      hooks: HookRunner;
      zones: ZoneSelector;
      disk: DiskGuard;
      logger: Logger;
      /**
       * Told after each commit what was queued (the scheduler hands it to waiting workers), with
       * the body's chunks when they were kept in memory (see `retainBodyUpTo`).
       */
      onQueued?: (meta: MessageMeta, rows: DeliveryRow[], body: Buffer[] | undefined) => void;
      /** keep the chunks of bodies up to this size for onQueued (0 or unset: never) */
      retainBodyUpTo?: number;
      /** told of every chunk's size as a message streams in (the master's GcNudge) */
      onBytes?: (n: number) => void;
      /** counts what each door accepted and refused (the metrics) */
      tally?: DoorTally;
    },
  ) {}

  async ingest(req: IngestRequest): Promise<IngestResult> {
    const { store, logger } = this.deps;
    const id = store.newId();
    const envelope: HookEnvelope = { id, from: req.from, to: [...req.to], origin: req.origin, session: req.session };
    const writer = store.bodyWriter(id, this.deps.retainBodyUpTo ?? 0);
    try {
      const parsed = await this.streamBody(req, envelope, writer);
      const result = await this.commit(req, envelope, writer, parsed);
      this.deps.tally?.accepted(req.origin.via);
      logEvent(logger, 'QUEUED', {
        id,
        from: req.from,
        rcpts: result.recipients.length,
        messageId: result.messageId,
        via: req.origin.via,
        user: req.origin.user,
      });
      return result;
    } catch (err) {
      await writer.discard();
      const smtpErr = asSmtpError(err, () => {
        logEvent(logger, 'STORE_FAILED', { id, err }, `storing ${id} failed: ${(err as Error)?.message ?? err}`);
        return SmtpError.storageFailed();
      });
      this.refused(req.origin.via, smtpErr);
      if (smtpErr !== err || smtpErr.responseCode >= 500) {
        logEvent(logger, 'NOQUEUE', { id, from: req.from, code: smtpErr.responseCode, reason: smtpErr.message });
      }
      throw smtpErr;
    }
  }

  /** Counts a refusal made before ingest (an envelope command the SMTP feeder refused). */
  refused(door: Origin['via'], err: SmtpError): void {
    this.deps.tally?.rejected(door, reasonClass(err));
  }

  /** Reads the whole source; returns the parsed headers and the body's size and hash. */
  private async streamBody(req: IngestRequest, envelope: HookEnvelope, writer: BodyWriter) {
    const { config } = this.deps;
    const normalizer = createLineEndNormalizer();
    const splitter = new HeaderSplitter(config.queue.maxHeaderSize);
    const hasher = new BodyHasher({ crlfOnly: true });
    let received = 0;
    // the same admission rule as MAIL FROM (room for the largest allowed message on top of the
    // reserve), here so that POST /send gets it too; decided before anything is written. The
    // reserve is kept for our own notices: a DSN is not held to it
    let failure: unknown = internal(req) || this.deps.disk.hasRoom(req.maxSizeBytes * 1.5) ? undefined : SmtpError.insufficientStorage();
    let info: MessageInfo | undefined;

    const take = async (chunk: Buffer) => {
      const body = splitter.push(chunk);
      if (!info && splitter.done) info = await this.onHeaders(req, envelope, splitter.headerBlock);
      if (body.length) {
        hasher.update(body);
        await writer.write(body);
      }
    };

    const source = req.source instanceof Readable ? readChunks(req.source) : req.source;
    for await (const raw of source) {
      const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
      received += chunk.length;
      this.deps.onBytes?.(chunk.length);
      if (failure) continue; // keep reading so the client stays in step
      if (received > req.maxSizeBytes) {
        failure = SmtpError.messageTooBig(req.maxSizeBytes);
        continue;
      }
      try {
        await take(normalizer.push(chunk));
      } catch (err) {
        failure = err instanceof HeaderTooLargeError ? SmtpError.headersTooBig(config.queue.maxHeaderSize) : err;
      }
    }
    if (failure) throw failure;
    await take(normalizer.end());
    splitter.finish();
    if (!info) info = await this.onHeaders(req, envelope, splitter.headerBlock);
    return { info, bodySize: writer.bytes, bodyHash: hasher.digest() };
  }

  /** Runs as soon as the header block is complete, before the body streams on. */
  private async onHeaders(req: IngestRequest, envelope: HookEnvelope, block: Buffer): Promise<MessageInfo> {
    const { config, hooks } = this.deps;
    const headers = parseHeaders(block);
    // counted before our own is added: a limit of 50 lets a message in with 50
    const received = headers.get('received').length;
    if (received > config.queue.maxReceivedHeaders) throw SmtpError.mailLoop(received);
    const info: MessageInfo = { headers };
    await hooks.run('message:headers', envelope, info);
    const now = new Date();
    info.messageId = addMissingHeaders(headers, config.hostname, now);
    addReceived(headers, {
      id: envelope.id,
      hostname: config.hostname,
      origin: req.origin,
      helo: req.helo,
      recipient: envelope.to.length === 1 ? envelope.to[0] : undefined,
      hideClientInfo: req.hideClientInfo ?? false,
      now,
    });
    return info;
  }

  private async commit(
    req: IngestRequest,
    envelope: HookEnvelope,
    writer: BodyWriter,
    parsed: { info: MessageInfo; bodySize: number; bodyHash: string },
  ): Promise<IngestResult> {
    const { config, store, hooks, zones, disk } = this.deps;
    const headers = parsed.info.headers;
    const info: StoredMessageInfo = Object.assign(parsed.info, {
      messageId: parsed.info.messageId ?? '',
      size: 0,
      bodyHash: parsed.bodyHash,
      // the header block as it is when read, then the body as stored (all of it by now)
      read: () => Readable.from(storedMessage(headers, writer)),
    });
    // the size costs a build of the header block (a regex pass and a copy): only when a hook asks
    Object.defineProperty(info, 'size', { enumerable: true, get: () => headers.build().length + parsed.bodySize });
    await hooks.run('message:store', envelope, info);

    const recipients = envelope.to;
    const routing = { recipients, zones: zones.select(info.headers, envelope.from, recipients) };
    await hooks.run('queue:route', envelope, routing);
    for (const zone of routing.zones) if (!zones.has(zone)) throw SmtpError.unknownZone(zone);
    // hooks may have changed headers; the stored block is the final one
    const headerBlock = info.headers.build();
    if (!internal(req) && !disk.hasRoom(0)) throw SmtpError.insufficientStorage();

    const now = Date.now();
    const deferUntil = config.queue.futureDate ? futureDate(info.headers.getFirst('date'), now) : undefined;
    const meta: MessageMeta = {
      id: envelope.id,
      created: now,
      from: envelope.from,
      rcptCount: recipients.length,
      headers: headerBlock.toString('latin1'),
      bodySize: parsed.bodySize,
      size: headerBlock.length + parsed.bodySize,
      chunks: writer.chunks,
      bodyHash: parsed.bodyHash,
      messageId: info.messageId,
      subject: firstValue(info.headers, 'subject'),
      origin: req.origin,
      ...(deferUntil ? { deferUntil } : {}),
      ...(req.dsn?.ret || req.dsn?.envid ? { dsn: { ...(req.dsn.ret ? { ret: req.dsn.ret } : {}), ...(req.dsn.envid ? { envid: req.dsn.envid } : {}) } } : {}),
    };
    const rows: DeliveryRow[] = recipients.map((recipient, i) => ({
      id: envelope.id,
      seq: i + 1,
      zone: routing.zones[i]!,
      recipient,
      domain: domainOf(recipient),
      status: 'queued',
      created: now,
      due: deferUntil ?? now,
      attempts: 0,
      ...req.dsn?.recipients?.get(recipient.toLowerCase()),
    }));
    await store.commitMessage(meta, rows, writer, req.carried);
    this.deps.onQueued?.(meta, rows, writer.retained);
    // after the commit the message is ours: a notification hook must not delay or undo the 250
    void hooks.notify('message:queue', envelope, info);
    return {
      id: envelope.id,
      messageId: meta.messageId,
      recipients: rows.map((r) => ({ seq: r.seq, recipient: r.recipient, zone: r.zone })),
    };
  }
}

/** A notice of our own (a DSN), not a client's message: the free-space reserve is kept for it. */
function internal(req: IngestRequest): boolean {
  return req.origin.via === 'bounce';
}

async function* storedMessage(headers: MessageInfo['headers'], writer: BodyWriter): AsyncGenerator<Buffer> {
  yield headers.build();
  yield* writer.read();
}

function futureDate(value: string, nowMs: number): number | undefined {
  if (!value) return undefined;
  const t = Date.parse(value);
  if (!Number.isFinite(t) || t <= nowMs + FUTURE_SLACK_MS) return undefined;
  return Math.min(t, nowMs + MAX_FUTURE_MS);
}
