/**
 * JSON request bodies as the API reads them: prototype poisoning (`__proto__`, or
 * `constructor.prototype`) is refused, as fastify's own parser does, and every problem is a
 * message for a 400. Shared by the API's body parser and its worker thread.
 */
import secureJson from 'secure-json-parse';

/** The parsed body, or throws an Error whose message says what is wrong with it. */
export function parseJsonBody(bytes: Buffer): unknown {
  if (bytes.length === 0) throw new Error('the body is empty; send a JSON object');
  try {
    return secureJson.parse(bytes.toString('utf8'), undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch (err) {
    throw new Error(`the body is not valid JSON: ${(err as Error).message}`);
  }
}
