/**
 * One-time codes in a message, for the test suite that must type the code a sign-up or a login
 * sent: "Your code is 482913" gives ["482913"].
 *
 * A candidate is 4 to 10 digits (also written in groups, "482 913", "482-913"), or 6 to 10
 * letters and digits with at least two digits ("K7Q2X9"), standing near a keyword that says
 * "code" in one of several languages (code, PIN, OTP, verification, passcode, código,
 * Bestätigungscode, код, 验证码 …). What looks like something else is left out even near a
 * keyword: years and dates, times, prices and amounts, phone numbers, and numbers that label
 * something (order, invoice, ticket, account "#…").
 *
 * The result keeps the order of appearance, each code once; the subject is read first. A code
 * the sender put in an OTP-Token header (draft-goto-otp-token) comes first of all.
 */

/** Characters between a keyword and a code for them to belong together. */
const NEAR_BEFORE = 60;
const NEAR_AFTER = 40;
/** At most this many codes are reported. */
const MAX_CODES = 10;

/**
 * Words that announce a code. Latin-script words match at word boundaries and without case;
 * the CJK ones anywhere.
 */
const KEYWORDS = [
  // English
  'code', 'codes', 'pin', 'otp', 'passcode', 'one-time', 'one time', 'verification', 'verify', 'security code', 'login code',
  'sign-in code', 'access code', 'confirmation', 'confirm', 'token', '2fa', 'two-factor', 'authentication', 'password',
  // Spanish, Portuguese, French, Italian, German, Dutch
  'código', 'codigo', 'contraseña', 'senha', 'verificación', 'verificação', 'vérification', 'mot de passe', 'codice',
  'verifica', 'bestätigungscode', 'sicherheitscode', 'bestätigung', 'verifizierungscode', 'anmeldecode', 'einmalcode',
  'verificatiecode', 'inlogcode',
  // Polish, Swedish, Turkish, Russian
  'kod', 'kodu', 'weryfikacyjny', 'verifieringskod', 'doğrulama', 'код', 'пароль', 'подтверждения',
];
const CJK_KEYWORDS = ['验证码', '驗證碼', '认证码', '確認コード', '認証コード', '認証番号', '인증번호', '인증 코드'];

/** Labels whose number is a reference, not a code. */
const REFERENCE = /(?:order|invoice|ticket|account|acct|customer|reference|ref|case|booking|tracking|receipt|member|id|no|nr|number|n°|№)[ \t]*[.:#]?[ \t]*$/i;
const MONTHS = 'jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|june|july|august|september|october|november|december|januar|februar|märz|mai|juni|juli|oktober|dezember|enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|diciembre|janvier|février|mars|avril|juin|juillet|août|septembre|octobre|novembre|décembre';

const CANDIDATE = /(?<![\p{L}\p{N}$€£¥₹#@./:+-])(?:\d{2,5}(?:[ -]\d{2,5}){1,2}|\d{4,10}|(?=[A-Z0-9]*\d[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{6,10})(?![\p{L}\p{N}]|[.,]\d|[/:-]\d)/gu;

interface Found {
  code: string;
  at: number;
}

/** The one-time codes of a message: the OTP-Token header's first, then the subject's, then the text's. */
export function findCodes(subject: string, text: string, otpToken?: string): string[] {
  const out: string[] = [];
  const add = (code: string) => {
    if (out.length < MAX_CODES && !out.includes(code)) out.push(code);
  };
  if (otpToken) add(otpToken);
  for (const part of [subject, text]) for (const f of codesIn(part)) add(f.code);
  return out;
}

/** Codes in one piece of text, in order. */
export function codesIn(text: string): Found[] {
  if (!text) return [];
  const keywords = keywordPositions(text);
  if (!keywords.length) return [];
  // a token inside a link is the link's business, not a code to type
  const links = [...text.matchAll(/\b(?:https?:\/\/|www\.)\S+/gi)].map((m) => [m.index!, m.index! + m[0].length] as const);
  const found: Found[] = [];
  for (const m of text.matchAll(CANDIDATE)) {
    const raw = m[0];
    const at = m.index!;
    const end = at + raw.length;
    if (links.some(([s, e]) => at >= s && at < e)) continue;
    if (!keywords.some((k) => (k.end <= at && at - k.end <= NEAR_BEFORE) || (k.start >= end && k.start - end <= NEAR_AFTER))) continue;
    if (looksLikeSomethingElse(text, raw, at, end)) continue;
    found.push({ code: raw.replace(/[ -]/g, ''), at });
  }
  return found;
}

function keywordPositions(text: string): { start: number; end: number }[] {
  const lower = text.toLowerCase();
  const out: { start: number; end: number }[] = [];
  for (const word of KEYWORDS) {
    let from = 0;
    for (;;) {
      const i = lower.indexOf(word, from);
      if (i < 0) break;
      from = i + word.length;
      const before = i === 0 ? '' : lower[i - 1]!;
      const after = lower[i + word.length] ?? '';
      if (/[\p{L}\p{N}]/u.test(before) || /[\p{L}\p{N}]/u.test(after)) continue;
      out.push({ start: i, end: i + word.length });
    }
  }
  for (const word of CJK_KEYWORDS) {
    let from = 0;
    for (let i = text.indexOf(word); i >= 0; i = text.indexOf(word, from)) {
      from = i + word.length;
      out.push({ start: i, end: i + word.length });
    }
  }
  return out;
}

/** Years, dates, times, amounts, phone numbers and reference numbers are not codes. */
function looksLikeSomethingElse(text: string, raw: string, at: number, end: number): boolean {
  const before = text.slice(Math.max(0, at - 24), at);
  const after = text.slice(end, end + 16);
  const digits = raw.replace(/[ -]/g, '');
  // a year on its own, or one in a date ("3 Dec 2026", "Dec 3, 2026")
  if (/^\d{4}$/.test(raw) && Number(raw) >= 1900 && Number(raw) <= 2099) return true;
  if (new RegExp(`(?:${MONTHS})\\.?\\s*\\d{0,2},?\\s*$`, 'i').test(before) || new RegExp(`^\\s*(?:${MONTHS})\\b`, 'i').test(after)) return true;
  // dates and times written with separators around it
  if (/\d[./:-]$/.test(before) || /^[./:]\d/.test(after)) return true;
  // amounts: a currency sign or code next to it, or decimals after it
  if (/(?:[$€£¥₹]|\b(?:usd|eur|gbp|chf|jpy|inr|rs)\.?)\s*$/i.test(before) || /^\s*(?:[$€£¥₹%]|(?:usd|eur|gbp|chf|jpy|dollars?|euros?|pounds?)\b)/i.test(after)) return true;
  // phone numbers: a "+" country code, a bracketed area code, "tel"/"phone"/"call" before it,
  // or more digits in groups than a code has
  if (/(?:\+\d{1,3}[ -]?|\(\d{2,5}\)\s?)$/.test(before) || /(?:tel|phone|call|fax|mobile|whatsapp|sms to)\b[^\n]{0,12}$/i.test(before)) return true;
  if (/^[ -]\d{3,}/.test(after) || (/[ -]/.test(raw) && digits.length > 8)) return true;
  // dialled on a phone keypad: a conference PIN ends with "#"
  if (after.startsWith('#')) return true;
  // numbers that label something
  return REFERENCE.test(before);
}
