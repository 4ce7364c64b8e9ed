/**
 * What the spam classifier sees of a message: a few facts from its headers, the domains its
 * links point to, the types of its attachments, the words of its subject (marked as such) and
 * the words of its text (the text made from the HTML when there is no text part).
 *
 * The same function runs when `sluice spam train` reads a corpus and when a received message is
 * scored, on the same parse (parse-message.ts), so training and scoring see a message alike. Only
 * what a saved .eml file carries is used: nothing from the SMTP envelope or the SPF/DKIM checks,
 * which a corpus does not have. What this emits is part of the model's format: a change to it
 * goes with a new MODEL_VERSION (model.ts), so a model trained on other tokens is refused rather
 * than misread.
 *
 * Bounded: at most MAX_TOKENS per message (headers first, then the subject, then the body), from
 * at most MAX_TEXT_CHARS of text; words of 2 to MAX_WORD_CHARS characters (longer runs are base64,
 * hashes or ids, which say nothing about the next message).
 */
import type { ParsedMessage } from '../store/types.js';

export const MAX_TOKENS = 2000;
const MAX_TEXT_CHARS = 200_000;
const MAX_WORD_CHARS = 30;
/** characters of a run of CJK or Thai (written without spaces) cut into pairs */
const MAX_SCRIPT_RUN = 60;

/** The parts of a parsed message the tokens come from. */
export type SpamInput = Pick<ParsedMessage, 'headers' | 'from' | 'replyTo' | 'subject' | 'text' | 'html' | 'links' | 'attachments'>;

const WORD = /[\p{L}\p{N}][\p{L}\p{M}\p{N}'’_-]*/gu;
const UNSPACED = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}]/u;
const URL_OR_ADDRESS = /\b(?:https?:\/\/|www\.)\S+|[^\s@<>()]+@[^\s@<>()]+\.[^\s@<>()]+/gi;
const MONEY = /[$€£¥]\s?\d|\d\s?(?:[$€£¥]|(?:usd|eur|gbp)(?!\p{L}))/giu;

export function tokenize(msg: SpamInput): string[] {
  const out: string[] = [];
  const push = (token: string) => out.length < MAX_TOKENS && out.push(token);
  for (const t of headerTokens(msg)) push(t);
  for (const t of words(msg.subject, 'subject:')) push(t);
  const text = (msg.text ?? (msg.html ? msg.html.replace(/<[^>]*>/g, ' ') : '')).slice(0, MAX_TEXT_CHARS);
  if (out.length < MAX_TOKENS) for (const t of words(text, '')) if (!push(t)) break;
  return out;
}

function headerTokens(msg: SpamInput): string[] {
  const out: string[] = [];
  const header = (name: string) => msg.headers.find((h) => h.name.toLowerCase() === name)?.value;
  const fromDomain = domainOf(msg.from?.address);
  out.push(`from:${fromDomain ?? 'none'}`);
  const replyDomain = domainOf(msg.replyTo[0]?.address);
  out.push(`reply-to:${!msg.replyTo.length ? 'none' : replyDomain === fromDomain ? 'same-domain' : 'other-domain'}`);
  const mailer = header('x-mailer') ?? header('user-agent');
  if (mailer) out.push(`x-mailer:${mailerName(mailer)}`);
  out.push(`list-unsubscribe:${header('list-unsubscribe') ? 'yes' : 'no'}`);
  if (!header('message-id')) out.push('message-id:none');
  if (!header('date')) out.push('date:none');
  const precedence = header('precedence')?.toLowerCase().trim();
  if (precedence) out.push(`precedence:${precedence.slice(0, 20)}`);
  out.push(`html:${msg.html ? 'yes' : 'no'}`);
  out.push(`links:${msg.links.length === 0 ? '0' : msg.links.length <= 3 ? '1-3' : msg.links.length <= 10 ? '4-10' : 'many'}`);
  const hosts = new Set<string>();
  for (const link of msg.links) {
    const host = linkHost(link.url);
    if (host && !hosts.has(host)) {
      hosts.add(host);
      out.push(`url:${host}`);
    }
  }
  for (const a of msg.attachments.slice(0, 20)) {
    out.push(`attachment:${a.contentType.toLowerCase()}`);
    const ext = /\.([a-z0-9]{1,8})$/i.exec(a.filename ?? '')?.[1];
    if (ext) out.push(`attachment-ext:${ext.toLowerCase()}`);
  }
  return out;
}

/** Words of a text, lower case, each prefixed; plus a few shapes that case and punctuation show. */
function* words(text: string, prefix: string): Generator<string> {
  const plain = text.replace(URL_OR_ADDRESS, ' ');
  for (let n = plain.match(MONEY)?.length ?? 0; n > 0; n--) yield `${prefix}shape:money`;
  for (let n = plain.match(/!{2,}/g)?.length ?? 0; n > 0; n--) yield `${prefix}shape:!!`;
  for (const m of plain.matchAll(WORD)) {
    const raw = m[0].replace(/['’_-]+$/, '');
    if (UNSPACED.test(raw)) {
      const run = [...raw.slice(0, MAX_SCRIPT_RUN)];
      for (let i = 0; i + 1 < run.length; i++) yield prefix + run[i] + run[i + 1];
      continue;
    }
    if (raw.length < 2 || raw.length > MAX_WORD_CHARS) continue;
    if (/^\d+$/.test(raw)) {
      // the value of a number says nothing about the next message; its length a little
      yield `${prefix}num:${Math.min(raw.length, 10)}`;
      continue;
    }
    if (raw.length >= 4 && /^\p{Lu}+$/u.test(raw)) yield `${prefix}shape:caps`;
    yield prefix + raw.normalize('NFKC').toLowerCase().replace(/’/g, "'");
  }
}

function domainOf(address: string | undefined): string | undefined {
  const at = address?.lastIndexOf('@') ?? -1;
  return at < 0 ? undefined : address!.slice(at + 1).toLowerCase().replace(/\.$/, '') || undefined;
}

/** "PHPMailer 6.1.4 (https://github.com/...)" → "phpmailer"; "Microsoft Outlook 16.0" → "microsoft-outlook". */
function mailerName(value: string): string {
  const names = value.toLowerCase().split(/[\s/(;]+/).slice(0, 3).filter((w) => /^[a-z][a-z-]*$/.test(w));
  return names.slice(0, 2).join('-').slice(0, 40) || 'other';
}

/** The host of a link, lower case, without "www."; "ip" for an address literal. */
function linkHost(url: string): string | undefined {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return undefined;
  }
  if (/^\[.*\]$|^\d+\.\d+\.\d+\.\d+$/.test(host)) return 'ip';
  return host.replace(/^www\./, '').slice(0, 100) || undefined;
}
