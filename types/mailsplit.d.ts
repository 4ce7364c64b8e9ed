// mailsplit ships no types; this covers the part Sluice uses.
declare module 'mailsplit' {
  import type { Transform } from 'node:stream';
  export interface HeaderLine {
    key: string;
    line: string;
  }
  export class Headers {
    constructor(headers: Buffer | string | HeaderLine[], config?: Record<string, unknown>);
    hasHeader(key: string): boolean;
    get(key: string): string[];
    getFirst(key: string): string;
    getList(): HeaderLine[];
    add(key: string, value: string | Buffer | number, index?: number): void;
    addFormatted(key: string, line: string, index?: number): void;
    remove(key: string): void;
    update(key: string, value: string | Buffer | number, relativeIndex?: number): void;
    build(lineEnd?: string): Buffer;
  }
  /** One MIME node as the Splitter emits it (objectMode), before its body. */
  export interface SplitterNode {
    type: 'node';
    root: boolean;
    headers: Headers;
    contentType: string | false;
    multipart: string | false;
  }
  /** One MIME node as the Splitter emits it (its body follows as 'body' chunks). */
  export interface MimeNode {
    type: 'node';
    root: boolean;
    contentType: string | false;
    multipart: string | false;
    encoding: string | false;
    headers: Headers;
    parentNode?: MimeNode;
    getHeaders(): Buffer;
  }
  export type SplitterChunk = MimeNode | { type: 'body' | 'data'; value: Buffer; node?: MimeNode };
  /** A Transform: raw message bytes in, SplitterChunk objects out. */
  export class Splitter extends Transform {
    constructor(config?: Record<string, unknown>);
  }
}

// libmime ships no types; Sluice only decodes encoded-words with it.
declare module 'libmime' {
  const libmime: { decodeWords(value: string): string };
  export default libmime;
}
