/**
 * `sluice create DIR`: a new app dir with a commented config.toml, plugins/ (with a commented
 * example plugin), keys/ and data/. Refuses to overwrite an existing config.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const CONFIG = `# Sluice app config. Every key and its default is documented in Sluice's config/default.toml;
# anything set here is laid over those defaults. Check it with: sluice check-config -d .

hostname = "mta.example.test"

[smtp]
host = "127.0.0.1"
port = 2525
# Users who may log in (make a hash with: sluice hash-password)
# [smtp.users]
# alice = "scrypt$..."

[api]
host = "127.0.0.1"
port = 8080

[queue]
path = "data/queue"

[zones.default]
processes = 1
connections = 5

# [zones.bulk]
# senderDomains = ["news.example.test"]

# Plugins: core ones by name, your own by path. Remove the # marks to try the example plugin
# in plugins/my-plugin.js (the hooks and their arguments are listed in Sluice's plugins/README.md).
# [plugins."my-plugin"]
# enabled = ["main"]                  # "main" (accepting mail), "sender" (delivering), or both
# path = "plugins/my-plugin.js"
# blockedDomains = ["blocked.example.test"]     # any other key is the plugin's option
#
# [plugins."core/headers"]
# enabled = ["main"]
# remove = ["Bcc"]
# add = { "X-Mailer" = "Sluice" }
`;

export const EXAMPLE_PLUGIN = `// An example Sluice plugin: a plain ES module with a title and an init(app) function.
// Enable it in config.toml:
//
//   [plugins."my-plugin"]
//   enabled = ["main"]
//   path = "plugins/my-plugin.js"
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
      throw app.reject(550, \`Mail to \${domain} is not accepted here\`, '5.7.1');
    }
  });

  // Every message, SMTP and HTTP alike: mark it with a header (stored with the message).
  app.addHook('message:headers', async (envelope, messageInfo) => {
    messageInfo.headers.add('X-My-Plugin', 'seen', Infinity);
  });
}
`;

const KEYS_README = `Put DKIM private keys here (mode 0600), and name them in config.toml under [[dkim.keys]].\n`;

export function createAppDir(dir: string): string {
  const root = path.resolve(dir);
  const configFile = path.join(root, 'config.toml');
  if (existsSync(configFile)) throw new Error(`${configFile} exists already; not overwriting it`);
  for (const sub of ['plugins', 'keys', 'data']) mkdirSync(path.join(root, sub), { recursive: true, mode: sub === 'keys' ? 0o700 : 0o755 });
  writeFileSync(configFile, CONFIG);
  writeFileSync(path.join(root, 'keys', 'README'), KEYS_README);
  // never over a file of the user's
  if (!existsSync(path.join(root, 'plugins', 'my-plugin.js'))) writeFileSync(path.join(root, 'plugins', 'my-plugin.js'), EXAMPLE_PLUGIN);
  return root;
}
