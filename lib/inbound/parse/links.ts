/**
 * The links of a message, for test suites that follow a sign-up or reset link: every http(s)
 * link from the HTML's anchors, with their text (entities decoded), then those found in the plain
 * text, de-duplicated by URL in the order they first appear.
 *
 * HTML is read by htmlparser2 (the parser sanitize-html uses, so its idea of an anchor and of
 * entities is the one the sanitised view shows); plain text by linkify-it, with only explicit
 * http:// and https:// links (a bare "example.test" in prose is not taken for a link).
 */
import { Parser } from 'htmlparser2';
import { LinkifyIt } from 'linkify-it';
import type { Link } from '../store/types.js';

/** More links than this in one message are not listed. */
export const MAX_LINKS = 1000;
/** Anchor text is kept up to this many characters. */
const MAX_TEXT = 500;

const linkify = new LinkifyIt({ fuzzyLink: false, fuzzyEmail: false, fuzzyIP: false }).add('ftp:', null).add('mailto:', null).add('//', null);

const isWebUrl = (url: string) => /^https?:\/\/[^\s]/i.test(url);
const squash = (text: string) => text.replace(/\s+/g, ' ').trim().slice(0, MAX_TEXT);

/** Anchors of an HTML document: `{ url, text }` in document order. */
export function linksFromHtml(html: string): Link[] {
  const out: Link[] = [];
  let open: { url: string; text: string; alt: string } | undefined;
  const parser = new Parser(
    {
      onopentag(name, attribs) {
        if (name === 'a') {
          if (open) out.push(finish(open));
          const href = (attribs.href ?? '').trim();
          open = isWebUrl(href) ? { url: href, text: '', alt: '' } : undefined;
        } else if (name === 'img' && open && attribs.alt) {
          open.alt += ` ${attribs.alt}`;
        }
      },
      ontext(text) {
        if (open && open.text.length < MAX_TEXT * 2) open.text += text;
      },
      onclosetag(name) {
        if (name === 'a' && open) {
          out.push(finish(open));
          open = undefined;
        }
      },
    },
    { decodeEntities: true },
  );
  parser.write(html);
  parser.end();
  if (open) out.push(finish(open));
  return out;
}

/** An anchor with no text of its own is named by the alt text of its image, if any. */
function finish(a: { url: string; text: string; alt: string }): Link {
  return { url: a.url, text: squash(a.text) || squash(a.alt) };
}

/** http(s) links in plain text, in order; their text is ''. */
export function linksFromText(text: string): Link[] {
  return (linkify.match(text) ?? []).filter((m) => isWebUrl(m.url)).map((m) => ({ url: m.url, text: '' }));
}

/** HTML links, then text links, each URL once (the first text that names it wins). */
export function mergeLinks(...lists: Link[][]): Link[] {
  const seen = new Map<string, Link>();
  for (const list of lists) {
    for (const link of list) {
      const known = seen.get(link.url);
      if (known) {
        if (!known.text && link.text) known.text = link.text;
      } else if (seen.size < MAX_LINKS) {
        seen.set(link.url, { ...link });
      }
    }
  }
  return [...seen.values()];
}
