// An example Sluice plugin: a plain ES module (.mjs, so Node reads it as one without a
// package.json) with a title and an init(app) function.
// Enable it in config.toml:
//
//   [plugins."my-plugin"]
//   enabled = ["main"]
//   path = "plugins/my-plugin.mjs"
//   blockedDomains = ["blocked.example.test"]
//
// init(app) runs once at start; it registers hooks with app.addHook(name, handler). Handlers
// are async functions. To refuse, throw app.reject(code, text, enhancedStatus): the client gets
// that reply. Any other error is logged with this plugin's name and the client gets a
// temporary 451, so a bug here never takes the server down. Every hook, its arguments and what
// a handler may change are listed in Sluice's plugins/README.md.

export const title = 'My plugin';

export function init(app) {
  // app.config holds this plugin's keys from config.toml; app.options() checks and types them
  // (a wrong key stops the start with a clear message) and fills in defaults.
  const options = app.options((s) => ({
    blockedDomains: s.default(s.list(s.string()), []),
  }));
  const blocked = new Set(options.blockedDomains.map((d) => d.toLowerCase()));

  // RCPT TO: refuse recipients at blocked domains while the client is still talking.
  app.addHook('smtp:rcpt_to', async (address, session) => {
    const domain = address.address.slice(address.address.lastIndexOf('@') + 1).toLowerCase();
    if (blocked.has(domain)) {
      app.logger.info({ ip: session.remoteAddress, domain }, 'refused a blocked domain');
      throw app.reject(550, `Mail to ${domain} is not accepted here`, '5.7.1');
    }
  });

  // Every message, SMTP and HTTP alike: mark it with a header (stored with the message).
  app.addHook('message:headers', async (envelope, messageInfo) => {
    messageInfo.headers.add('X-My-Plugin', 'seen', Infinity);
  });
}
