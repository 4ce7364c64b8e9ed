/**
 * The receiver's metrics. Labels come from fixed lists (below) or the configured domains, so a
 * flood from 20,000 sender domains or to 10,000 inboxes adds no series.
 *
 * The SMTP door's own figures (connections, refusals, throttles, its gate) are counted on its
 * thread and read from there at each scrape (`door`); messages stored and the store's figures are
 * the master's.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { SmtpError } from '../errors/smtp-error.js';
import type { DoorCounters } from './door/protocol.js';

/** Why the receiver refused something: the `reason` label of sluice_inbound_rejected_total. */
export const REJECT_REASONS = [
  'relay_denied',
  'bad_address',
  'too_many_recipients',
  'too_big',
  'blocklist',
  'throttled',
  'overloaded',
  'store_full',
  'store_failed',
  'plugin',
  'other',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** The bounded `reason` label of a refusal, by its reply code. */
export function reasonFor(err: SmtpError): RejectReason {
  const { responseCode: code, enhancedStatus: status } = err;
  if (code === 550 && status === '5.7.1') return 'relay_denied';
  if (code === 553 || code === 501) return 'bad_address';
  if (code === 452 && status === '4.5.3') return 'too_many_recipients';
  if (code === 552) return 'too_big';
  if (code === 554) return 'blocklist';
  if ((code === 421 && status === '4.7.0') || code === 450) return 'throttled';
  if (code === 421 && status === '4.3.2') return 'overloaded';
  if (code === 452) return 'store_full';
  if (code === 451) return 'store_failed';
  return 'other';
}

export interface InboxGauges {
  messages: () => number;
  bytes: () => number;
  parseBacklog: () => number;
  evicted: () => { ttl: number; cap: number; size: number };
  /** the master's load gate: its last event-loop lag, ms */
  eventLoopLagMs: () => number;
  /** the SMTP door's totals (asked of its thread at each scrape) */
  door: () => Promise<DoorCounters>;
}

export class InboundMetrics {
  readonly messages: Counter<'domain'>;

  constructor(registry: Registry, domains: readonly string[], gauges: InboxGauges) {
    this.messages = new Counter({ name: 'sluice_inbound_messages_total', help: 'Messages stored by the inbound receiver, by configured domain.', labelNames: ['domain'], registers: [registry] });
    for (const domain of domains) this.messages.inc({ domain }, 0);
    // one question to the door's thread per scrape, shared by the series below
    let asked: Promise<DoorCounters> | undefined;
    const door = () => (asked ??= gauges.door().finally(() => setImmediate(() => (asked = undefined))));
    countFrom(registry, 'sluice_inbound_connections_total', 'Connections to the inbound receiver, by result (accepted or refused).', 'result', async () => (await door()).connections);
    countFrom(registry, 'sluice_inbound_rejected_total', 'Commands the inbound receiver refused, by reason.', 'reason', async () => ({ ...ZERO_REASONS, ...(await door()).rejected }));
    const gauge = (name: string, help: string, value: () => number | Promise<number>) =>
      new Gauge({ name, help, registers: [registry], async collect() { this.set(await value()); } });
    gauge('sluice_inbox_messages', 'Messages in the inbox store.', gauges.messages);
    gauge('sluice_inbox_bytes', 'Raw bytes of the messages in the inbox store.', gauges.bytes);
    gauge('sluice_inbox_parse_backlog', 'Stored messages waiting to be parsed.', gauges.parseBacklog);
    gauge('sluice_inbound_event_loop_lag_seconds', "Event-loop delay (p99) the load gate last measured: the master's or the SMTP door thread's, the larger.", async () => Math.max(gauges.eventLoopLagMs(), (await door()).lagMs) / 1000);
    countFrom(registry, 'sluice_inbox_evicted_total', 'Messages removed by retention, by reason (ttl, cap, size).', 'reason', async () => gauges.evicted());
    countFrom(registry, 'sluice_inbound_throttled_total', 'Connections and messages refused by a rate tier or the load gate, by tier.', 'tier', async () => {
      const d = await door();
      return { ...d.throttled, load: d.loadRefused };
    });
  }
}

const ZERO_REASONS = Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>;

/** A counter that follows running totals kept elsewhere (it adds what they grew by since the last scrape). */
function countFrom(registry: Registry, name: string, help: string, label: string, totals: () => Promise<Record<string, number>>): void {
  const seen = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    async collect() {
      for (const [value, total] of Object.entries(await totals())) {
        // totals only grow (the door adds a dead thread's last totals to its new thread's)
        this.inc({ [label]: value }, Math.max(0, total - (seen.get(value) ?? 0)));
        seen.set(value, Math.max(total, seen.get(value) ?? 0));
      }
    },
  });
}
