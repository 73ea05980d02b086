// Translation of the VirtualServices of a host into Envoy routes for one service port, as
// seen by one proxy. Istio semantics: the VirtualServices for a host are merged (their rules
// concatenated, oldest first); rules in order, first match wins; the match blocks of a rule
// are ORed (one Envoy route each, same action); a block with `port` applies on that port
// only, and one with sourceLabels/sourceNamespace only for proxies of those workloads.
import type { Destination, HTTPMatchRequest, HTTPRoute, HTTPRouteDestination, StringMatch } from '../../../api/istio/index.js';
import { matchesMap } from '../../../api/kube/index.js';
import type { PushContext } from '../../model/push-context.js';
import type { ServiceModel } from '../../model/service.js';
import type { VirtualServiceModel } from '../../model/istio-config.js';
import { outboundClusterName } from './names.js';
import { MESH_GATEWAY, gatewayRef } from '../../model/gateway.js';
import { fractionalPercent, parseDuration, type HeaderMatcher, type Json, type Route, type RouteAction, type RouteMatch, type WeightedCluster } from './envoy.js';
import { CORS_FILTER, FAULT_FILTER, corsConfig, faultConfig, headerFields, redirectAction, retryPolicy, stringMatcher } from './route-policy.js';
import { clusterTrafficPolicy, hashPolicy } from './traffic-policy.js';
import { destinationPort, fallBack } from './destination-fallback.js';

/** What routes depend on about the proxy they are generated for. */
export interface RouteProxy {
  namespace: string;
  labels: Readonly<Record<string, string>>;
  /** `ns/name` of the Gateway routes are built for; undefined for sidecars (the `mesh` gateway). */
  gateway?: string;
}

/** A match block's `gateways` narrows it to those gateways (`mesh` = sidecars); absent means all the rule's. */
function gatewayMatches(m: HTTPMatchRequest, vsNamespace: string, proxy: RouteProxy | undefined): boolean {
  if (!m.gateways?.length) return true;
  const want = proxy?.gateway ?? MESH_GATEWAY;
  return m.gateways.some((g) => gatewayRef(g, vsNamespace) === want);
}

/**
 * The cluster a destination names. Without destination.port, a single-port service's port
 * is used, otherwise the port the request came in on (Istio's rule).
 */
export function destinationCluster(push: PushContext, namespace: string, dest: Destination, listenerPort: number): string {
  return outboundClusterName(destinationPort(push, namespace, dest, listenerPort), dest.subset ?? '', push.resolve(dest.host, namespace));
}

export function defaultRoute(push: PushContext, svc: ServiceModel, port: number, proxy?: RouteProxy): Route {
  const cluster = outboundClusterName(port, '', svc.fqdn);
  const hash = hashPolicy(clusterTrafficPolicy(push, cluster, proxy?.namespace)?.loadBalancer?.consistentHash);
  const route: RouteAction = { cluster, timeout: { seconds: 0 } };
  const retry = retryPolicy(undefined, hash !== undefined);
  if (retry) route.retryPolicy = retry;
  if (hash) route.hashPolicy = hash;
  return { name: 'default', match: { prefix: '/' }, route };
}

/** The routes of the virtual host of `svc` on `port`, for a proxy. */
export function serviceRoutes(push: PushContext, svc: ServiceModel, port: number, proxy?: RouteProxy): Route[] {
  const vss = push.virtualServicesFor(svc.fqdn, proxy?.namespace);
  if (!vss.length) return [defaultRoute(push, svc, port, proxy)];
  return vss.flatMap((vs) => virtualServiceRoutes(push, vs, port, proxy));
}

/** Does a match block apply to this proxy (sourceLabels / sourceNamespace are selectors)? */
export function sourceMatches(m: { sourceLabels?: Record<string, string>; sourceNamespace?: string }, proxy: RouteProxy | undefined): boolean {
  if (!proxy) return true;
  if (m.sourceNamespace !== undefined && m.sourceNamespace !== proxy.namespace) return false;
  if (m.sourceLabels && !matchesMap(m.sourceLabels, proxy.labels as Record<string, string>)) return false;
  return true;
}

export function virtualServiceRoutes(push: PushContext, vs: VirtualServiceModel, port: number, proxy?: RouteProxy): Route[] {
  const routes: Route[] = [];
  vs.http.forEach((rule, i) => {
    const action = routeAction(push, vs, rule, port, proxy);
    if (!action) return;
    const blocks = rule.match?.length
      ? rule.match.filter((m) => (m.port === undefined || m.port === port) && sourceMatches(m, proxy) && gatewayMatches(m, vs.namespace, proxy))
      : [undefined];
    if (!blocks.length) return;
    const name = rule.name ?? `${vs.namespace}/${vs.name}.http[${i}]`;
    for (const block of blocks) routes.push({ name, match: routeMatch(block), ...action });
  });
  return routes;
}

type Action = Omit<Route, 'name' | 'match'>;

