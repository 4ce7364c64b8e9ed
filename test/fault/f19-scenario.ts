/**
 * F19, disposable-inbox abuse, as one scenario at two sizes (f19-*.test.ts):
 *
 *   A  mail from unique sender domains, four labels deep, each its own registrable domain (no
 *      throttle tier joins them), to many inboxes, from many addresses, 20 at a time;
 *   B  mail from unique subdomains of one registrable domain (s@a<i>.b.c.d.e.f.sender.test),
 *      the Mailsac flood: the per-sender-domain tier must see one sender and refuse it with
 *      421 4.7.0 past its rate, while other domains' mail from the same addresses goes on;
 *   C  mail to one inbox: its rate tier answers 450 past its rate, and the inbox never lists more
 *      than its cap, the newest.
 *
 * Through it all: GET /metrics has exactly the same sluice series before and after (Node's own
 * runtime series may add a GC kind; they are reported and bounded by the fault plan's 500); the
 * store's raw bytes stay within maxStoreSize plus its 10% admission margin, and full, it keeps
 * taking mail (the oldest go; at most 1% of answers are 452 "store full"); the receiver's RSS
 * grows by at most 200 MB; and an API client polling an inbox and its newest message throughout
 * sees p95 ≤ 200 ms. The receiver is a child `sluice run`, so its memory is its own; everything
 * is read from it over HTTP (the API and GET /metrics). The tiers per client address are
 * off here (F9 tests them), so that only the sender-domain and inbox tiers refuse.
 */
import assert from 'node:assert/strict';
import { budgetMs } from '../helpers/budget.js';
import { waitFor } from '../helpers/delivery-kit.js';
import { rssBytes, startSluiceWith } from '../helpers/sluice-child.js';
import { deliver, INBOX_DOMAIN, isRuntimeSeries, loopbackAddresses, mb, percentile, scrapeSeries, type Delivery } from './inbound-kit.js';

export interface F19Size {
  /** phase A: messages, each from its own sender domain, to `inboxes` inboxes */
  unique: number;
  inboxes: number;
  /** phase B: messages from unique subdomains of one registrable domain */
  subdomains: number;
  /** phase C: messages to one inbox */
  oneInbox: number;
  sourceAddresses: number;
  bodyBytes: number;
  maxPerInbox: number;
  maxStoreSize: string;
  maxStoreBytes: number;
  senderDomainPerMinute: number;
}

const CONCURRENCY = 20;
const HOT = `hot@${INBOX_DOMAIN}`;
const STORE_FULL = 452;

interface Outcome {
  i: number;
  r: Delivery;
}

/** 452 answers (store full) seen by flood(), retried ones included */
let storeFull = 0;
let deliveries = 0;

/** `count` deliveries, CONCURRENCY at a time, from the given addresses in turn; a 452 (store full) is retried. */
async function flood(port: number, count: number, addresses: string[], mail: (i: number) => { from: string; to: string }, bodyBytes: number): Promise<Outcome[]> {
  const out: Outcome[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) {
        const i = next++;
        for (let attempt = 0; ; attempt++) {
          const r = await deliver(port, { localAddress: addresses[i % addresses.length]!, ...mail(i), testId: `f19-${i}`, bodyBytes });
          deliveries++;
          if (r.code === STORE_FULL) storeFull++;
          if (r.code !== STORE_FULL || attempt >= 20) {
            out.push({ i, r });
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    }),
  );
  return out.sort((a, b) => a.i - b.i);
}

const tally = (outcomes: Outcome[]) => {
  const t: Record<string, number> = {};
  for (const { r } of outcomes) {
    const k = r.code ? String(r.code) : r.outcome;
    t[k] = (t[k] ?? 0) + 1;
  }
  return t;
};

/** A sample of a scrape: the value of the series `name{labels}` (0 when absent). */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

