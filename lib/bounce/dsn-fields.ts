/**
 * Safe text for the lines of a DSN. Everything here ends up between CRLFs in a message we send,
 * and much of it comes from outside (remote replies, remote host names, addresses), so: no CR or
 * LF can get through (a reply cannot add a header or a MIME part), delivery-status fields are
 * US-ASCII (RFC 3464), long values are folded at spaces and hard-wrapped when a word is longer
 * than a line, and no line exceeds 998 octets (RFC 5322 §2.1.1).
 */
export const MAX_LINE_OCTETS = 998;
/** Fold header fields before this many characters where a space allows it. */
const FOLD_AT = 78;
/** A field's value longer than this is cut with "..." (a remote reply can be kilobytes). */
export const MAX_FIELD_CHARS = 2000;

/** One line of printable US-ASCII: controls (CR, LF included) become spaces, other bytes '?'. */
export function asciiLine(value: string, maxChars = MAX_FIELD_CHARS): string {
  const s = value
    .replace(/[\x00-\x1f\x7f]+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .replace(/ {2,}/g, ' ')
    .trim();
  return s.length > maxChars ? `${s.slice(0, maxChars - 3)}...` : s;
}

/** One line of text (any script) without controls, for the human-readable part. */
export function textLine(value: string, maxChars = MAX_FIELD_CHARS): string {
  const s = value.replace(/[\x00-\x1f\x7f\u0080-\u009f\u2028\u2029]+/g, ' ').replace(/ {2,}/g, ' ').trim();
  return s.length > maxChars ? `${s.slice(0, maxChars - 3)}...` : s;
}

/** A token for a host name or id: letters, digits and . - _ : [ ] only. */
export function token(value: string, maxChars = 255): string {
  return value.replace(/[^A-Za-z0-9.\-_:[\]]+/g, '').slice(0, maxChars) || 'unknown';
}

/** An address for a header or field: no controls, spaces, brackets or quotes; at most 400 octets. */
export function address(value: string): string {
  let a = value.replace(/[\x00-\x20\x7f-\x9f<>()\\",;]+/g, '').slice(0, 320);
  while (Buffer.byteLength(a) > 400) a = a.slice(0, -1);
  return a;
}

/** RFC 3461 xtext: octets outside "!".."~", and "+" and "=", written as +HH. */
export function xtext(value: string, maxChars = 100): string {
  let out = '';
  for (const b of Buffer.from(value, 'utf8')) {
    out += b >= 0x21 && b <= 0x7e && b !== 0x2b && b !== 0x3d ? String.fromCharCode(b) : `+${b.toString(16).toUpperCase().padStart(2, '0')}`;
    if (out.length >= maxChars) break;
  }
  return out;
}

/**
 * "Name: value" folded into lines of at most FOLD_AT characters where spaces allow, and at most
 * MAX_LINE_OCTETS always (a longer word is cut, the rest continued on the next line). The value
 * must already be one line of ASCII (asciiLine). Lines are joined with CRLF; no CRLF at the end.
 */
export function foldField(name: string, value: string): string {
  const lines: string[] = [];
  let current = `${name}:`;
  let hasWord = false;
  for (const word of value.split(' ').filter(Boolean)) {
    if (hasWord && current.length + 1 + word.length > FOLD_AT) {
      lines.push(current);
      current = '';
    }
    let prefix = current === '' ? ' ' : `${current} `;
    let rest = word;
    while (prefix.length + rest.length > MAX_LINE_OCTETS) {
      const room = MAX_LINE_OCTETS - prefix.length;
      lines.push(prefix + rest.slice(0, room));
      rest = rest.slice(room);
      prefix = ' ';
    }
    current = prefix + rest;
    hasWord = true;
  }
  lines.push(current);
  return lines.join('\r\n');
}

/** Wraps a paragraph of text to lines of about `width` characters (never more than 998 octets). */
export function wrapText(text: string, width = 76, indent = ''): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ').filter(Boolean)) {
    if (line && Buffer.byteLength(indent + line + ' ' + word) > width) {
      out.push(indent + line);
      line = '';
    }
    let rest = word;
    // a very long word (a URL, a hash) is cut so that no line passes the hard limit
    while (Buffer.byteLength(indent + rest) > MAX_LINE_OCTETS - 2) {
      const cut = Math.floor((MAX_LINE_OCTETS - 2 - indent.length) / 4); // 4 octets: worst case UTF-8
      out.push(indent + rest.slice(0, cut));
      rest = rest.slice(cut);
    }
    line = line ? `${line} ${rest}` : rest;
  }
  if (line) out.push(indent + line);
  return out;
}
