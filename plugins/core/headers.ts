/**
 * core/headers — add, set, remove and rewrite headers by rule. Also the reference plugin: it
 * uses only the public API (`import type` from lib/plugins/api, everything else through `app`),
 * as any plugin in an app dir would.
 *
 *   [plugins."core/headers"]
 *   enabled = ["main"]                 # main: at accept (message:headers); sender: per delivery
 *   remove = ["Bcc", "X-Originating-IP"]
 *   add = { "X-Mailer" = "Sluice" }    # added when the message has none
 *   set = { "Organization" = "Example" }   # replaces whatever is there
 *   [[plugins."core/headers".rewrite]]
 *   header = "Subject"                 # each value of this header …
 *   match = "^\\[ext\\]\\s*"           # … where this regular expression matches …
 *   replace = ""                       # … gets this instead ($1 etc. work)
 *
 * Order: remove, rewrite, set, add. In the main process the rules run before Sluice adds
 * Message-ID, Date and Received, so those cannot be touched by mistake.
 */
import type { MessageHeaders, PluginApp } from '../../lib/plugins/api.js';

export const title = 'Header rules';

const NAME = /^[!-9;-~]+$/; // RFC 5322 field name: printable ASCII except ":"

export function init(app: PluginApp): void {
  const o = app.options((s) => ({
    remove: s.default(s.list(s.string({ pattern: NAME, hint: 'a header name' })), []),
    add: s.default(s.map(s.string({ pattern: /^[^\r\n]*$/, hint: 'a one-line value' }), { keyPattern: NAME }), {}),
    set: s.default(s.map(s.string({ pattern: /^[^\r\n]*$/, hint: 'a one-line value' }), { keyPattern: NAME }), {}),
    rewrite: s.default(s.list(s.object({ header: s.string({ pattern: NAME, hint: 'a header name' }), match: s.string(), replace: s.default(s.string({ pattern: /^[^\r\n]*$/ }), '') })), []),
  }));
  const rewrites = o.rewrite.map((r, i) => {
    try {
      return { header: r.header, match: new RegExp(r.match, 'g'), replace: r.replace };
    } catch (err) {
      throw new Error(`rewrite[${i}].match: not a regular expression: ${(err as Error).message}`);
    }
  });

  const apply = (headers: MessageHeaders): void => {
    for (const name of o.remove) headers.remove(name);
    for (const { header, match, replace } of rewrites) {
      const key = header.toLowerCase();
      const found = headers
        .getList()
        .map((h, at) => ({ at, key: h.key, value: h.line.slice(h.line.indexOf(':') + 1).replace(/\r?\n[ \t]/g, ' ').trim() }))
        .filter((h) => h.key === key);
      const changed = found.map((h) => ({ ...h, value: h.value.replace(match, replace).replace(/[\r\n]+/g, ' ') }));
      if (changed.every((h, i) => h.value === found[i]!.value)) continue;
      headers.remove(header);
      // back at their old places: inserting in ascending order restores each index
      for (const h of changed) headers.add(header, h.value, h.at);
    }
    for (const [name, value] of Object.entries(o.set)) headers.update(name, value);
    for (const [name, value] of Object.entries(o.add)) if (!headers.hasHeader(name)) headers.add(name, value, Infinity);
  };

  app.addHook('message:headers', (_envelope, info) => apply(info.headers));
  app.addHook('sender:headers', (delivery) => apply(delivery.headers));
}
