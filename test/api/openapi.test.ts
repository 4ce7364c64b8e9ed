/**
 * The API describes itself (lib/api/openapi.ts): GET /openapi.json is an OpenAPI 3 document with
 * every route the API registered (the inbox routes, Mailsac's, the queue's, plugins'), and /docs
 * serves the interactive page from the package.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster } from '../helpers/master.js';

test('every registered route is in /openapi.json, with its method; /docs answers', async () => {
  const m = await startMaster();
  try {
    const doc = (await (await fetch(`${m.api}/openapi.json`)).json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    assert.match(doc.openapi, /^3\./);
    // fastify writes a path parameter as :name, OpenAPI as {name}
    const documented = new Set(Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${p}`)));
    const routes = m.master.apiRoutes.filter((r) => !r.hidden && r.method !== 'HEAD' && !r.url.startsWith('/docs'));
    assert.ok(routes.length >= 35, `${routes.length} routes`);
    const missing = routes.map((r) => `${r.method} ${r.url.replace(/:([A-Za-z]+)/g, '{$1}')}`).filter((r) => !documented.has(r));
    assert.deepEqual(missing, []);
    for (const expected of ['POST /send', 'GET /api/inboxes/{address}/messages', 'GET /api/addresses/{email}/messages', 'GET /api/search', 'GET /queue/{zone}', 'GET /health/live', 'GET /health/ready', 'GET /metrics']) assert.ok(documented.has(expected), expected);
    // the queue side's routes document their replies too: the success reply with its schema,
    // and the { error, message } every error has
    type Op = { responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> };
    const ops = doc.paths as unknown as Record<string, Record<string, Op>>;
    for (const [p, method] of [['/send', 'post'], ['/send-raw', 'post'], ['/queue/{zone}', 'get'], ['/message/{id}', 'get'], ['/message/{id}', 'delete'], ['/message/{id}/retry', 'post'], ['/health', 'get'], ['/health/live', 'get'], ['/health/ready', 'get'], ['/metrics', 'get']] as const) {
      const responses = ops[p]![method]!.responses ?? {};
      const ok = responses['200']?.content;
      assert.ok(ok && Object.values(ok).some((c) => c.schema), `${method.toUpperCase()} ${p}: a 200 reply with a schema`);
      if (!p.startsWith('/health') && p !== '/metrics') assert.ok(responses['4XX'] ?? responses['4xx'], `${method.toUpperCase()} ${p}: the error reply`);
    }
    // every other route (the inbox's, Mailsac's) documents at least the error reply
    const withoutErrors = routes
      .map((r) => [r.url.replace(/:([A-Za-z]+)/g, '{$1}'), r.method.toLowerCase()] as const)
      .filter(([p, method]) => !p.startsWith('/health') && p !== '/metrics' && !(ops[p]?.[method]?.responses ?? {})['4XX'])
      .map(([p, method]) => `${method.toUpperCase()} ${p}`);
    assert.deepEqual(withoutErrors, []);
    const page = await fetch(`${m.api}/docs/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /swagger/i);
  } finally {
    await m.stop();
  }
});
