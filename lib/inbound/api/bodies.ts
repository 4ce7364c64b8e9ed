/**
 * How the inbox API hands out a message's parts: raw source, text, HTML (as sent, or sanitised),
 * attachments. Mail is attacker-controlled bytes served from the API's origin, so:
 *
 * - every response says `X-Content-Type-Options: nosniff` (a browser never guesses text/html);
 * - HTML leaves only with a Content-Security-Policy that runs no script and sandboxes the page
 *   (an opaque origin: no cookies, no storage, no calls to the API as its origin); so do raw
 *   sources, text and attachments, whose type the sender chose (an attachment may be text/html
 *   or an SVG with a script in it) and which a browser might be made to show inline;
 * - the sanitised view also drops scripts, event handlers, frames, forms and remote images
 *   (sanitize-html), for clients that render it outside a browser's CSP;
 * - the raw source and attachments are served as downloads (`Content-Disposition: attachment`).
 */
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import sanitizeHtml from 'sanitize-html';

/** For HTML as sent: no script, no plugins, no forms, no navigation of its own; images may load. */
export const HTML_CSP = "sandbox; default-src 'none'; img-src https: http: data: cid:; style-src 'unsafe-inline' https: http:; font-src https: http: data:";
/** For sanitised HTML: nothing loads from elsewhere. */
export const SANITIZED_CSP = "sandbox; default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'";
/** For everything else (raw source, text, attachments): a sandbox that loads nothing. */
export const BODY_CSP = "sandbox; default-src 'none'";

const SANITIZE: sanitizeHtml.IOptions = {
  allowedTags: [...sanitizeHtml.defaults.allowedTags, 'img', 'font', 'center', 'span'],
  allowedAttributes: {
    '*': ['style', 'class', 'align', 'width', 'height', 'bgcolor', 'color', 'dir', 'title'],
    a: ['href', 'name', 'target', 'rel'],
    img: ['src', 'alt', 'width', 'height'],
    font: ['face', 'size', 'color'],
    td: ['colspan', 'rowspan', 'valign', 'align', 'width', 'bgcolor'],
    th: ['colspan', 'rowspan', 'valign', 'align', 'width', 'bgcolor'],
    table: ['border', 'cellpadding', 'cellspacing', 'width', 'align', 'bgcolor'],
  },
  allowedSchemes: ['http', 'https', 'mailto'],
  allowedSchemesByTag: { img: ['data', 'cid'] },
  allowProtocolRelative: false,
  // links open nothing of ours: no referrer, no opener
  transformTags: { a: sanitizeHtml.simpleTransform('a', { rel: 'noopener noreferrer nofollow', target: '_blank' }) },
};

/** The HTML with scripts, event handlers, frames, forms and remote images removed. */
export function sanitize(html: string): string {
  return sanitizeHtml(html, SANITIZE);
}

function common(reply: FastifyReply): FastifyReply {
  return reply.header('x-content-type-options', 'nosniff').header('cache-control', 'no-store').header('content-security-policy', BODY_CSP);
}

export function sendHtml(reply: FastifyReply, html: string, sanitized: boolean): FastifyReply {
  return common(reply)
    .header('content-security-policy', sanitized ? SANITIZED_CSP : HTML_CSP)
    .type('text/html; charset=utf-8')
    .send(sanitized ? sanitize(html) : html);
}

export function sendText(reply: FastifyReply, text: string): FastifyReply {
  return common(reply).type('text/plain; charset=utf-8').send(text);
}

/** `filename*` (RFC 6266/5987) keeps any name safe in a header; the plain one is ASCII only. */
export function disposition(kind: 'attachment' | 'inline', filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_').slice(0, 200) || 'download';
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename.slice(0, 200))}`;
}

/** Streams stored chunks as the response body. */
export function sendBytes(reply: FastifyReply, chunks: AsyncGenerator<Buffer>, opts: { type: string; size?: number; filename: string; download: boolean }): FastifyReply {
  common(reply).type(opts.type).header('content-disposition', disposition(opts.download ? 'attachment' : 'inline', opts.filename));
  if (opts.size !== undefined) reply.header('content-length', String(opts.size));
  return reply.send(Readable.from(chunks));
}
