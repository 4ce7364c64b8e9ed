/**
 * F19 at the fault plan's sizes: 10,000 messages from unique sender domains
 * to 10,000 inboxes, 20,000 from unique subdomains of one registrable domain (against the default
 * 600 per minute), 5,000 to one inbox (default cap 200, default rate 120 per minute), from 200
 * addresses, 20 at a time, 1 KB each, into a 4 MB store. The scenario and its pass criteria are
 * in f19-scenario.ts.
 */
import { test } from 'node:test';
import { runF19 } from './f19-scenario.js';

test('F19 inbound at full size: 35,000 messages of abuse', { timeout: 900_000 }, () =>
  runF19({
    unique: 10_000,
    inboxes: 10_000,
    subdomains: 20_000,
    oneInbox: 5000,
    sourceAddresses: 200,
    bodyBytes: 1000,
    maxPerInbox: 200,
    maxStoreSize: '4MB',
    maxStoreBytes: 4 * 1024 * 1024,
    senderDomainPerMinute: 600,
  }));
