/**
 * A TypeScript plugin written the way a plugin author would, importing its types from the
 * package entry "sluice/plugin". It compiles with the rest (so the entry and the types stay
 * usable), and a test loads the compiled file as a plugin.
 */
import type { Delivery, PluginApp } from 'sluice/plugin';

export const title = 'Typed plugin';

export function init(app: PluginApp): void {
  const o = app.options((s) => ({ domain: s.string(), header: s.default(s.string(), 'X-Typed') }));
  app.addHook('smtp:rcpt_to', async (address) => {
    // address.address is a string, typed through the hook map
    if (address.address.endsWith(`@${o.domain}`)) throw app.reject(550, `No mail to ${o.domain}`, '5.7.1');
  });
  app.addHook('message:headers', (_envelope, info) => {
    info.headers.add(o.header, 'yes', Infinity);
  });
  app.addHook('sender:headers', (delivery: Delivery) => {
    delivery.headers.add(o.header, delivery.zone, Infinity);
  });
}
