import type { FastifyInstance } from 'fastify';
import { checkDocumentDepth } from '../../protocol/index.ts';

/**
 * JSON request bodies are measured for depth before they are parsed (see
 * protocol/json-limits.ts): a body nested too deep is refused with 400 CC_ERR_TOO_DEEP instead
 * of overflowing the stack of whatever later walks or stores it. Parsing itself stays Fastify's
 * (it refuses `__proto__` keys).
 */
export function registerJsonBodyParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    try {
      checkDocumentDepth(body as string, 'the request body');
    } catch (err) {
      done(err as Error, undefined);
      return;
    }
    parse(req, body as string, done);
  });
}
