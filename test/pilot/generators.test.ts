// Golden tests of the generators: a small input set -> the exact Envoy resources.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL, packAny, unpackAny } from '../../api/xds/protos.js';
import { PushContext } from '../../pilot/model/push-context.js';
import { parseNodeId, resolveProxy } from '../../pilot/model/proxy.js';
import { generateClusters, generateEndpoints, generateListeners, generateRoutes } from '../../pilot/xds/generators/index.js';
import { GENERATORS } from '../../pilot/xds/generators/index.js';

import { RATINGS, RATINGS_IP, REVIEWS, V1_IP, V1_NODE_ID, V2_IP, bookinfo, reviewsVs } from './fixtures.js';
import type { VirtualService } from '../../api/istio/index.js';

const ADS = { ads: {}, resourceApiVersion: 'V3' };
const ROUTER = { name: 'envoy.filters.http.router', typedConfig: { '@type': TYPE_URL.router } };
const HTTP_FILTERS = [
  { name: 'envoy.filters.http.cors', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors' }, isOptional: true },
  { name: 'envoy.filters.http.fault', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault' }, isOptional: true },
  ROUTER,
];
const MAX = 4294967295;
export const CIRCUIT_BREAKERS = { thresholds: [{ maxConnections: { value: MAX }, maxPendingRequests: { value: MAX }, maxRequests: { value: MAX }, maxRetries: { value: MAX }, trackRemaining: true }] };
/** Trellis's default retry policy (pilot/README.md) and Istio's disabled route timeout. */
const DEFAULT_RETRY = {
  retryOn: 'connect-failure,refused-stream', numRetries: { value: 2 }, hostSelectionRetryMaxAttempts: '5',
  retryHostPredicate: [{ name: 'envoy.retry_host_predicates.previous_hosts', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate' } }],
};
const NO_TIMEOUT = { seconds: 0 };

function setup(inputs = bookinfo()) {
  const push = PushContext.build(inputs, { version: '1' });
  const proxy = resolveProxy(parseNodeId(V1_NODE_ID), push);
  return { push, proxy };
}

function eds(name: string) {
  return { name, type: 'EDS', edsClusterConfig: { edsConfig: ADS }, lbPolicy: 'LEAST_REQUEST', connectTimeout: { seconds: 10 }, circuitBreakers: CIRCUIT_BREAKERS };
}

function cla(name: string, ...eps: [string, number][]) {
  return {
    clusterName: name,
    endpoints: eps.length ? [{ lbEndpoints: eps.map(([address, portValue]) => ({ endpoint: { address: { socketAddress: { address, portValue } } } })) }] : [],
  };
}

test('proxy of a v1 pod: node id parsing and its inbound ports (named targetPort resolved)', () => {
  const { proxy } = setup();
  assert.equal(proxy.podName, 'reviews-v1-abc');
  assert.equal(proxy.namespace, 'default');
  assert.equal(proxy.pod?.metadata.name, 'reviews-v1-abc');
  assert.deepEqual(proxy.inbound, [{ port: 9080, http: true, protocol: 'HTTP', services: [{ fqdn: REVIEWS, servicePort: 9080, portName: 'http' }] }]);
  assert.throws(() => parseNodeId('sidecar~1.2.3.4'), /node.id 'sidecar~1.2.3.4': want 4 parts/);
});

test('CDS: service, subset, passthrough and inbound clusters', () => {
  const { push, proxy } = setup();
  assert.deepEqual(generateClusters(push, proxy), [
    eds(`outbound|8080||${RATINGS}`),
    eds(`outbound|9080||${REVIEWS}`),
    eds(`outbound|9080|v1|${REVIEWS}`),
    eds(`outbound|9080|v2|${REVIEWS}`),
    { name: 'PassthroughCluster', type: 'ORIGINAL_DST', lbPolicy: 'CLUSTER_PROVIDED', connectTimeout: { seconds: 10 } },
    {
      name: 'inbound|9080||', type: 'STATIC', lbPolicy: 'ROUND_ROBIN', connectTimeout: { seconds: 10 },
      loadAssignment: cla('inbound|9080||', ['127.0.0.1', 9080]),
    },
    { name: 'InboundPassthroughCluster', type: 'ORIGINAL_DST', lbPolicy: 'CLUSTER_PROVIDED', connectTimeout: { seconds: 10 } },
  ]);
});

test('EDS: subset clusters get only the endpoints whose pod labels match', () => {
  const { push } = setup();
  assert.deepEqual(generateEndpoints(push), [
    cla(`outbound|8080||${RATINGS}`, [RATINGS_IP, 8080]),
    cla(`outbound|9080||${REVIEWS}`, [V1_IP, 9080], [V2_IP, 9080]),
    cla(`outbound|9080|v1|${REVIEWS}`, [V1_IP, 9080]),
    cla(`outbound|9080|v2|${REVIEWS}`, [V2_IP, 9080]),
  ]);
});

test('LDS: virtualOutbound, per-port outbound listeners, virtualInbound with the pod\'s port', () => {
  const { push, proxy } = setup();
  const outbound = (port: number) => ({
    name: `0.0.0.0_${port}`,
    address: { socketAddress: { address: '0.0.0.0', portValue: port } },
    trafficDirection: 'OUTBOUND',
    bindToPort: { value: false },
    filterChains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typedConfig: {
      '@type': TYPE_URL.httpConnectionManager, statPrefix: `outbound_0.0.0.0_${port}`,
      rds: { routeConfigName: String(port), configSource: ADS }, httpFilters: HTTP_FILTERS,
    } }] }],
  });
  assert.deepEqual(generateListeners(push, proxy), [
    {
      name: 'virtualOutbound', address: { socketAddress: { address: '0.0.0.0', portValue: 15001 } },
      trafficDirection: 'OUTBOUND', useOriginalDst: { value: true },
      filterChains: [{ name: 'PassthroughCluster', filters: [{ name: 'envoy.filters.network.tcp_proxy', typedConfig: { '@type': TYPE_URL.tcpProxy, statPrefix: 'PassthroughCluster', cluster: 'PassthroughCluster' } }] }],
    },
    outbound(8080),
    outbound(9080),
    {
      name: 'virtualInbound', address: { socketAddress: { address: '0.0.0.0', portValue: 15006 } },
      trafficDirection: 'INBOUND',
      listenerFilters: [{ name: 'envoy.filters.listener.original_dst', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst' } }],
      filterChains: [
        {
          name: 'inbound|9080||', filterChainMatch: { destinationPort: { value: 9080 } },
          filters: [{ name: 'envoy.filters.network.http_connection_manager', typedConfig: {
            '@type': TYPE_URL.httpConnectionManager, statPrefix: 'inbound_0.0.0.0_9080',
            routeConfig: { name: 'inbound|9080||', virtualHosts: [{ name: 'inbound|http|9080', domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster: 'inbound|9080||' } }] }] },
            httpFilters: [ROUTER],
          } }],
        },
        { name: 'InboundPassthroughCluster', filters: [{ name: 'envoy.filters.network.tcp_proxy', typedConfig: { '@type': TYPE_URL.tcpProxy, statPrefix: 'InboundPassthroughCluster', cluster: 'InboundPassthroughCluster' } }] },
      ],
    },
  ]);
});

