/**
 * core/delivery-counters — counts delivery results per zone (delivered, deferred, bounced) in the
 * master, where every result is recorded (queue:outcome), and serves them at GET /metrics in
 * Prometheus' text format:
 *
 *   # HELP sluice_deliveries_total Delivery attempts by zone and result.
 *   # TYPE sluice_deliveries_total counter
 *   sluice_deliveries_total{zone="default",result="delivered"} 42
 *
 * Labels are the zone (from the config: a bounded set) and the result, never a sender, a
 * recipient or a domain, so the number of series stays small whatever the traffic. Counters
 * start at 0 for every zone and live as long as the process (Prometheus handles resets).
 *
 *   [plugins."core/delivery-counters"]
 *   enabled = ["main"]
 *   urlPath = "/metrics"         # where the counters are served
 */
import type { PluginApp } from '../../lib/plugins/api.js';

export const title = 'Delivery counters per zone (Prometheus)';

const RESULTS = ['delivered', 'deferred', 'bounced'] as const;
type Result = (typeof RESULTS)[number];

export function init(app: PluginApp): void {
  const o = app.options((s) => ({
    urlPath: s.default(s.string({ pattern: /^\/[A-Za-z0-9/_.-]*$/, hint: 'a path like "/metrics"' }), '/metrics'),
  }));
  const counts = new Map<string, Record<Result, number>>();
  for (const zone of Object.keys(app.globalConfig.zones)) counts.set(zone, { delivered: 0, deferred: 0, bounced: 0 });

  app.addHook('queue:outcome', (outcome) => {
    // only zones of the config: a label set that cannot grow
    const row = counts.get(outcome.zone);
    if (row) row[outcome.result]++;
  });

  app.addRoute({
    method: 'GET',
    url: o.urlPath,
    handler: async (_req, reply) => {
      const lines = ['# HELP sluice_deliveries_total Delivery attempts by zone and result.', '# TYPE sluice_deliveries_total counter'];
      for (const [zone, row] of counts) {
        for (const result of RESULTS) lines.push(`sluice_deliveries_total{zone="${escapeLabel(zone)}",result="${result}"} ${row[result]}`);
      }
      return reply.type('text/plain; version=0.0.4; charset=utf-8').send(lines.join('\n') + '\n');
    },
  });
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
