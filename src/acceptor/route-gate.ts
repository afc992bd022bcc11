/**
 * Stage 2 of a request (acceptor.ts): what the route says about it, from its head alone. The
 * route exists, takes the method and the media type, the credentials are valid, a declared
 * Content-Length is within the route's limit, and crowd is not draining. Returns the refusal,
 * or null to go on. Everything a later stage needs from the uWS request is read here, since
 * uWS frees the request when the handler returns.
 */
import type { HttpRequest } from '@trufflesuite/uws-js-unofficial';
import type { ErrorCode } from '../errors.js';
import type { Route } from './route-table.js';
import type { RequestHead } from './request-head.js';

export function routeRefusal(route: Route, head: RequestHead, media: string, req: HttpRequest, draining: boolean): ErrorCode | null {
  if (!route.methods.has(head.method)) return 'CROWD_METHOD_NOT_ALLOWED';
  if (!route.acceptsAnyType && !route.contentTypes.has(media)) return 'CROWD_UNSUPPORTED_MEDIA_TYPE';
  if (route.bearer) {
    const denied = route.bearer.check(req.getHeader('authorization'));
    if (denied) return denied;
  }
  if (head.cl > route.cfg.maxBodyBytes) return 'CROWD_BODY_TOO_LARGE';
  if (draining) return 'CROWD_DRAINING';
  return null;
}

/** The route's keepHeaders present on the request, flat [name, value, ...] in config order. */
export function keptHeaders(route: Route, req: HttpRequest): string[] {
  const kept: string[] = [];
  for (const name of route.keepHeaders) {
    const v = req.getHeader(name);
    if (v !== '') kept.push(name, v);
  }
  return kept;
}