export async function runF19(size: F19Size): Promise<void> {
  storeFull = 0;
  deliveries = 0;
  const child = await startSluiceWith({
    api: { port: 0 },
    inbound: {
      domains: [INBOX_DOMAIN],
      maxPerInbox: size.maxPerInbox,
      maxStoreSize: size.maxStoreSize,
      api: { ratePerMinute: 0 },
      // the tiers per client address are F9's: here they would only blur which tier refused
      throttle: { messagesPerMinutePerSenderDomain: size.senderDomainPerMinute, connectionsPerMinutePerIp: 0, messagesPerMinutePerIp: 0 },
    },
  });
  const port = child.port('inbound');
  const api = `http://127.0.0.1:${child.port('api')}`;
  const metrics = async () => (await fetch(`${api}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const storeBytes = async () => sample(await metrics(), 'sluice_inbox_bytes');
  const addresses = loopbackAddresses(19, size.sourceAddresses);
  let sampling = true;
  let maxBytes = 0;
  const rssBefore = rssBytes(child.pid);
  let rssPeak = rssBefore;
  const sampler = (async () => {
    while (sampling) {
      rssPeak = Math.max(rssPeak, rssBytes(child.pid));
      maxBytes = Math.max(maxBytes, await storeBytes());
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();
  const apiTimes: number[] = [];
  const apiErrors: string[] = [];
  try {
    const seed = await deliver(port, { localAddress: addresses[0]!, to: `r1@${INBOX_DOMAIN}`, testId: 'f19-seed' });
    assert.equal(seed.outcome, '250', `seed message: ${seed.text}`);
    const seriesBefore = await scrapeSeries(api);

    // an API client polling an inbox and its newest message, as a test suite waiting for its mail
    // does (a message may be evicted between the two requests: that 404 is an answer too)
    const poller = (async () => {
      let newest = seed.queueId!;
      for (let n = 0; sampling && n < 100_000; n++) {
        const url = n % 2 ? `${api}/api/messages/${newest}` : `${api}/api/inboxes/r1@${INBOX_DOMAIN}/messages?limit=${size.maxPerInbox}`;
        const t0 = performance.now();
        const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
        const body = await res.text();
        apiTimes.push(performance.now() - t0);
        if (res.status === 200 && n % 2 === 0) newest = (JSON.parse(body) as { messages: { id: string }[] }).messages[0]?.id ?? newest;
        const ok = res.status === 200 || (res.status === 404 && n % 2 === 1);
        if (!ok && apiErrors.length < 5) apiErrors.push(`${url}: ${res.status} ${body.slice(0, 200)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();

    const a = await flood(port, size.unique, addresses, (i) => ({ from: `s${i}@x${i}.y.z.org${i}.test`, to: `r${i % size.inboxes}@${INBOX_DOMAIN}` }), size.bodyBytes);
    console.log(`# A, ${size.unique} from unique sender domains to ${size.inboxes} inboxes: ${JSON.stringify(tally(a))}; store ${mb(await storeBytes()).toFixed(2)} MB`);
    assert.equal(a.filter(({ r }) => r.outcome !== '250').length, 0, `every one stored: ${JSON.stringify(tally(a))}`);

    const bStarted = Date.now();
    const b = await flood(
      port,
      size.subdomains,
      addresses,
      (i) => (i % 10 === 9 ? { from: `s${i}@control${i % 100}.test`, to: `c${i}@${INBOX_DOMAIN}` } : { from: `s@a${i}.b.c.d.e.f.sender.test`, to: `victim${i % 50}@${INBOX_DOMAIN}` }),
      size.bodyBytes,
    );
    const flood_ = b.filter(({ i }) => i % 10 !== 9);
    const control = b.filter(({ i }) => i % 10 === 9);
    console.log(`# B, ${flood_.length} from unique subdomains of sender.test: ${JSON.stringify(tally(flood_))}; ${control.length} from control<n>.test: ${JSON.stringify(tally(control))}`);
    const floodAccepted = flood_.filter(({ r }) => r.outcome === '250').length;
    // the window slides: over a phase of t seconds, up to rate × t / 60 more may pass
    const allowed = Math.ceil(size.senderDomainPerMinute * (1 + (Date.now() - bStarted) / 60_000));
    assert.ok(floodAccepted >= size.senderDomainPerMinute && floodAccepted <= allowed, `sender.test is one sender: ${floodAccepted} accepted against ${size.senderDomainPerMinute} per minute (at most ${allowed} over this phase)`);
    for (const { r } of flood_.filter(({ r }) => r.outcome !== '250')) {
      assert.equal(r.stage, 'MAIL', 'refused at MAIL FROM');
      assert.match(r.text ?? '', /^421 4\.7\.0 .*sender\.test/, 'the refusal names the registrable domain');
    }
    assert.ok(control.every(({ r }) => r.outcome === '250'), `another domain from the same addresses goes on: ${JSON.stringify(tally(control))}`);

    const c = await flood(port, size.oneInbox, addresses, (i) => ({ from: `s${i}@one${i}.test`, to: HOT }), size.bodyBytes);
    const hotIds = c.filter(({ r }) => r.outcome === '250').map(({ r }) => r.queueId!);
    console.log(`# C, ${size.oneInbox} to one inbox: ${JSON.stringify(tally(c))}`);
    assert.ok(c.every(({ r }) => r.outcome === '250' || (r.code === 450 && /^450 4\.2\.1 /.test(r.text ?? ''))), `250 or 450 4.2.1 only: ${JSON.stringify(tally(c))}`);
    const listed = (await (await fetch(`${api}/api/inboxes/${HOT}/messages?limit=${size.maxPerInbox}`)).json()) as { messages: { id: string }[]; nextCursor: string | null };
    const newest = [...hotIds].sort().reverse().slice(0, size.maxPerInbox);
    assert.deepEqual(listed.messages.map((x) => x.id), newest, `the inbox lists its newest ${size.maxPerInbox}`);
    assert.equal(listed.nextCursor, null, 'and nothing past them');

    sampling = false;
    await poller;
    const seriesAfter = await scrapeSeries(api);
    const added = [...seriesAfter].filter((s) => !seriesBefore.has(s));
    const gone = [...seriesBefore].filter((s) => !seriesAfter.has(s));
    console.log(`# metric series: ${seriesBefore.size} before, ${seriesAfter.size} after; new: ${added.join(' ') || 'none'}`);
    assert.deepEqual(added.filter((s) => !isRuntimeSeries(s)), [], 'no sluice series added by the flood');
    assert.deepEqual(gone.filter((s) => !isRuntimeSeries(s)), [], 'no sluice series gone');
    assert.ok(added.length <= 500, `${added.length} series added`);

    await waitFor(async () => (await storeBytes()) <= size.maxStoreBytes, 10_000, `store within ${size.maxStoreSize} once the eviction is done`);
    const margin = size.maxStoreBytes * 1.1 + CONCURRENCY * (size.bodyBytes + 1000);
    const text = await metrics();
    const evicted = ['ttl', 'cap', 'size'].map((reason) => `${reason} ${sample(text, `sluice_inbox_evicted_total{reason="${reason}"}`)}`).join(', ');
    console.log(
      `# store: at most ${mb(maxBytes).toFixed(2)} MB during the run, ${mb(sample(text, 'sluice_inbox_bytes')).toFixed(2)} MB after; evicted ${evicted}; ` +
        `452 (store full) to ${storeFull} of ${deliveries} deliveries`,
    );
    assert.ok(maxBytes <= margin, `store held ${maxBytes} bytes at most, limit ${size.maxStoreBytes} + 10% + what was in flight`);
    // full, the store makes room as fast as mail comes in: the oldest go, new mail is taken
    assert.ok(storeFull <= deliveries / 100, `452 (store full) to ${storeFull} of ${deliveries} deliveries`);

    const p95 = percentile(apiTimes, 95);
    console.log(`# API: ${apiTimes.length} requests, p50 ${percentile(apiTimes, 50).toFixed(1)} ms, p95 ${p95.toFixed(1)} ms; receiver RSS ${mb(rssBefore).toFixed(0)} MB, peak +${mb(rssPeak - rssBefore).toFixed(0)} MB`);
    assert.deepEqual(apiErrors, [], 'the API answered 200 throughout');
    assert.ok(p95 <= budgetMs(200), `API p95 ${p95.toFixed(1)} ms`);
    assert.ok(mb(rssPeak - rssBefore) <= 200, `the receiver's RSS grew by ${mb(rssPeak - rssBefore).toFixed(0)} MB`);
  } finally {
    sampling = false;
    await sampler;
    await child.stop();
  }
}
