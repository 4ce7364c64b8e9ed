// sanitize-html ships no types (@types/sanitize-html pulls a newer htmlparser2); this covers the
// part Sluice uses.
declare module 'sanitize-html' {
  namespace sanitizeHtml {
    interface Attributes {
      [name: string]: string;
    }
    type Transformer = (tagName: string, attribs: Attributes) => { tagName: string; attribs: Attributes };
    interface IOptions {
      allowedTags?: string[] | false;
      allowedAttributes?: Record<string, string[]> | false;
      allowedSchemes?: string[];
      allowedSchemesByTag?: Record<string, string[]>;
      allowProtocolRelative?: boolean;
      transformTags?: Record<string, string | Transformer>;
      nonTextTags?: string[];
    }
    const defaults: { allowedTags: string[]; allowedAttributes: Record<string, string[]> };
    function simpleTransform(tagName: string, attribs: Attributes, merge?: boolean): Transformer;
  }
  function sanitizeHtml(dirty: string, options?: sanitizeHtml.IOptions): string;
  export default sanitizeHtml;
}
