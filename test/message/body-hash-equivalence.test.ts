/**
 * Our streaming relaxed body hash (lib/message/body-hash.ts) must give exactly the hash of
 * nodemailer's canonicaliser, which it replaced for speed: same bodies, cut into chunks at random
 * places, including the awkward bytes (bare CR, bare LF, tabs, trailing whitespace, runs of empty
 * lines, a CR at the very end).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import RelaxedBody from 'nodemailer/lib/dkim/relaxed-body';
import { BodyHasher } from '../../lib/message/body-hash.js';
import { createLineEndNormalizer } from '../../lib/message/line-ends.js';

function nodemailerHash(body: Buffer): string {
  const relaxed = new RelaxedBody({ hashAlgo: 'sha256' });
  let hash = '';
  relaxed.once('hash', (value: string) => (hash = value));
  if (body.length) relaxed.updateHash(body);
  (relaxed as unknown as { _flush(cb: () => void): void })._flush(() => undefined);
  return hash;
}

function ourHash(body: Buffer, cuts: number[], crlfOnly = false): string {
  const hasher = new BodyHasher({ crlfOnly });
  let at = 0;
  for (const cut of [...cuts, body.length]) {
    hasher.update(body.subarray(at, cut));
    at = cut;
  }
  return hasher.digest();
}

/** A small deterministic PRNG, so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ODD = ['a', 'Zz', ' ', '  ', '\t', ' \t ', '\r\n', '\r\n', '\r\n\r\n', '\r', '\n', '.', '\xc3\xa9', 'word '];
/** mostly canonical lines (what real bodies are), so the fast path over clean lines is exercised */
const CLEAN = ['word ', 'Word', ' x', '.', '\xc3\xa9', 'base64+/==', '\r\n', '\r\n', '\r\n\r\n', 'line of text\r\n'];

function randomBody(rand: () => number, maxPieces: number): Buffer {
  const n = Math.floor(rand() * maxPieces);
  const oddShare = rand() < 0.3 ? 0.5 : rand() * 0.05;
  let s = '';
  for (let i = 0; i < n; i++) {
    const set = rand() < oddShare ? ODD : CLEAN;
    s += set[Math.floor(rand() * set.length)];
  }
  return Buffer.from(s, 'latin1');
}

function randomCuts(rand: () => number, length: number): number[] {
  const cuts: number[] = [];
  const n = Math.floor(rand() * 6);
  for (let i = 0; i < n; i++) cuts.push(Math.floor(rand() * (length + 1)));
  return cuts.sort((a, b) => a - b);
}

test('edge-case bodies hash as nodemailer hashes them', () => {
  const bodies = ['', '\r\n', '\r\n\r\n\r\n', 'a', 'a\r\n', 'a \r\n', 'a\t\tb \r\n\r\n', ' \r\n a\r\n', 'a\r', 'a\r\r\n', 'a\n\nb\n', '\r', ' \r', '\r\n\r\n\r', 'x \t', 'a\rb'];
  for (const text of bodies) {
    const body = Buffer.from(text, 'latin1');
    for (let cut = 0; cut <= body.length; cut++) {
      assert.equal(ourHash(body, [cut]), nodemailerHash(body), `body ${JSON.stringify(text)} cut at ${cut}`);
    }
  }
});

test('random bodies in random chunks hash as nodemailer hashes them', () => {
  for (let seed = 1; seed <= 3000; seed++) {
    const rand = prng(seed);
    const body = randomBody(rand, seed % 3 ? 60 : 600);
    assert.equal(ourHash(body, randomCuts(rand, body.length)), nodemailerHash(body), `seed ${seed}`);
  }
});

test('large bodies (past the 64 KB working slice, long runs of empty lines) match', () => {
  const rand = prng(42);
  const blank = Buffer.alloc(20_000, '\r\n');
  for (let i = 0; i < 4; i++) {
    const body = Buffer.concat([randomBody(rand, 40_000), blank, randomBody(rand, 100), i % 2 ? blank : Buffer.alloc(0)]);
    assert.equal(ourHash(body, randomCuts(rand, body.length)), nodemailerHash(body), `large body ${i}`);
  }
});

/** What the accept path hands the hasher: the body through the line-end normaliser. */
function normalised(body: Buffer): Buffer {
  const n = createLineEndNormalizer();
  return Buffer.concat([n.push(body), n.end()]);
}

test('with crlfOnly (the accept path: normalised line ends), random and large bodies match', () => {
  for (let seed = 1; seed <= 3000; seed++) {
    const rand = prng(seed);
    const body = normalised(randomBody(rand, seed % 3 ? 60 : 600));
    assert.equal(ourHash(body, randomCuts(rand, body.length), true), nodemailerHash(body), `seed ${seed}`);
  }
  const rand = prng(7);
  const blank = Buffer.alloc(20_000, '\r\n');
  for (let i = 0; i < 4; i++) {
    const body = normalised(Buffer.concat([randomBody(rand, 40_000), blank, randomBody(rand, 100), i % 2 ? blank : Buffer.alloc(0)]));
    assert.equal(ourHash(body, randomCuts(rand, body.length), true), nodemailerHash(body), `large body ${i}`);
  }
});
