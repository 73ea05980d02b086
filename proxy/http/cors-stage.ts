// Envoy's CORS filter for one request: a preflight from an allowed origin is answered here;
// an actual request from an allowed origin gets the allow-origin (and expose/credentials)
// headers on its response. Requests without Origin are not CORS requests and pass untouched.
import type http from 'node:http';
import type { CorsPolicy } from '../xds/resources/cors.js';
import type { Route, VirtualHost } from '../xds/resources/route.js';
import { firstValue } from './headers.js';

export type CorsOutcome =
  | { kind: 'none' }
  /** Answer the preflight locally with these headers. */
  | { kind: 'preflight'; headers: Record<string, string> }
  /** Forward; add these headers to the response. */
  | { kind: 'forward'; headers: Record<string, string> };

const NONE: CorsOutcome = { kind: 'none' };

export function corsPolicyFor(route: Route, virtualHost: VirtualHost): CorsPolicy | undefined {
  const p = route.cors ?? virtualHost.cors;
  return p?.enabled ? p : undefined;
}

export function evaluateCors(policy: CorsPolicy, req: http.IncomingMessage): CorsOutcome {
  const origin = firstValue(req.headers.origin);
  if (!origin) return NONE;
  const allowed = policy.allowOrigin.some((test) => test(origin));
  const preflight = req.method === 'OPTIONS' && !!firstValue(req.headers['access-control-request-method']);
  if (preflight) {
    if (!allowed) return policy.forwardNotMatchingPreflights ? NONE : { kind: 'preflight', headers: {} };
    const h: Record<string, string> = { 'access-control-allow-origin': origin };
    if (policy.allowCredentials) h['access-control-allow-credentials'] = 'true';
    if (policy.allowMethods) h['access-control-allow-methods'] = policy.allowMethods;
    if (policy.allowHeaders) h['access-control-allow-headers'] = policy.allowHeaders;
    if (policy.maxAge) h['access-control-max-age'] = policy.maxAge;
    return { kind: 'preflight', headers: h };
  }
  if (!allowed) return NONE;
  const h: Record<string, string> = { 'access-control-allow-origin': origin };
  if (policy.allowCredentials) h['access-control-allow-credentials'] = 'true';
  if (policy.exposeHeaders) h['access-control-expose-headers'] = policy.exposeHeaders;
  return { kind: 'forward', headers: h };
}

/** Answers a preflight: 200, no body (Envoy). */
export function sendPreflight(res: http.ServerResponse, headers: Record<string, string>): void {
  res.writeHead(200, { ...headers, 'content-length': 0 });
  res.end();
}