test('RDS: one virtual host per service; the VirtualService 80/20 becomes weighted clusters', () => {
  const { push, proxy } = setup();
  const allowAny = { name: 'allow_any', domains: ['*'], routes: [{ name: 'allow_any', match: { prefix: '/' }, route: { cluster: 'PassthroughCluster' } }] };
  assert.deepEqual(generateRoutes(push, proxy), [
    {
      name: '8080',
      virtualHosts: [{
        name: `${RATINGS}:8080`,
        domains: [RATINGS, `${RATINGS}:8080`, 'ratings', 'ratings:8080', 'ratings.default', 'ratings.default:8080', 'ratings.default.svc', 'ratings.default.svc:8080', '10.96.0.60', '10.96.0.60:8080'],
        routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster: `outbound|8080||${RATINGS}`, timeout: NO_TIMEOUT, retryPolicy: DEFAULT_RETRY } }],
      }, allowAny],
    },
    {
      name: '9080',
      virtualHosts: [{
        name: `${REVIEWS}:9080`,
        domains: [REVIEWS, `${REVIEWS}:9080`, 'reviews', 'reviews:9080', 'reviews.default', 'reviews.default:9080', 'reviews.default.svc', 'reviews.default.svc:9080', '10.96.0.50', '10.96.0.50:9080'],
        routes: [{
          name: 'default/reviews.http[0]', match: { prefix: '/' },
          route: { weightedClusters: { clusters: [
            { name: `outbound|9080|v1|${REVIEWS}`, weight: { value: 80 } },
            { name: `outbound|9080|v2|${REVIEWS}`, weight: { value: 20 } },
          ] }, timeout: NO_TIMEOUT, retryPolicy: DEFAULT_RETRY },
        }],
      }, allowAny],
    },
  ]);
  // Short names are offered only to proxies in the service's namespace.
  const other = generateRoutes(push, { namespace: 'other' });
  assert.ok(!other[0].virtualHosts[0].domains.includes('ratings'));
  assert.ok(other[0].virtualHosts[0].domains.includes('ratings.default'));
});