function routeAction(push: PushContext, vs: VirtualServiceModel, rule: HTTPRoute, port: number, proxy?: RouteProxy): Action | undefined {
  const common: Action = { ...headerFields(rule.headers) };
  const perFilter: Record<string, Json> = {};
  const fault = faultConfig(rule.fault);
  if (fault) perFilter[FAULT_FILTER] = fault;
  const cors = corsConfig(rule.corsPolicy);
  if (cors) perFilter[CORS_FILTER] = cors;
  if (Object.keys(perFilter).length) common.typedPerFilterConfig = perFilter;

  if (rule.directResponse) {
    const body = rule.directResponse.body?.string;
    return { directResponse: { status: rule.directResponse.status, ...(body !== undefined ? { body: { inlineString: body } } : {}) }, ...common };
  }
  if (rule.redirect) return { redirect: redirectAction(rule.redirect), ...common };
  const dests = (rule.route ?? []).filter((d) => d.destination?.host);
  if (!dests.length) return undefined; // delegate: not translated yet (reported by the model)
  const action: RouteAction = {};
  const weighted = fallBack(push, vs.namespace, weightedDestinations(dests), port);
  const clusters = weighted.map(({ d }) => destinationCluster(push, vs.namespace, d.destination, port));
  if (weighted.length === 1) {
    action.cluster = clusters[0];
    // A single destination's header operations apply to the whole route (Istio merges them).
    Object.assign(common, mergeHeaderFields(common, headerFields(weighted[0].d.headers)));
  } else {
    action.weightedClusters = {
      clusters: weighted.map(({ d, weight }, k) => ({ name: clusters[k], weight: { value: weight }, ...headerFields(d.headers) } satisfies WeightedCluster)),
    };
  }
  // Istio disables Envoy's 15 s default route timeout unless the rule sets one.
  action.timeout = parseDuration(rule.timeout) ?? { seconds: 0 };
  const hash = clusters.map((c) => hashPolicy(clusterTrafficPolicy(push, c, proxy?.namespace)?.loadBalancer?.consistentHash)).find((h) => h !== undefined);
  const retry = retryPolicy(rule.retries, hash !== undefined);
  if (retry) action.retryPolicy = retry;
  if (rule.rewrite?.uri !== undefined) action.prefixRewrite = rule.rewrite.uri;
  else if (rule.rewrite?.uriRegexRewrite?.match !== undefined) {
    action.regexRewrite = { pattern: { regex: rule.rewrite.uriRegexRewrite.match }, substitution: rule.rewrite.uriRegexRewrite.rewrite ?? '' };
  }
  if (rule.rewrite?.authority) action.hostRewriteLiteral = rule.rewrite.authority;
  if (hash) action.hashPolicy = hash;
  const mirrors = mirrorPolicies(push, vs, rule, port);
  if (mirrors.length) action.requestMirrorPolicies = mirrors;
  return { route: action, ...common };
}

function mergeHeaderFields(a: Action, b: Action): Action {
  const out: Action = {};
  for (const k of ['requestHeadersToAdd', 'requestHeadersToRemove', 'responseHeadersToAdd', 'responseHeadersToRemove'] as const) {
    const merged = [...(a[k] ?? []), ...(b[k] ?? [])];
    if (merged.length) (out as Record<string, unknown>)[k] = merged;
  }
  return out;
}

// `mirror` + `mirrorPercentage` (absent = 100%, the deprecated integer `mirrorPercent` too),
// and `mirrors[]` each with its own percentage.
function mirrorPolicies(push: PushContext, vs: VirtualServiceModel, rule: HTTPRoute, port: number): Json[] {
  const out: Json[] = [];
  const add = (dest: Destination, percent: number): void => {
    out.push({ cluster: destinationCluster(push, vs.namespace, dest, port), runtimeFraction: { defaultValue: fractionalPercent(percent) }, traceSampled: { value: false } });
  };
  if (rule.mirror?.host) add(rule.mirror, rule.mirrorPercentage?.value ?? rule.mirrorPercent ?? 100);
  for (const m of rule.mirrors ?? []) if (m.destination?.host) add(m.destination, m.percentage?.value ?? 100);
  return out;
}

// A single destination takes all traffic whatever its weight; with several, unset weights
// count as 0 unless none is set (then the split is even), and 0-weight entries are dropped.
export function weightedDestinations<T extends { weight?: number }>(dests: T[]): { d: T; weight: number }[] {
  if (dests.length === 1) return [{ d: dests[0], weight: 100 }];
  const anySet = dests.some((d) => d.weight !== undefined);
  const all = dests.map((d) => ({ d, weight: anySet ? d.weight ?? 0 : 1 }));
  const positive = all.filter((w) => w.weight > 0);
  return positive.length ? positive : all.slice(0, 1);
}

export function routeMatch(m: HTTPMatchRequest | undefined): RouteMatch {
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

export type { HTTPRouteDestination };
