/**
 * The receiver's metrics. Labels come from fixed lists (below) or the configured domains, so a
 * flood from 20,000 sender domains or to 10,000 inboxes adds no series.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ThrottleTier } from './throttle.js';

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

export interface InboxGauges {
  messages: () => number;
  bytes: () => number;
  parseBacklog: () => number;
  evicted: () => { ttl: number; cap: number; size: number };
  throttled: () => Record<ThrottleTier, number>;
  loadRefused: () => number;
  eventLoopLagMs: () => number;
}

export class InboundMetrics {
  readonly connections: Counter<'result'>;
  readonly messages: Counter<'domain'>;
  readonly rejected: Counter<'reason'>;

  constructor(registry: Registry, domains: readonly string[], gauges: InboxGauges) {
    this.connections = new Counter({ name: 'sluice_inbound_connections_total', help: 'Connections to the inbound receiver, by result (accepted or refused).', labelNames: ['result'], registers: [registry] });
    this.messages = new Counter({ name: 'sluice_inbound_messages_total', help: 'Messages stored by the inbound receiver, by configured domain.', labelNames: ['domain'], registers: [registry] });
    this.rejected = new Counter({ name: 'sluice_inbound_rejected_total', help: 'Commands the inbound receiver refused, by reason.', labelNames: ['reason'], registers: [registry] });
    for (const result of ['accepted', 'refused']) this.connections.inc({ result }, 0);
    for (const domain of domains) this.messages.inc({ domain }, 0);
    for (const reason of REJECT_REASONS) this.rejected.inc({ reason }, 0);
    const gauge = (name: string, help: string, value: () => number) =>
      new Gauge({ name, help, registers: [registry], collect() { this.set(value()); } });
    gauge('sluice_inbox_messages', 'Messages in the inbox store.', gauges.messages);
    gauge('sluice_inbox_bytes', 'Raw bytes of the messages in the inbox store.', gauges.bytes);
    gauge('sluice_inbox_parse_backlog', 'Stored messages waiting to be parsed.', gauges.parseBacklog);
    gauge('sluice_inbound_event_loop_lag_seconds', 'Event-loop delay (p99) the load gate last measured.', () => gauges.eventLoopLagMs() / 1000);
    countFrom(registry, 'sluice_inbox_evicted_total', 'Messages removed by retention, by reason (ttl, cap, size).', 'reason', gauges.evicted);
    countFrom(registry, 'sluice_inbound_throttled_total', 'Connections and messages refused by a rate tier or the load gate, by tier.', 'tier', () => ({ ...gauges.throttled(), load: gauges.loadRefused() }));
  }
}

/** A counter that follows running totals kept elsewhere (it adds what they grew by since the last scrape). */
function countFrom(registry: Registry, name: string, help: string, label: string, totals: () => Record<string, number>): void {
  const seen = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      for (const [value, total] of Object.entries(totals())) {
        this.inc({ [label]: value }, total - (seen.get(value) ?? 0));
        seen.set(value, total);
      }
    },
  });
}
