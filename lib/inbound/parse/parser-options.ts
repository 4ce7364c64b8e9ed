/**
 * mailparser's options, one set for every parse of a stored message: the parse after the 250 and
 * the one that serves an attachment's bytes (attachment-bytes.ts) must see the same parts in the
 * same order, or attachment n would not be the one the metadata describes.
 */
import type { MailParserOptions } from 'mailparser';

/** HTML longer than this is not turned into text (for a message with no text part). */
const MAX_HTML_TO_TEXT_CHARS = 2_000_000;

export const PARSER_OPTIONS: Readonly<MailParserOptions> = Object.freeze({
  // what the API serves is the parts as sent; no made-up HTML from text, no rewritten links
  skipTextToHtml: true,
  skipTextLinks: true,
  skipImageLinks: true,
  // we hash attachments ourselves (sha256 and md5, in one pass)
  checksumAlgo: false,
  maxHtmlLengthToParse: MAX_HTML_TO_TEXT_CHARS,
});
