/**
 * The JSON schema of POST /send: nodemailer's message fields that make sense over HTTP. Unknown
 * fields are refused (400 naming the field) rather than silently ignored: server.ts runs ajv with
 * removeAdditional: false. Fields only nodemailer's Mailer understands (`list`, transport options
 * like `dkim`) are left out, since MailComposer alone would drop them without a word.
 */
/** the longest single-line field (an address list, a header value) */
export const LINE_MAX_CHARS = 4096;
// no maxLength on content: the body limit bounds it, and ajv counts a string's characters one by
// one to check one (tens of ms on the event loop for a 30 MB text)
const text = { type: 'string' } as const;
const line = { type: 'string', maxLength: LINE_MAX_CHARS } as const;

const address = {
  anyOf: [
    line,
    {
      type: 'object',
      properties: { name: line, address: line },
      required: ['address'],
      additionalProperties: false,
    },
  ],
} as const;
const addressList = { anyOf: [address, { type: 'array', items: address, maxItems: 10_000 }] } as const;

const headers = {
  anyOf: [
    {
      type: 'object',
      additionalProperties: {
        anyOf: [line, { type: 'array', items: line, maxItems: 100 }, { type: 'object', properties: { prepared: { type: 'boolean' }, value: line }, required: ['value'], additionalProperties: false }],
      },
      maxProperties: 200,
    },
    { type: 'array', items: { type: 'object', properties: { key: line, value: line }, required: ['key', 'value'], additionalProperties: false }, maxItems: 200 },
  ],
} as const;

const notifyWord = { type: 'string', enum: ['never', 'success', 'failure', 'delay', 'NEVER', 'SUCCESS', 'FAILURE', 'DELAY'] } as const;

/** text/html/amp/icalEvent/raw: a string or a content object (path/href are refused later). */
const contentObject = {
  type: 'object',
  properties: {
    content: text,
    encoding: { type: 'string', enum: ['base64', 'utf8', 'utf-8', 'hex', 'binary', 'latin1', 'ascii'] },
    contentType: line,
    method: line,
    filename: line,
    headers,
    path: line,
    href: line,
  },
  additionalProperties: false,
} as const;
const content = { anyOf: [text, contentObject] } as const;

const part = {
  type: 'object',
  properties: {
    filename: { anyOf: [line, { const: false }] },
    content: text,
    encoding: contentObject.properties.encoding,
    contentType: line,
    contentDisposition: { type: 'string', enum: ['attachment', 'inline'] },
    contentTransferEncoding: { anyOf: [{ type: 'string', enum: ['base64', 'quoted-printable', '7bit', '8bit'] }, { const: false }] },
    cid: line,
    headers,
    raw: text,
    path: line,
    href: line,
  },
  additionalProperties: false,
} as const;

export const sendBodySchema = {
  type: 'object',
  properties: {
    from: address,
    sender: address,
    replyTo: addressList,
    to: addressList,
    cc: addressList,
    bcc: addressList,
    subject: { type: 'string', maxLength: 10_000 },
    text: content,
    html: content,
    amp: content,
    watchHtml: content,
    icalEvent: content,
    raw: content,
    attachments: { type: 'array', items: part, maxItems: 1000 },
    alternatives: { type: 'array', items: part, maxItems: 100 },
    headers,
    messageId: line,
    inReplyTo: line,
    references: { anyOf: [line, { type: 'array', items: line, maxItems: 1000 }] },
    date: line,
    priority: { type: 'string', enum: ['high', 'normal', 'low'] },
    /** Content-Transfer-Encoding of the text parts (nodemailer's message-level `encoding`) */
    encoding: { type: 'string', enum: ['quoted-printable', 'base64'] },
    textEncoding: { type: 'string', enum: ['quoted-printable', 'base64'] },
    envelope: {
      type: 'object',
      properties: { from: line, to: addressList, cc: addressList, bcc: addressList },
      additionalProperties: false,
    },
    /** DSN parameters (RFC 3461) as nodemailer names them: ENVID, RET, NOTIFY and ORCPT */
    dsn: {
      type: 'object',
      properties: {
        id: { type: 'string', maxLength: 100 },
        return: { type: 'string', enum: ['headers', 'full', 'HDRS', 'FULL'] },
        notify: { anyOf: [notifyWord, { type: 'array', items: notifyWord, minItems: 1, maxItems: 3 }] },
        recipient: line,
      },
      additionalProperties: false,
    },
  },
  additionalProperties: false,
} as const;
