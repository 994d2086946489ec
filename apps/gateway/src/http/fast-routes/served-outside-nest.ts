/**
 * The body of a Nest controller method whose route serveHotRoutesOutsideNest() serves: the method is
 * declared for the OpenAPI document only, and its handler is swapped before the route is registered.
 */
export function servedOutsideNest(): never {
  throw new Error('served by http/fast-routes; this controller method only declares the route for the OpenAPI document');
}
