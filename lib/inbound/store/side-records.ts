/**
 * The inbox store's small records beside the mail: private inboxes and domains (the hash of each
 * one's key), altinbox aliases, webhook notifications not delivered yet, and values the inbox
 * keeps for itself (the alias secret). Same database and write rules as the rest of the inbox
 * store (inbox-store.ts): every write through its WriteGuard, the ones that must outlive a crash
 * synced through its group commit.
 */
import type { GroupCommitter } from '../../store/group-commit.js';
import type { LevelDb } from '../../store/level-db.js';
import type { WriteGuard } from '../../store/write-guard.js';
import type { WebhookEntry } from '../../webhooks/sender.js';
import { keys, PREFIX } from './keys.js';
import type { Reservation } from './types.js';

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const parse = <T>(buf: Buffer) => JSON.parse(buf.toString('utf8')) as T;

export class SideRecords {
  constructor(
    private readonly db: LevelDb,
    private readonly guard: WriteGuard,
    private readonly committer: GroupCommitter,
  ) {}

  /** Every private inbox or domain and the hash of its key. */
  async *reservations(): AsyncGenerator<Reservation> {
    for await (const value of this.db.values(keys.allOf(PREFIX.reservation))) yield parse<Reservation>(value);
  }

  /** Reserves a target (synced: an operator's change), or releases it with `undefined`. */
  async setReservation(target: string, reservation: Reservation | undefined): Promise<void> {
    const key = keys.reservation(target);
    await this.guard.write(() => this.committer.commit([reservation ? { type: 'put', key, value: json(reservation) } : { type: 'del', key }]));
  }

  /** The address an altinbox alias delivers to, if it is one. */
  async aliasTarget(alias: string): Promise<string | undefined> {
    return (await this.db.get(keys.alias(alias)))?.toString('utf8');
  }

  async setAlias(alias: string, address: string): Promise<void> {
    await this.guard.write(() => this.committer.commit([{ type: 'put', key: keys.alias(alias), value: Buffer.from(address) }]));
  }

  /** Webhook notifications not delivered yet (the inbox's webhook outbox). */
  async webhooks(): Promise<WebhookEntry[]> {
    const out: WebhookEntry[] = [];
    for await (const value of this.db.values(keys.allOf(PREFIX.webhook))) out.push(parse<WebhookEntry>(value));
    return out;
  }

  /** Keeps one notification (synced: it must outlive a crash), or forgets it with `undefined`. */
  async setWebhook(id: string, entry: WebhookEntry | undefined): Promise<void> {
    const key = keys.webhook(id);
    await this.guard.write(() => this.committer.commit([entry ? { type: 'put', key, value: json(entry) } : { type: 'del', key }]));
  }

  /** A value the inbox keeps for itself (the alias secret). */
  async setting(name: string): Promise<Buffer | undefined> {
    return this.db.get(keys.setting(name));
  }

  async setSetting(name: string, value: Buffer): Promise<void> {
    await this.guard.write(() => this.committer.commit([{ type: 'put', key: keys.setting(name), value }]));
  }
}
