import { FastifyInstance } from 'fastify';

/** Fastify's errors carry a statusCode; the error filter turns it into `{error, message}`. */
class UnsupportedMediaTypeError extends Error {
  readonly statusCode = 415;
  constructor() {
    super('the body must be JSON, sent with content-type: application/json');
  }
}

class PayloadTooLargeError extends Error {
  readonly statusCode = 413;
  constructor(limit: number) {
    super(`the body is larger than ${limit / 1024} KiB`);
  }
}

/** Fastify route config of a route that takes XML bodies (as text). */
export interface XmlBodyRouteConfig {
  xmlBody?: boolean;
}

/**
 * The only body the API reads is JSON. Replaces Fastify's and Nest's parsers (JSON, text/plain,
 * form-encoded), which turned a text or form body into a string or an object of strings that then
 * failed validation with a confusing 400. Now:
 * - application/json: parsed with Fastify's own parser (`__proto__`/`constructor` keys are errors);
 * - an empty body, whatever its content type, is no body: HTTP wrappers send `content-type:
 *   application/json` on a bodiless heartbeat or DELETE;
 * - application/xml and text/xml, on the routes that take XML (route config `xmlBody: true`: the
 *   Eureka door, whose clients may register in XML): handed to the route as text, which parses it;
 * - any other non-empty body, or one without a content type: 415.
 * Bodies over `bodyLimit` are 413 before any of this (Fastify counts while it reads).
 */
export function registerBodyParsers(fastify: FastifyInstance, bodyLimit: number, largeBodyRoutes: Readonly<Record<string, number>> = {}): void {
  fastify.removeAllContentTypeParsers();
  const parseJson = fastify.getDefaultJsonParser('error', 'error');
  const largest = Math.max(bodyLimit, ...Object.values(largeBodyRoutes));
  // Read up to the largest limit any route has, then hold every route to its own: the batch
  // heartbeat route takes 1000 refs, a registration still at most `bodyLimit`.
  fastify.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: largest }, (request, body, done) => {
    const limit = largeBodyRoutes[request.routeOptions.url ?? ''] ?? bodyLimit;
    if (Buffer.byteLength(body as string) > limit) return done(new PayloadTooLargeError(limit), undefined);
    if ((body as string).trim() === '') return done(null, undefined);
    parseJson(request, body as string, done);
  });
  fastify.addContentTypeParser(['application/xml', 'text/xml'], { parseAs: 'string', bodyLimit }, (request, body, done) => {
    if ((body as string).trim() === '') return done(null, undefined);
    if (!(request.routeOptions.config as XmlBodyRouteConfig | undefined)?.xmlBody) return done(new UnsupportedMediaTypeError(), undefined);
    done(null, body);
  });
  fastify.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_request, body, done) => {
    if ((body as Buffer).length === 0) return done(null, undefined);
    done(new UnsupportedMediaTypeError(), undefined);
  });
}
