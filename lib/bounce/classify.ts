// STUB — replaced by the real classifier from the wt-bounce branch at merge.
export type ReplyCategory = 'greylist' | 'blocklist' | 'mailbox-full' | 'unknown-user' | 'policy' | 'spam' | 'dns' | 'network' | 'tls' | 'rate-limit' | 'message-size' | 'protocol' | 'other';
export interface ReplyInput { responseCode?: number; response?: string; code?: string; phase?: string }
export interface ReplyClass { action: 'defer' | 'bounce'; category: ReplyCategory; status: string; message: string; rule?: string }
export interface BounceRule { id: string }
export function classifyReply(input: ReplyInput, _rules?: BounceRule[]): ReplyClass {
  const m = /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(input.response ?? '');
  if (input.responseCode && input.responseCode >= 500) return { action: 'bounce', category: 'other', status: m?.[1] ?? '5.0.0', message: 'rejected' };
  return { action: 'defer', category: input.responseCode ? 'other' : 'network', status: m?.[1] ?? '4.0.0', message: 'temporary failure' };
}
export function loadBounceRules(_file?: string): BounceRule[] { return []; }
