// Translation of a VirtualService's http[] rules into Envoy routes for one service port.
// Istio semantics: rules in order, first match wins; the match blocks of one rule are ORed
// (one Envoy route each, same action); a block with `port` only applies on that port.
import type { Destination, HTTPMatchRequest, HTTPRoute, HTTPRouteDestination, StringMatch } from '../../../api/istio/index.js';
import type { PushContext } from '../../model/push-context.js';
import type { ServiceModel } from '../../model/service.js';
import type { VirtualServiceModel } from '../../model/istio-config.js';
import { outboundClusterName } from './names.js';
import { parseDuration, type HeaderMatcher, type Json, type Route, type RouteAction, type RouteMatch } from './envoy.js';

/**
 * The cluster a destination names. Without destination.port, a single-port service's port
 * is used, otherwise the port the request came in on (Istio's rule).
 */
export function destinationCluster(push: PushContext, namespace: string, dest: Destination, listenerPort: number): string {
  const fqdn = push.resolve(dest.host, namespace);
  const svc = push.service(fqdn);
  const port = dest.port?.number ?? (svc && svc.ports.length === 1 ? svc.ports[0].port : listenerPort);
  return outboundClusterName(port, dest.subset ?? '', fqdn);
}

export function defaultRoute(svc: ServiceModel, port: number): Route {
  return { name: 'default', match: { prefix: '/' }, route: { cluster: outboundClusterName(port, '', svc.fqdn) } };
}

/** The routes of the virtual host of `svc` on `port`. */
export function serviceRoutes(push: PushContext, svc: ServiceModel, port: number): Route[] {
  const vs = push.virtualServiceFor(svc.fqdn);
  if (!vs) return [defaultRoute(svc, port)];
  return virtualServiceRoutes(push, vs, port);
}

export function virtualServiceRoutes(push: PushContext, vs: VirtualServiceModel, port: number): Route[] {
  const routes: Route[] = [];
  vs.http.forEach((rule, i) => {
    const action = routeAction(push, vs, rule, port);
    if (!action) return;
    const blocks = rule.match?.length ? rule.match.filter((m) => m.port === undefined || m.port === port) : [undefined];
    if (!blocks.length) return;
    const name = rule.name ?? `${vs.namespace}/${vs.name}.http[${i}]`;
    for (const block of blocks) routes.push({ name, match: routeMatch(block), ...action });
  });
  return routes;
}

function routeAction(push: PushContext, vs: VirtualServiceModel, rule: HTTPRoute, port: number): Pick<Route, 'route' | 'directResponse'> | undefined {
  if (rule.directResponse) {
    const body = rule.directResponse.body?.string;
    return { directResponse: { status: rule.directResponse.status, ...(body !== undefined ? { body: { inlineString: body } } : {}) } };
  }
  const dests = (rule.route ?? []).filter((d) => d.destination?.host);
  if (!dests.length) return undefined; // redirect/delegate: not translated yet (reported by the model)
  const action: RouteAction = {};
  const weighted = weightedDestinations(dests);
  if (weighted.length === 1) {
    action.cluster = destinationCluster(push, vs.namespace, weighted[0].d.destination, port);
  } else {
    action.weightedClusters = {
      clusters: weighted.map(({ d, weight }) => ({ name: destinationCluster(push, vs.namespace, d.destination, port), weight: { value: weight } })),
    };
  }
  const timeout = parseDuration(rule.timeout);
  if (timeout) action.timeout = timeout;
  const retries = rule.retries;
  if (retries && (retries.attempts ?? 0) > 0) {
    const policy: Json = { retryOn: retries.retryOn ?? 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes', numRetries: { value: retries.attempts } };
    const perTry = parseDuration(retries.perTryTimeout);
    if (perTry) policy.perTryTimeout = perTry;
    action.retryPolicy = policy;
  }
  if (rule.rewrite?.uri !== undefined) action.prefixRewrite = rule.rewrite.uri;
  if (rule.rewrite?.authority) action.hostRewriteLiteral = rule.rewrite.authority;
  return { route: action };
}

// A single destination takes all traffic whatever its weight; with several, unset weights
// count as 0 unless none is set (then the split is even), and 0-weight entries are dropped.
function weightedDestinations(dests: HTTPRouteDestination[]): { d: HTTPRouteDestination; weight: number }[] {
  if (dests.length === 1) return [{ d: dests[0], weight: 100 }];
  const anySet = dests.some((d) => d.weight !== undefined);
  const all = dests.map((d) => ({ d, weight: anySet ? d.weight ?? 0 : 1 }));
  const positive = all.filter((w) => w.weight > 0);
  return positive.length ? positive : all.slice(0, 1);
}

function routeMatch(m: HTTPMatchRequest | undefined): RouteMatch {
  const out: RouteMatch = {};
  const uri = m?.uri;
  if (uri?.exact !== undefined) out.path = uri.exact;
  else if (uri?.regex !== undefined) out.safeRegex = { regex: uri.regex };
  else out.prefix = uri?.prefix ?? '/';
  if (m?.ignoreUriCase) out.caseSensitive = { value: false };
  const headers: HeaderMatcher[] = [];
  const pseudo: [string, StringMatch | undefined][] = [[':method', m?.method], [':authority', m?.authority], [':scheme', m?.scheme]];
  for (const [name, sm] of pseudo) if (sm) headers.push(headerMatcher(name, sm, false));
  for (const [name, sm] of Object.entries(m?.headers ?? {})) headers.push(headerMatcher(name, sm, false));
  for (const [name, sm] of Object.entries(m?.withoutHeaders ?? {})) headers.push(headerMatcher(name, sm, true));
  if (headers.length) out.headers = headers;
  const query = Object.entries(m?.queryParams ?? {}).map(([name, sm]) => {
    const stringMatch = stringMatcher(sm);
    return stringMatch ? { name, stringMatch } : { name, presentMatch: true };
  });
  if (query.length) out.queryParameters = query;
  return out;
}

function headerMatcher(name: string, sm: StringMatch, invert: boolean): HeaderMatcher {
  const stringMatch = stringMatcher(sm);
  const h: HeaderMatcher = stringMatch ? { name, stringMatch } : { name, presentMatch: true };
  if (invert) h.invertMatch = true;
  return h;
}

/** Istio StringMatch -> Envoy StringMatcher; undefined for `{}` (presence). */
function stringMatcher(sm: StringMatch): Json | undefined {
  if (sm.exact !== undefined) return { exact: sm.exact };
  if (sm.prefix !== undefined) return { prefix: sm.prefix };
  if (sm.regex !== undefined) return { safeRegex: { regex: sm.regex } };
  return undefined;
}
