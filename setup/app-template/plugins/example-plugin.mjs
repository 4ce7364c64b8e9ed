// An example Sluice plugin: refuses recipients at some domains during the SMTP dialogue.
//
// NOT LOADED YET. Sluice runs its hooks already, but the plugin loader (reading [plugins] from
// config.toml and importing this file) comes in a later release. Until then this file is a
// template. Once the loader is there, enable it in config.toml:
//
//   [plugins."example-plugin"]
//   enabled = ["main"]              # "main": the process that accepts mail
//   path = "plugins/example-plugin.mjs"
//
// A plugin is a plain ES module (this .mjs file) with a `title` and an `init(app)`. `init`
// registers hooks with app.addHook(name, handler); a handler is an async function. To reject,
// throw an Error with a `responseCode` (and, if you like, an `enhancedStatus`): the client gets
// that SMTP reply. Any other error, or a handler slower than hooks.timeout, is a temporary
// failure (451). Sluice's README lists the hooks and their arguments ("Hooks").

export const title = 'Example: refuse recipients at some domains';

// Lower-case domains whose recipients are refused.
const BLOCKED_DOMAINS = new Set(['blocked.example.test']);

export function init(app) {
  // smtp:rcpt_to runs for every RCPT TO command with (address, session); address.address is
  // the recipient as the client wrote it, session.remoteAddress the client's IP address.
  app.addHook('smtp:rcpt_to', async (address, session) => {
    const at = address.address.lastIndexOf('@');
    const domain = address.address.slice(at + 1).toLowerCase();
    if (BLOCKED_DOMAINS.has(domain)) {
      const err = new Error(`Recipients at ${domain} are not accepted (client ${session.remoteAddress})`);
      err.responseCode = 550;
      err.enhancedStatus = '5.7.1';
      throw err;
    }
  });
}
