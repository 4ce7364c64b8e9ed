/**
 * altinbox aliases (Maildrop's feature): every address has an alias at the same domain,
 * `alt-<16 letters and digits>@domain`, that delivers into the real inbox and records the alias as
 * the address the mail was sent to. Hand out the alias where the real address must not be seen;
 * nobody can tell the real address from it.
 *
 * The alias is an HMAC of the address under a secret (inbound.aliasSecret, or one the store makes
 * and keeps on first use), so the same address always gets the same alias, and without the secret
 * neither can be had from the other. An HMAC cannot be undone even with the secret, so the store
 * remembers each alias it has given out; mail for an alias never asked for is like mail for any
 * other address.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { SideRecords } from './store/side-records.js';

export const ALIAS_PREFIX = 'alt-';
const SECRET_SETTING = 'alias-secret';
/** base32 letters: readable, one case, no padding */
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

export class Aliases {
  private secret: Buffer | undefined;

  constructor(
    private readonly store: SideRecords,
    private readonly configured: string | undefined,
  ) {}

  /** The alias of an inbox address; remembered, so mail to it finds the inbox. */
  async aliasFor(address: string): Promise<string> {
    const at = address.lastIndexOf('@');
    const mac = createHmac('sha256', await this.key()).update(address).digest();
    let local = ALIAS_PREFIX;
    for (let i = 0; i < 16; i++) local += BASE32[mac[i]! & 31];
    const alias = `${local}@${address.slice(at + 1)}`;
    if ((await this.store.aliasTarget(alias)) !== address) await this.store.setAlias(alias, address);
    return alias;
  }

  /** The address an alias delivers to, or undefined when it is not one given out. */
  async resolve(address: string): Promise<string | undefined> {
    if (!address.startsWith(ALIAS_PREFIX)) return undefined;
    return this.store.aliasTarget(address);
  }

  private async key(): Promise<Buffer> {
    if (this.secret) return this.secret;
    if (this.configured) return (this.secret = Buffer.from(this.configured));
    let stored = await this.store.setting(SECRET_SETTING);
    if (!stored) {
      stored = randomBytes(32);
      await this.store.setSetting(SECRET_SETTING, stored);
    }
    return (this.secret = stored);
  }
}