test('every generated resource encodes as its Envoy v3 type and decodes back', () => {
  const { push, proxy } = setup();
  for (const gen of GENERATORS) {
    for (const { name, resource } of gen.generate(push, proxy)) {
      const decoded = unpackAny<{ name?: string; clusterName?: string }>(packAny(gen.typeUrl, resource));
      assert.equal(decoded.name ?? decoded.clusterName, name, `${gen.type} ${name}`);
    }
  }
  const weighted = unpackAny<{ virtualHosts: { routes: { route: { weightedClusters: { clusters: { weight: { value: number } }[] } } }[] }[] }>(
    packAny(TYPE_URL.routeConfiguration, generateRoutes(push, proxy)[1]));
  assert.deepEqual(weighted.virtualHosts[0].routes[0].route.weightedClusters.clusters.map((c) => c.weight.value), [80, 20]);
});

test('a VirtualService naming a missing subset: warning, its share falls back to the other destination, push still built', () => {
  const { push, proxy } = setup(bookinfo([reviewsVs(90, 10, 'v3')]));
  const v3 = `outbound|9080|v3|${REVIEWS}`;
  assert.ok(push.warnings.some((w) => w.includes('VirtualService default/reviews') && w.includes("http[0].route[1].destination.subset 'v3'")), push.warnings.join('\n'));
  assert.deepEqual(generateClusters(push, proxy).find((c) => c.name === v3), eds(v3));
  assert.deepEqual(generateEndpoints(push).find((c) => c.clusterName === v3), cla(v3));
  const route = generateRoutes(push, proxy)[1].virtualHosts[0].routes[0];
  assert.equal(route.route?.cluster, `outbound|9080|v1|${REVIEWS}`, 'make-before-break: v1 takes all until v3 is defined');
  assert.equal(route.route?.weightedClusters, undefined);
});

