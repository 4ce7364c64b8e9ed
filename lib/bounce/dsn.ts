// STUB — replaced by the real DSN builder from the wt-bounce branch at merge.
export interface DsnRecipient { recipient: string; action: 'failed' | 'delayed'; status: string; remoteMta?: string; diagnostic?: string; lastAttempt?: number; willRetryUntil?: number }
export interface DsnInput { reportingMta: string; queueId: string; arrivalDate: number; sender: string; originalHeaders: string; recipients: DsnRecipient[]; now?: Date }
export function buildDsn(input: DsnInput): { from: ''; to: string[]; message: Buffer } {
  const body = `From: MAILER-DAEMON@${input.reportingMta}\r\nTo: ${input.sender}\r\nSubject: Delivery Status Notification\r\nAuto-Submitted: auto-replied\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\n${input.recipients.map((r) => `${r.recipient}: ${r.action} ${r.status} ${r.diagnostic ?? ''}`).join('\r\n')}\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; ${input.reportingMta}\r\n\r\n${input.recipients.map((r) => `Final-Recipient: rfc822; ${r.recipient}\r\nAction: ${r.action}\r\nStatus: ${r.status}\r\n`).join('\r\n')}\r\n--x--\r\n`;
  return { from: '', to: [input.sender], message: Buffer.from(body) };
}
export function mayBounceTo(input: { sender: string; originalHeaders: string }): boolean {
  return input.sender !== '' && !/^auto-submitted:\s*(?!no\b)/im.test(input.originalHeaders) && !/^content-type:\s*multipart\/report/im.test(input.originalHeaders);
}
