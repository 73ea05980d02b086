// Golden tests of Istio's traffic API translation: VirtualService http features (redirect,
// rewrite, timeout, retries, fault, mirror, CORS, headers, matches, merge of several
// VirtualServices), tcp routes on per-service TCP listeners, and DestinationRule policies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL, packAny, unpackAny } from '../../api/xds/protos.js';
import { PushContext } from '../../pilot/model/push-context.js';
import { parseNodeId, resolveProxy } from '../../pilot/model/proxy.js';
import { generateClusters, generateListeners, generateRoutes, GENERATORS } from '../../pilot/xds/generators/index.js';
import { RATINGS, REVIEWS, V1_NODE_ID, bookinfo, reviewsDr } from './fixtures.js';
import type { DestinationRule, HTTPRoute, TrafficPolicy, VirtualService } from '../../api/istio/index.js';
import type { Route } from '../../pilot/xds/generators/envoy.js';

const MAX = 4294967295;
const PREVIOUS_HOSTS = [{ name: 'envoy.retry_host_predicates.previous_hosts', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate' } }];

function vs(name: string, http: HTTPRoute[], extra: Partial<VirtualService['spec']> = {}, created = '2025-01-01T00:00:00Z'): VirtualService {
  return { metadata: { name, namespace: 'default', creationTimestamp: created }, spec: { hosts: ['reviews'], http, ...extra } };
}

function setup(vss: VirtualService[], dr?: DestinationRule) {
  const inputs = bookinfo(vss);
  if (dr) inputs.destinationRules = [dr];
  const push = PushContext.build(inputs, { version: '1' });
  const proxy = resolveProxy(parseNodeId(V1_NODE_ID), push);
  return { push, proxy };
}

function reviewsRoutes(vss: VirtualService[], dr?: DestinationRule): Route[] {
  const { push, proxy } = setup(vss, dr);
  return generateRoutes(push, proxy).find((r) => r.name === '9080')!.virtualHosts[0].routes;
}

/** Encodes through the real Envoy types and back, so field names and shapes are checked. */
function roundTrip(typeUrl: string, resource: object): Record<string, unknown> {
  return unpackAny(packAny(typeUrl, resource));
}

test('redirect, rewrite (uri, regex, authority), explicit timeout', () => {
  const routes = reviewsRoutes([vs('r', [
    { match: [{ uri: { prefix: '/old' } }], redirect: { uri: '/new', authority: 'ratings', redirectCode: 302 } },
    { match: [{ uri: { prefix: '/api' } }], rewrite: { uri: '/v2/api', authority: 'reviews.internal' }, timeout: '3s', route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
    { match: [{ uri: { regex: '^/u/(.*)$' } }], rewrite: { uriRegexRewrite: { match: '^/u/(.*)$', rewrite: '/users/\\1' } }, route: [{ destination: { host: 'reviews' } }] },
  ])]);
  assert.deepEqual(routes[0], { name: 'default/r.http[0]', match: { prefix: '/old' }, redirect: { pathRedirect: '/new', hostRedirect: 'ratings', responseCode: 'FOUND' } });
  assert.deepEqual(routes[1].route?.prefixRewrite, '/v2/api');
  assert.deepEqual(routes[1].route?.hostRewriteLiteral, 'reviews.internal');
  assert.deepEqual(routes[1].route?.timeout, { seconds: 3 });
  assert.deepEqual(routes[2].route?.regexRewrite, { pattern: { regex: '^/u/(.*)$' }, substitution: '/users/\\1' });
  assert.deepEqual(routes[2].route?.timeout, { seconds: 0 }, 'no timeout in the rule: Envoy 15 s default disabled');
});

test('retries: default (safe conditions only), explicit with status codes, attempts 0 disables', () => {
  const routes = reviewsRoutes([vs('r', [
    { match: [{ uri: { prefix: '/a' } }], route: [{ destination: { host: 'reviews' } }] },
    { match: [{ uri: { prefix: '/b' } }], retries: { attempts: 3, perTryTimeout: '250ms', retryOn: '5xx,503,gateway-error', backoff: '50ms' }, route: [{ destination: { host: 'reviews' } }] },
    { match: [{ uri: { prefix: '/c' } }], retries: { attempts: 0 }, route: [{ destination: { host: 'reviews' } }] },
    { match: [{ uri: { prefix: '/d' } }], retries: { attempts: 1, retryIgnorePreviousHosts: false }, route: [{ destination: { host: 'reviews' } }] },
  ])]);
  assert.deepEqual(routes[0].route?.retryPolicy, { retryOn: 'connect-failure,refused-stream', numRetries: { value: 2 }, hostSelectionRetryMaxAttempts: '5', retryHostPredicate: PREVIOUS_HOSTS });
  assert.deepEqual(routes[1].route?.retryPolicy, {
    retryOn: '5xx,gateway-error,retriable-status-codes', numRetries: { value: 3 }, retriableStatusCodes: [503],
    perTryTimeout: { seconds: 0, nanos: 250000000 }, hostSelectionRetryMaxAttempts: '5', retryHostPredicate: PREVIOUS_HOSTS,
    retryBackOff: { baseInterval: { seconds: 0, nanos: 50000000 } },
  });
  assert.equal(routes[2].route?.retryPolicy, undefined);
  assert.deepEqual(routes[3].route?.retryPolicy, { retryOn: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes', numRetries: { value: 1 }, hostSelectionRetryMaxAttempts: '5' });
});

test('fault delay/abort with percentage, CORS and mirror as Envoy per-filter config / mirror policies', () => {
  const routes = reviewsRoutes([vs('r', [{
    fault: { delay: { fixedDelay: '5s', percentage: { value: 10 } }, abort: { httpStatus: 503, percentage: { value: 0.5 } } },
    corsPolicy: { allowOrigins: [{ exact: 'https://a.example' }, { regex: '.*\\.b\\.example' }], allowMethods: ['GET', 'POST'], allowHeaders: ['x-a'], exposeHeaders: ['x-b'], maxAge: '24h', allowCredentials: true },
    mirror: { host: 'ratings' }, mirrorPercentage: { value: 25 },
    route: [{ destination: { host: 'reviews', subset: 'v1' } }],
  }, {
    match: [{ uri: { prefix: '/grpc' } }], fault: { abort: { grpcStatus: 'UNAVAILABLE', percentage: { value: 100 } } },
    mirrors: [{ destination: { host: 'reviews', subset: 'v2' } }],
    route: [{ destination: { host: 'reviews', subset: 'v1' } }],
  }])]);
  assert.deepEqual(routes[0].typedPerFilterConfig, {
    'envoy.filters.http.fault': {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
      delay: { fixedDelay: { seconds: 5 }, percentage: { numerator: 100000, denominator: 'MILLION' } },
      abort: { httpStatus: 503, percentage: { numerator: 5000, denominator: 'MILLION' } },
    },
    'envoy.filters.http.cors': {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy',
      allowOriginStringMatch: [{ exact: 'https://a.example' }, { safeRegex: { regex: '.*\\.b\\.example' } }],
      allowMethods: 'GET,POST', allowHeaders: 'x-a', exposeHeaders: 'x-b', maxAge: '86400', allowCredentials: { value: true },
    },
  });
  assert.deepEqual(routes[0].route?.requestMirrorPolicies, [{ cluster: `outbound|8080||${RATINGS}`, runtimeFraction: { defaultValue: { numerator: 250000, denominator: 'MILLION' } }, traceSampled: { value: false } }]);
  assert.deepEqual(routes[1].typedPerFilterConfig?.['envoy.filters.http.fault'], { '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault', abort: { grpcStatus: 14, percentage: { numerator: 1000000, denominator: 'MILLION' } } });
  assert.deepEqual(routes[1].route?.requestMirrorPolicies?.[0].runtimeFraction, { defaultValue: { numerator: 1000000, denominator: 'MILLION' } });
  // The whole route configuration encodes as Envoy's types (nested Any included).
  const { push, proxy } = setup([vs('r', [{ fault: { delay: { fixedDelay: '1s', percentage: { value: 50 } } }, corsPolicy: { allowOrigins: [{ exact: 'x' }] }, route: [{ destination: { host: 'reviews' } }] }])]);
  const decoded = roundTrip(TYPE_URL.routeConfiguration, generateRoutes(push, proxy)[1]) as { virtualHosts: { routes: { typedPerFilterConfig: Record<string, { '@type': string }> }[] }[] };
  assert.deepEqual(Object.keys(decoded.virtualHosts[0].routes[0].typedPerFilterConfig).sort(), ['envoy.filters.http.cors', 'envoy.filters.http.fault']);
});

test('headers: request/response set/add/remove on the route and per weighted destination', () => {
  const routes = reviewsRoutes([vs('r', [{
    headers: { request: { set: { 'x-set': '1' }, add: { 'x-add': '2' }, remove: ['x-rm'] }, response: { set: { 'x-r': 'a' }, remove: ['server'] } },
    route: [
      { destination: { host: 'reviews', subset: 'v1' }, weight: 50, headers: { request: { set: { 'x-v': 'v1' } } } },
      { destination: { host: 'reviews', subset: 'v2' }, weight: 50, headers: { response: { add: { 'x-v': 'v2' } } } },
    ],
  }])]);
  const r = routes[0];
  assert.deepEqual(r.requestHeadersToAdd, [
    { header: { key: 'x-set', value: '1' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    { header: { key: 'x-add', value: '2' }, appendAction: 'APPEND_IF_EXISTS_OR_ADD' },
  ]);
  assert.deepEqual(r.requestHeadersToRemove, ['x-rm']);
  assert.deepEqual(r.responseHeadersToAdd, [{ header: { key: 'x-r', value: 'a' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }]);
  assert.deepEqual(r.responseHeadersToRemove, ['server']);
  assert.deepEqual(r.route?.weightedClusters?.clusters, [
    { name: `outbound|9080|v1|${REVIEWS}`, weight: { value: 50 }, requestHeadersToAdd: [{ header: { key: 'x-v', value: 'v1' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }] },
    { name: `outbound|9080|v2|${REVIEWS}`, weight: { value: 50 }, responseHeadersToAdd: [{ header: { key: 'x-v', value: 'v2' }, appendAction: 'APPEND_IF_EXISTS_OR_ADD' }] },
  ]);
});

test('matches: method, authority, scheme, queryParams, withoutHeaders, ignoreUriCase; sourceLabels/sourceNamespace select proxies', () => {
  const rules: HTTPRoute[] = [
    { name: 'm', match: [{ method: { exact: 'GET' }, authority: { prefix: 'reviews' }, scheme: { exact: 'http' }, queryParams: { debug: { exact: '1' }, flag: {} }, withoutHeaders: { 'x-skip': { exact: 'yes' } }, uri: { prefix: '/Api' }, ignoreUriCase: true }], route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
    { name: 'from-v1', match: [{ sourceLabels: { version: 'v1' } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
    { name: 'from-shop', match: [{ sourceNamespace: 'shop' }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
    { name: 'rest', route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
  ];
  const routes = reviewsRoutes([vs('r', rules)]);
  assert.deepEqual(routes[0].match, {
    prefix: '/Api', caseSensitive: { value: false },
    headers: [
      { name: ':method', stringMatch: { exact: 'GET' } }, { name: ':authority', stringMatch: { prefix: 'reviews' } }, { name: ':scheme', stringMatch: { exact: 'http' } },
      { name: 'x-skip', stringMatch: { exact: 'yes' }, invertMatch: true },
    ],
    queryParameters: [{ name: 'debug', stringMatch: { exact: '1' } }, { name: 'flag', presentMatch: true }],
  });
  // The proxy is a reviews v1 pod in namespace default: from-v1 applies, from-shop does not.
  assert.deepEqual(routes.map((r) => r.name), ['m', 'from-v1', 'rest']);
  const { push } = setup([vs('r', rules)]);
  const v2Proxy = resolveProxy(parseNodeId('sidecar~10.244.0.12~reviews-v2-def.default~default.svc.cluster.local'), push);
  assert.deepEqual(generateRoutes(push, v2Proxy)[1].virtualHosts[0].routes.map((r) => r.name), ['m', 'rest']);
});

test('several VirtualServices for one host are merged, oldest first; exportTo hides a rule from other namespaces', () => {
  const newer = vs('b-newer', [{ name: 'newer', match: [{ uri: { prefix: '/b' } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] }], {}, '2025-02-01T00:00:00Z');
  const older = vs('z-older', [{ name: 'older', match: [{ uri: { prefix: '/a' } }], route: [{ destination: { host: 'reviews', subset: 'v1' } }] }], {}, '2025-01-01T00:00:00Z');
  assert.deepEqual(reviewsRoutes([newer, older]).map((r) => r.name), ['older', 'newer']);
  const privateVs = vs('private', [{ name: 'private', route: [{ destination: { host: 'reviews', subset: 'v2' } }] }], { exportTo: ['.'] });
  const { push } = setup([privateVs]);
  assert.deepEqual(generateRoutes(push, { namespace: 'default' })[1].virtualHosts[0].routes.map((r) => r.name), ['private']);
  assert.deepEqual(generateRoutes(push, { namespace: 'shop' })[1].virtualHosts[0].routes.map((r) => r.name), ['default']);
});

test('tcp routes: a tcp-protocol port gets a <clusterIP>_<port> listener with a weighted TcpProxy', () => {
  const inputs = bookinfo([]);
  inputs.services.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'db', namespace: 'default' }, spec: { clusterIP: '10.96.0.70', selector: { app: 'db' }, ports: [{ name: 'tcp-db', port: 5432, targetPort: 5432, protocol: 'TCP' }] } });
  inputs.services.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'cache', namespace: 'default' }, spec: { clusterIP: '10.96.0.71', selector: { app: 'cache' }, ports: [{ name: 'redis', port: 6379, appProtocol: 'tcp', protocol: 'TCP' }] } });
  inputs.destinationRules.push({ metadata: { name: 'db', namespace: 'default' }, spec: { host: 'db', subsets: [{ name: 'a', labels: { v: 'a' } }, { name: 'b', labels: { v: 'b' } }] } });
  inputs.virtualServices.push({ metadata: { name: 'db', namespace: 'default' }, spec: { hosts: ['db'], tcp: [{ match: [{ port: 5432 }], route: [{ destination: { host: 'db', subset: 'a' }, weight: 70 }, { destination: { host: 'db', subset: 'b' }, weight: 30 }] }] } });
  const push = PushContext.build(inputs, { version: '1' });
  const proxy = resolveProxy(parseNodeId(V1_NODE_ID), push);
  const listeners = generateListeners(push, proxy);
  assert.deepEqual(listeners.map((l) => l.name), ['virtualOutbound', '0.0.0.0_8080', '0.0.0.0_9080', '10.96.0.71_6379', '10.96.0.70_5432', 'virtualInbound']);
  const db = listeners.find((l) => l.name === '10.96.0.70_5432')!;
  assert.deepEqual(db, {
    name: '10.96.0.70_5432', address: { socketAddress: { address: '10.96.0.70', portValue: 5432 } }, trafficDirection: 'OUTBOUND', bindToPort: { value: false },
    filterChains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typedConfig: {
      '@type': TYPE_URL.tcpProxy, statPrefix: 'outbound|5432||db.default.svc.cluster.local',
      weightedClusters: { clusters: [{ name: 'outbound|5432|a|db.default.svc.cluster.local', weight: 70 }, { name: 'outbound|5432|b|db.default.svc.cluster.local', weight: 30 }] },
    } }] }],
  });
  const cache = listeners.find((l) => l.name === '10.96.0.71_6379')!;
  assert.equal((cache.filterChains[0].filters[0].typedConfig as { cluster?: string }).cluster, 'outbound|6379||cache.default.svc.cluster.local');
  // No route configuration for TCP ports.
  assert.deepEqual(generateRoutes(push, proxy).map((r) => r.name), ['8080', '9080']);
  for (const l of listeners) roundTrip(TYPE_URL.listener, l);
});

function drWith(policy: TrafficPolicy, subsetPolicy?: TrafficPolicy): DestinationRule {
  const dr = reviewsDr();
  dr.spec.trafficPolicy = policy;
  if (subsetPolicy) dr.spec.subsets![1].trafficPolicy = subsetPolicy;
  return dr;
}

function reviewsClusters(dr: DestinationRule, vss: VirtualService[] = []) {
  const { push, proxy } = setup(vss, dr);
  const all = generateClusters(push, proxy);
  for (const c of all) roundTrip(TYPE_URL.cluster, c);
  return (subset: string) => all.find((c) => c.name === `outbound|9080|${subset}|${REVIEWS}`)!;
}

test('DestinationRule: simple LB, connection pool, outlier detection; subset overrides; port-level replaces', () => {
  const get = reviewsClusters(drWith({
    loadBalancer: { simple: 'ROUND_ROBIN' },
    connectionPool: { tcp: { maxConnections: 100, connectTimeout: '2s' }, http: { http1MaxPendingRequests: 10, http2MaxRequests: 50, maxRetries: 3, idleTimeout: '30s', maxRequestsPerConnection: 1 } },
    outlierDetection: { consecutive5xxErrors: 7, consecutiveGatewayErrors: 3, interval: '5s', baseEjectionTime: '1m', maxEjectionPercent: 50 },
    portLevelSettings: [{ port: { number: 9999 }, loadBalancer: { simple: 'RANDOM' } }],
  }, { loadBalancer: { simple: 'RANDOM' } }));
  assert.deepEqual(get(''), {
    name: `outbound|9080||${REVIEWS}`, type: 'EDS', edsClusterConfig: { edsConfig: { ads: {}, resourceApiVersion: 'V3' } },
    lbPolicy: 'ROUND_ROBIN', connectTimeout: { seconds: 2 },
    circuitBreakers: { thresholds: [{ maxConnections: { value: 100 }, maxPendingRequests: { value: 10 }, maxRequests: { value: 50 }, maxRetries: { value: 3 }, trackRemaining: true }] },
    typedExtensionProtocolOptions: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      commonHttpProtocolOptions: { idleTimeout: { seconds: 30 }, maxRequestsPerConnection: { value: 1 } }, explicitHttpConfig: { httpProtocolOptions: {} },
    } },
    outlierDetection: {
      enforcingSuccessRate: { value: 0 }, consecutive5xx: { value: 7 }, enforcingConsecutive5xx: { value: 100 },
      consecutiveGatewayFailure: { value: 3 }, enforcingConsecutiveGatewayFailure: { value: 100 },
      interval: { seconds: 5 }, baseEjectionTime: { seconds: 60 }, maxEjectionPercent: { value: 50 },
    },
    commonLbConfig: { healthyPanicThreshold: { value: 0 } },
  });
  // Subset v2 overrides only the load balancer; v1 inherits everything.
  assert.equal(get('v2').lbPolicy, 'RANDOM');
  assert.deepEqual(get('v2').circuitBreakers, get('').circuitBreakers);
  assert.equal(get('v1').lbPolicy, 'ROUND_ROBIN');
  // Port-level settings for 9080 replace the whole policy: unset parts fall back to defaults.
  const portLevel = reviewsClusters(drWith({ loadBalancer: { simple: 'ROUND_ROBIN' }, connectionPool: { tcp: { maxConnections: 5 } }, portLevelSettings: [{ port: { number: 9080 }, loadBalancer: { simple: 'LEAST_REQUEST' } }] }));
  assert.equal(portLevel('').lbPolicy, 'LEAST_REQUEST');
  assert.deepEqual(portLevel('').circuitBreakers?.thresholds[0].maxConnections, { value: MAX });
  // PASSTHROUGH: original destination, no EDS.
  const pass = reviewsClusters(drWith({ loadBalancer: { simple: 'PASSTHROUGH' } }))('');
  assert.equal(pass.type, 'ORIGINAL_DST');
  assert.equal(pass.lbPolicy, 'CLUSTER_PROVIDED');
  assert.equal(pass.edsClusterConfig, undefined);
});

test('DestinationRule consistentHash: RING_HASH cluster, route hashPolicy, no previous_hosts retry predicate', () => {
  const cases: [TrafficPolicy['loadBalancer'], unknown][] = [
    [{ consistentHash: { httpHeaderName: 'x-user' } }, [{ header: { headerName: 'x-user' } }]],
    [{ consistentHash: { httpCookie: { name: 'sid', path: '/', ttl: '10s' } } }, [{ cookie: { name: 'sid', path: '/', ttl: { seconds: 10 } } }]],
    [{ consistentHash: { useSourceIp: true, ringHash: { minimumRingSize: 64 } } }, [{ connectionProperties: { sourceIp: true } }]],
  ];
  for (const [loadBalancer, hashPolicy] of cases) {
    const dr = drWith({ loadBalancer });
    const cluster = reviewsClusters(dr)('');
    assert.equal(cluster.lbPolicy, 'RING_HASH');
    assert.deepEqual(cluster.ringHashLbConfig, { minimumRingSize: { value: loadBalancer?.consistentHash?.ringHash?.minimumRingSize ?? 1024 } });
    const route = reviewsRoutes([], dr)[0];
    assert.deepEqual(route.route?.hashPolicy, hashPolicy);
    assert.equal(route.route?.retryPolicy?.retryHostPredicate, undefined);
    roundTrip(TYPE_URL.routeConfiguration, { name: 'x', virtualHosts: [{ name: 'v', domains: ['*'], routes: [route] }] });
  }
});

test('DestinationRule exportTo: a rule exported only to its namespace is invisible elsewhere', () => {
  const dr = drWith({ loadBalancer: { simple: 'RANDOM' } });
  dr.spec.exportTo = ['.'];
  const push = PushContext.build({ ...bookinfo([]), destinationRules: [dr] }, { version: '1' });
  const gen = GENERATORS.find((g) => g.type === 'cds')!;
  const inDefault = resolveProxy(parseNodeId(V1_NODE_ID), push);
  const inShop = { ...inDefault, namespace: 'shop' };
  const lb = (p: typeof inDefault) => (gen.generate(push, p).find((r) => r.name === `outbound|9080||${REVIEWS}`)!.resource as { lbPolicy: string }).lbPolicy;
  assert.equal(lb(inDefault), 'RANDOM');
  assert.equal(lb(inShop), 'LEAST_REQUEST');
  assert.notEqual(gen.proxyClass(inDefault, push), gen.proxyClass(inShop, push));
});

test('routes are shared by every pod of a namespace unless a sourceLabels match reads their labels', () => {
  const rds = GENERATORS.find((g) => g.type === 'rds')!;
  const plain = PushContext.build(bookinfo([vs('plain', [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }])]), { version: '1' });
  const v1 = resolveProxy(parseNodeId(V1_NODE_ID), plain);
  const other = { ...v1, workload: { ...v1.workload, labels: { ...v1.workload.labels, app: 'other', version: 'v9' } } };
  assert.equal(rds.proxyClass(v1, plain), rds.proxyClass(other, plain), 'no sourceLabels: one class for the namespace');
  const bySource = PushContext.build(bookinfo([vs('by-source', [{ match: [{ sourceLabels: { app: 'other' } }], route: [{ destination: { host: 'reviews', subset: 'v1' } }] }])]), { version: '1' });
  assert.notEqual(rds.proxyClass(v1, bySource), rds.proxyClass(other, bySource), 'sourceLabels on app: classes differ by app');
  const sameApp = { ...v1, workload: { ...v1.workload, labels: { ...v1.workload.labels, version: 'v9' } } };
  assert.equal(rds.proxyClass(v1, bySource), rds.proxyClass(sameApp, bySource), 'labels no match reads do not split the class');
});
