/**
 * Reads an SMTP reply as nodemailer hands it over ("550-5.1.1 first\n550-5.1.1 second\n550 5.1.1
 * last") into one line ("550 5.1.1 first second last"), the form rules match against and DSNs
 * and logs show, and finds the reply code and the remote's enhanced status (RFC 3463) in it.
 * The one-line form has no control characters and a bounded length, so a rule's regex runs
 * over at most MAX_REPLY_CHARS and the text is safe to put in a header after folding.
 */
export const MAX_REPLY_CHARS = 2000;

const ENHANCED_AT_START = /^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)/;
/** An enhanced status elsewhere in the text: qmail's "(#5.1.1)", "... [5.7.1]". Subjects are 0..7
 * by RFC 3463, which keeps version numbers ("Exim 4.94.2") and IP addresses out. */
const ENHANCED_ANYWHERE = /(?<![\w.])#?([245])\.([0-7])\.(\d{1,3})(?![\w.])/;

export interface ReadReply {
  /** the basic reply code, when the text starts with one */
  code?: number;
  /** the remote's enhanced status, e.g. '5.1.1', when it gave one */
  enhanced?: string;
  /** the reply on one line, controls removed, at most MAX_REPLY_CHARS */
  text: string;
}

export function readReply(response: string, responseCode?: number): ReadReply {
  const lines = response.split(/\r\n|\r|\n/).filter((l) => l.trim() !== '');
  let code = responseCode;
  let enhanced: string | undefined;
  const parts: string[] = [];
  lines.forEach((raw, i) => {
    let line = raw;
    const m = /^(\d{3})(?:[ -]|$)/.exec(line);
    if (m) {
      code ??= Number(m[1]);
      line = line.slice(m[0].length);
    }
    const e = ENHANCED_AT_START.exec(line.trimStart());
    if (e) {
      // The first line's status is the one that counts; continuation lines repeat it.
      enhanced ??= `${e[1]}.${Number(e[2])}.${Number(e[3])}`;
      if (i > 0) line = line.trimStart().slice(e[0].length);
    }
    parts.push(line);
  });
  let text = clean(parts.join(' '));
  if (!enhanced) {
    const e = ENHANCED_ANYWHERE.exec(text);
    // Only a status of the same class as the reply code: "550 ... 4.2.0" mid-text is noise.
    if (e && (code === undefined || String(code)[0] === e[1])) enhanced = `${e[1]}.${Number(e[2])}.${Number(e[3])}`;
  }
  if (code !== undefined && (code < 100 || code > 599)) code = undefined;
  const prefix = code !== undefined ? `${code} ` : '';
  text = prefix + text;
  if (text.length > MAX_REPLY_CHARS) text = `${text.slice(0, MAX_REPLY_CHARS - 3)}...`;
  return { ...(code !== undefined ? { code } : {}), ...(enhanced ? { enhanced } : {}), text: text.trim() };
}

/** One line of printable text: controls become spaces, runs of spaces one. */
export function clean(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]+/g, ' ').replace(/ {2,}/g, ' ').trim();
}
