/**
 * F19 at CI size: 1,000 messages from unique sender domains to 500 inboxes,
 * 400 from unique subdomains of one registrable domain (against 200 per minute) with a control
 * domain mixed in, 60 to one inbox capped at 20, from 50 addresses, 2 KB each, into a 1 MB store.
 * The scenario and its pass criteria are in f19-scenario.ts; f19-inbound-abuse.slow.test.ts runs
 * the fault plan's own sizes.
 */
import { test } from 'node:test';
import { runF19 } from './f19-scenario.js';

test('F19 inbound: unique sender subdomains, metric series, per-inbox cap, store size, RSS, API latency', { timeout: 120_000 }, () =>
  runF19({
    unique: 1000,
    inboxes: 500,
    subdomains: 400,
    oneInbox: 60,
    sourceAddresses: 50,
    bodyBytes: 2000,
    maxPerInbox: 20,
    maxStoreSize: '1MB',
    maxStoreBytes: 1024 * 1024,
    senderDomainPerMinute: 200,
  }));
