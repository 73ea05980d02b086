// Stage: find the route for a request (virtual host by Host, then routes in order), and
// for a route action the one cluster this request goes to.
import type http from 'node:http';
import type { ConfigSnapshot } from '../xds/snapshot.js';
import type { HttpConnectionManagerConfig } from '../xds/resources/listener.js';
import type { ClusterSpecifier, RedirectAction, RouteMatch, RouteTable } from '../xds/resources/route.js';
import type { HashPolicy } from '../xds/resources/hash-policy.js';
import type { ConnectionContext } from '../runtime.js';
import { hash32, pickWeighted } from '../upstream/load-balancer.js';
import { firstValue } from './headers.js';
import { rewritePath } from './path-rewrite.js';

export function routeTableFor(hcm: HttpConnectionManagerConfig, snapshot: ConfigSnapshot): RouteTable | undefined {
  return hcm.routeConfig ?? (hcm.rds ? snapshot.routes.get(hcm.rds)?.value : undefined);
}

export function matchRequest(table: RouteTable | undefined, req: http.IncomingMessage): RouteMatch | undefined {
  if (!table) return undefined;
  return table.match(req.headers.host ?? '', req.url ?? '/', req.headers);
}

/** Envoy's require_tls redirect: the same host (default port dropped) and path over https. */
export function httpsRedirectLocation(req: http.IncomingMessage): string {
  const host = (req.headers.host ?? (req.headers[':authority'] as string | undefined) ?? '').replace(/:80$/, '');
  return `https://${host}${req.url ?? '/'}`;
}

export function chooseCluster(target: ClusterSpecifier, random = Math.random): string | undefined {
  if (target.kind === 'cluster') return target.name;
  return pickWeighted(target.clusters, target.totalWeight, random)?.name;
}

/** The hash for RING_HASH from the route's hash_policy list, or undefined when none applies. */
export function requestHash(policies: readonly HashPolicy[], req: http.IncomingMessage, ctx: ConnectionContext): number | undefined {
  let hash: number | undefined;
  for (const p of policies) {
    let key: string | undefined;
    if (p.kind === 'header') {
      const v = req.headers[p.name];
      key = Array.isArray(v) ? v.join(',') : v;
    } else if (p.kind === 'cookie') {
      key = cookieValue(req.headers.cookie, p.name);
    } else if (p.kind === 'sourceIp') {
      key = ctx.downstreamRemote.replace(/:\d+$/, '');
    } else {
      key = new URL(req.url ?? '/', 'http://x').searchParams.get(p.name) ?? undefined;
    }
    if (key === undefined) continue;
    // Several policies combine, as Envoy does, by mixing their hashes.
    const h = hash32(key);
    hash = hash === undefined ? h : (((hash << 1) | (hash >>> 31)) ^ h) >>> 0;
    if (p.terminal) break;
  }
  return hash;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The Location of a redirect action, built from the request as Envoy does. */
export function redirectLocation(a: RedirectAction, req: http.IncomingMessage, matchedPrefix: string | undefined): string {
  const url = req.url ?? '/';
  const hostHeader = req.headers.host ?? '';
  const colon = hostHeader.lastIndexOf(':');
  const reqHost = colon > 0 && !hostHeader.endsWith(']') ? hostHeader.slice(0, colon) : hostHeader;
  const reqPort = colon > 0 && !hostHeader.endsWith(']') ? hostHeader.slice(colon + 1) : '';
  const scheme = a.scheme ?? (firstValue(req.headers['x-forwarded-proto']) ?? 'http');
  const host = a.host ?? reqHost;
  // A scheme change drops the request's port unless one is given (Envoy).
  const port = a.port !== undefined ? String(a.port) : a.scheme !== undefined ? '' : reqPort;
  const defaultPort = (scheme === 'https' && port === '443') || (scheme === 'http' && port === '80');
  let path = a.path !== undefined ? a.path : rewritePath(url, matchedPrefix, a.prefixRewrite, a.regexRewrite);
  if (a.path !== undefined && !a.path.includes('?') && !a.stripQuery) {
    const q = url.indexOf('?');
    if (q >= 0) path += url.slice(q);
  }
  if (a.stripQuery) {
    const q = path.indexOf('?');
    if (q >= 0) path = path.slice(0, q);
  }
  return `${scheme}://${host}${port && !defaultPort ? `:${port}` : ''}${path}`;
}
