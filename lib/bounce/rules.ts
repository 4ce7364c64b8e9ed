/**
 * Reply classification rules: a data file an operator edits (config/bounce-rules.txt), one rule
 * per line, read here into BounceRule objects. The file's own header documents the format:
 *
 *   CATEGORY  ACTION  /REGEX/FLAGS  short message
 *
 * CATEGORY is one of REPLY_CATEGORIES or `auto` (taken from the reply's enhanced status), ACTION
 * is defer, bounce or `auto` (4xx defers, 5xx bounces). Lines starting with '#' are comments; the
 * comment block right above a rule documents it, and its lines of the form "# > 550 5.1.1 ..."
 * quote the real replies the rule is written for (kept as `examples`, which tests classify).
 * A bad file is refused whole, with every problem named as file:line, like the config loader.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { REPLY_CATEGORIES, isReplyCategory, type ReplyCategory } from './categories.js';

export type RuleCategory = ReplyCategory | 'auto';
export type RuleAction = 'defer' | 'bounce' | 'auto';

export interface BounceRule {
  /** where the rule is: 'config/bounce-rules.txt:42' */
  id: string;
  category: RuleCategory;
  action: RuleAction;
  pattern: RegExp;
  /** short human text for logs and DSNs; absent means the category's default */
  message?: string;
  /** the real replies quoted above the rule, multi-line ones joined with '\n' as nodemailer does */
  examples: string[];
  /** the rest of the comment block above the rule */
  comment: string;
}

/** The rules shipped with Sluice. */
export const DEFAULT_BOUNCE_RULES_FILE = fileURLToPath(new URL('../../../config/bounce-rules.txt', import.meta.url));
const DEFAULT_NAME = 'config/bounce-rules.txt';

export class BounceRuleError extends Error {
  constructor(readonly problems: string[]) {
    super(`bad bounce rules:\n  ${problems.join('\n  ')}`);
    this.name = 'BounceRuleError';
  }
}

const ACTIONS: readonly RuleAction[] = ['defer', 'bounce', 'auto'];
/** g and y make a RegExp stateful (lastIndex), which would make a shared rule flaky. */
const ALLOWED_FLAGS = /^[imsu]*$/;

export function loadBounceRules(file?: string): BounceRule[] {
  const path = file ?? DEFAULT_BOUNCE_RULES_FILE;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new BounceRuleError([`${file ?? DEFAULT_NAME}: cannot read: ${(err as Error).message}`]);
  }
  return parseBounceRules(text, file ?? DEFAULT_NAME);
}

export function parseBounceRules(text: string, fileName = 'bounce-rules.txt'): BounceRule[] {
  const rules: BounceRule[] = [];
  const problems: string[] = [];
  let comment: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const where = `${fileName}:${index + 1}`;
    const line = raw.trim();
    if (line === '') {
      comment = [];
      return;
    }
    if (line.startsWith('#')) {
      comment.push(line.replace(/^#\s?/, ''));
      return;
    }
    const parsed = parseRuleLine(line);
    if (typeof parsed === 'string') problems.push(`${where}: ${parsed}`);
    else rules.push({ id: where, ...parsed, ...splitComment(comment) });
    comment = [];
  });
  if (problems.length) throw new BounceRuleError(problems);
  return rules;
}

type RuleFields = Pick<BounceRule, 'category' | 'action' | 'pattern' | 'message'>;

/** One rule line, or the problem with it. */
function parseRuleLine(line: string): RuleFields | string {
  const m = /^(?<category>\S+)\s+(?<action>\S+)\s+(?<rest>.*)$/.exec(line)?.groups;
  if (!m) return 'expected: CATEGORY ACTION /REGEX/FLAGS [message]';
  const { category = '', action = '', rest = '' } = m;
  if (category !== 'auto' && !isReplyCategory(category)) {
    return `unknown category ${JSON.stringify(category)} (one of: ${[...REPLY_CATEGORIES, 'auto'].join(', ')})`;
  }
  if (!(ACTIONS as readonly string[]).includes(action)) return `unknown action ${JSON.stringify(action)} (one of: ${ACTIONS.join(', ')})`;
  const literal = readRegexLiteral(rest);
  if (typeof literal === 'string') return literal;
  const message = rest.slice(literal.end).trim();
  return { category, action: action as RuleAction, pattern: literal.pattern, ...(message ? { message } : {}) };
}

/** Reads "/source/flags" from the start of `s`; a '/' inside is written '\/' (or sits in [...]). */
function readRegexLiteral(s: string): { pattern: RegExp; end: number } | string {
  if (!s.startsWith('/')) return 'expected a /regex/ after the action';
  let i = 1;
  let inClass = false;
  for (; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') i++;
    else if (inClass) inClass = c !== ']';
    else if (c === '[') inClass = true;
    else if (c === '/') break;
  }
  if (i >= s.length) return 'the /regex/ has no closing "/" (write a "/" inside it as "\\/")';
  const source = s.slice(1, i);
  if (source === '') return 'an empty /regex/ would match every reply';
  const flags = /^[a-z]*/.exec(s.slice(i + 1))![0];
  const end = i + 1 + flags.length;
  if (end < s.length && !/\s/.test(s[end]!)) return `unexpected ${JSON.stringify(s[end])} after the /regex/ (flags are letters, then a space before the message)`;
  if (!ALLOWED_FLAGS.test(flags)) return `regex flags ${JSON.stringify(flags)}: only i, m, s and u are allowed`;
  try {
    return { pattern: new RegExp(source, flags), end };
  } catch (err) {
    return `bad regex: ${(err as Error).message}`;
  }
}

/** Splits a comment block into the quoted replies ("> 550-...") and the rest. */
function splitComment(lines: string[]): Pick<BounceRule, 'examples' | 'comment'> {
  const examples: string[] = [];
  const other: string[] = [];
  let open: string[] | undefined; // a multi-line reply whose last line is not in yet
  for (const line of lines) {
    const q = /^>\s?(.*)$/.exec(line);
    if (!q) {
      other.push(line);
      continue;
    }
    const reply = q[1]!.trim();
    (open ??= []).push(reply);
    // "550-..." continues on the next line; "550 ..." (or no code) ends the reply.
    if (!/^\d{3}-/.test(reply)) {
      examples.push(open.join('\n'));
      open = undefined;
    }
  }
  if (open) examples.push(open.join('\n'));
  return { examples, comment: other.join('\n') };
}