test('fallback: a route whose only subsets are undefined goes to the whole service; a subset without ready endpoints gets no share', () => {
  const onlyV3: VirtualService = { ...reviewsVs(100, 0, 'v3'), spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v3' } }] }] } };
  const a = setup(bookinfo([onlyV3]));
  assert.equal(generateRoutes(a.push, a.proxy)[1].virtualHosts[0].routes[0].route?.cluster, `outbound|9080||${REVIEWS}`);

  // v2's only pod is not ready: its 20% goes to v1 until it is.
  const inputs = bookinfo([reviewsVs(80, 20)]);
  const notReady = { ...inputs, endpoints: inputs.endpoints.map((e) => (e.metadata.name !== 'reviews' ? e : {
    ...e, subsets: e.subsets?.map((ss) => ({ ...ss, addresses: ss.addresses?.filter((x) => x.ip !== V2_IP), notReadyAddresses: ss.addresses?.filter((x) => x.ip === V2_IP) })),
  })) };
  const b = setup(notReady);
  assert.equal(generateRoutes(b.push, b.proxy)[1].virtualHosts[0].routes[0].route?.cluster, `outbound|9080|v1|${REVIEWS}`);
  const c = setup(inputs);
  assert.deepEqual(generateRoutes(c.push, c.proxy)[1].virtualHosts[0].routes[0].route?.weightedClusters?.clusters.map((x) => [x.name, x.weight.value]),
    [[`outbound|9080|v1|${REVIEWS}`, 80], [`outbound|9080|v2|${REVIEWS}`, 20]]);

  // No destination has endpoints: nothing to fall back to, the split stays as written.
  const none = { ...inputs, endpoints: inputs.endpoints.filter((e) => e.metadata.name !== 'reviews') };
  const d = setup(none);
  assert.deepEqual(generateRoutes(d.push, d.proxy)[1].virtualHosts[0].routes[0].route?.weightedClusters?.clusters.map((x) => x.weight.value), [80, 20]);
});

test('matches: uri exact/prefix/regex, headers, ordered rules, single destination, port-scoped blocks', () => {
  const vs: VirtualService = {
    metadata: { name: 'reviews-rules', namespace: 'default' },
    spec: {
      hosts: ['reviews.default.svc.cluster.local'],
      http: [
        { name: 'jason', match: [{ headers: { 'end-user': { exact: 'jason' } } }, { uri: { regex: '^/v2/.*' } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }], timeout: '1.5s' },
        { name: 'other-port', match: [{ port: 1234, uri: { prefix: '/x' } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
        { name: 'exact', match: [{ uri: { exact: '/health' }, headers: { 'x-debug': {} } }], route: [{ destination: { host: 'ratings' } }] },
        { name: 'rest', match: [{ uri: { prefix: '/' } }], route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
      ],
    },
  };
  const { push, proxy } = setup(bookinfo([vs]));
  assert.deepEqual(push.warnings, []);
  const routes = generateRoutes(push, proxy)[1].virtualHosts[0].routes;
  assert.deepEqual(routes, [
    { name: 'jason', match: { prefix: '/', headers: [{ name: 'end-user', stringMatch: { exact: 'jason' } }] }, route: { cluster: `outbound|9080|v2|${REVIEWS}`, timeout: { seconds: 1, nanos: 500000000 }, retryPolicy: DEFAULT_RETRY } },
    { name: 'jason', match: { safeRegex: { regex: '^/v2/.*' } }, route: { cluster: `outbound|9080|v2|${REVIEWS}`, timeout: { seconds: 1, nanos: 500000000 }, retryPolicy: DEFAULT_RETRY } },
    // ratings has a single port, so a destination without a port goes to 8080.
    { name: 'exact', match: { path: '/health', headers: [{ name: 'x-debug', presentMatch: true }] }, route: { cluster: `outbound|8080||${RATINGS}`, timeout: NO_TIMEOUT, retryPolicy: DEFAULT_RETRY } },
    { name: 'rest', match: { prefix: '/' }, route: { cluster: `outbound|9080|v1|${REVIEWS}`, timeout: NO_TIMEOUT, retryPolicy: DEFAULT_RETRY } },
  ]);
});

test('host resolution: short names in the rule\'s namespace; a VS elsewhere for an unknown short name is reported', () => {
  const inputs = bookinfo([]);
  inputs.virtualServices.push({
    metadata: { name: 'elsewhere', namespace: 'shop' },
    spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews.default.svc.cluster.local', subset: 'v2' } }] }] },
  });
  const { push, proxy } = setup(inputs);
  // `reviews` in namespace shop is reviews.shop..., which does not exist: default route stays.
  assert.equal(push.virtualServiceFor(REVIEWS), undefined);
  assert.ok(push.warnings.some((w) => w.includes("spec.hosts[0] 'reviews.shop.svc.cluster.local' matches no service")));
  assert.deepEqual(generateRoutes(push, proxy)[1].virtualHosts[0].routes, [{ name: 'default', match: { prefix: '/' }, route: { cluster: `outbound|9080||${REVIEWS}`, timeout: NO_TIMEOUT, retryPolicy: DEFAULT_RETRY } }]);
});
