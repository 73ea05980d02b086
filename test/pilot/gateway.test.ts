// Golden tests of Gateway translation: a router proxy selected by a Gateway gets a listener
// bound to the gateway Service's targetPort, route configuration `http.<port>` with the
// VirtualServices bound to the Gateway (Istio's host intersection and namespace rules),
// and VirtualServices bound only to gateways leave sidecars alone (`mesh` semantics).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL, packAny, unpackAny } from '../../api/xds/protos.js';
import { PushContext } from '../../pilot/model/push-context.js';
import { parseNodeId, resolveProxy } from '../../pilot/model/proxy.js';
import { intersectHosts } from '../../pilot/model/gateway.js';
import { GENERATORS } from '../../pilot/xds/generators/index.js';
import type { ConfigInputs } from '../../pilot/model/inputs.js';
import { REVIEWS, V1_NODE_ID } from './fixtures.js';
import { GW_NODE_ID, gateway, gatewayVs, httpServer, withGateway } from './gateway-fixtures.js';

const ADS = { ads: {}, resourceApiVersion: 'V3' };
const ROUTER = { name: 'envoy.filters.http.router', typedConfig: { '@type': TYPE_URL.router } };
const HTTP_FILTERS = [
  { name: 'envoy.filters.http.cors', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors' }, isOptional: true },
  { name: 'envoy.filters.http.fault', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault' }, isOptional: true },
  ROUTER,
];

const SPLIT = [{ route: [{ destination: { host: 'reviews.default.svc.cluster.local', subset: 'v1' }, weight: 50 }, { destination: { host: 'reviews.default.svc.cluster.local', subset: 'v2' }, weight: 50 }] }];

function gen(inputs: ConfigInputs, nodeId = GW_NODE_ID) {
  const push = PushContext.build(inputs, { version: '1' });
  const proxy = resolveProxy(parseNodeId(nodeId), push);
  const out = (type: string) => GENERATORS.find((g) => g.type === type)!.generate(push, proxy).map((r) => r.resource as Record<string, unknown>);
  return { push, proxy, lds: () => out('lds'), rds: () => out('rds'), cds: () => out('cds'), eds: () => out('eds') };
}

type Rc = { name: string; virtualHosts: { name: string; domains: string[]; routes: { name?: string; match: unknown; route?: { weightedClusters?: { clusters: { name: string; weight: { value: number } }[] }; cluster?: string }; directResponse?: unknown }[] }[] };

const basic = () => withGateway([gateway('bookinfo-gateway', [httpServer(['*'])])], [gatewayVs('reviews-ingress', ['*'], ['bookinfo-gateway'], SPLIT)]);

test('router: one listener bound to the gateway Service targetPort, HCM reading http.<port>', () => {
  const { lds } = gen(basic());
  const listeners = lds();
  assert.deepEqual(listeners, [{
    name: '0.0.0.0_8080',
    address: { socketAddress: { address: '0.0.0.0', portValue: 8080 } },
    trafficDirection: 'OUTBOUND',
    filterChains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typedConfig: {
      '@type': TYPE_URL.httpConnectionManager, statPrefix: 'outbound_0.0.0.0_8080',
      rds: { routeConfigName: 'http.8080', configSource: ADS }, httpFilters: HTTP_FILTERS,
    } }] }],
  }]);
  // The real Envoy types accept it (field names and shapes).
  const back = unpackAny(packAny(TYPE_URL.listener, listeners[0])) as { name: string; bindToPort?: unknown };
  assert.equal(back.name, '0.0.0.0_8080');
  assert.equal(back.bindToPort, undefined, 'bound to its port (no bindToPort false)');
});

test('router routes: the bound VirtualService under the server host, split by subset', () => {
  const { rds } = gen(basic());
  const [rc] = rds() as unknown as Rc[];
  assert.equal(rc.name, 'http.8080');
  assert.equal(rc.virtualHosts.length, 1);
  const vh = rc.virtualHosts[0];
  assert.equal(vh.name, '*:80');
  assert.deepEqual(vh.domains, ['*']);
  assert.deepEqual(vh.routes[0].route?.weightedClusters?.clusters.map((c) => [c.name, c.weight.value]), [
    [`outbound|9080|v1|${REVIEWS}`, 50], [`outbound|9080|v2|${REVIEWS}`, 50],
  ]);
  unpackAny(packAny(TYPE_URL.routeConfiguration, rc));
});

test('router clusters: the outbound clusters, no inbound side; endpoints as for sidecars', () => {
  const { cds, eds } = gen(basic());
  const names = cds().map((c) => c.name as string);
  assert.ok(names.includes(`outbound|9080|v1|${REVIEWS}`));
  assert.ok(!names.some((n) => n.startsWith('inbound|')), `no inbound clusters: ${names.join(', ')}`);
  const v1 = eds().find((c) => c.clusterName === `outbound|9080|v1|${REVIEWS}`) as { endpoints: { lbEndpoints: unknown[] }[] };
  assert.equal(v1.endpoints[0].lbEndpoints.length, 1);
});

test('host intersection and the namespace part of server hosts', () => {
  assert.equal(intersectHosts('*', 'a.com'), 'a.com');
  assert.equal(intersectHosts('*.example.com', 'a.example.com'), 'a.example.com');
  assert.equal(intersectHosts('a.example.com', '*.example.com'), 'a.example.com');
  assert.equal(intersectHosts('*.com', '*.example.com'), '*.example.com');
  assert.equal(intersectHosts('a.com', 'b.com'), undefined);
  const inputs = withGateway(
    [gateway('gw', [httpServer(['./*.example.com', 'other/foo.com', 'default/bar.com'])])],
    [gatewayVs('hosts', ['a.example.com', 'foo.com', 'bar.com', 'nothing.org'], ['gw'], [{ route: [{ destination: { host: 'reviews' } }] }])],
  );
  const [rc] = gen(inputs).rds() as unknown as Rc[];
  // `./` is the Gateway's namespace (default): the VirtualService there may serve it; foo.com
  // is reserved for namespace `other`; nothing.org matches no server host.
  assert.deepEqual(rc.virtualHosts.map((v) => [v.name, v.domains]), [
    ['a.example.com:80', ['a.example.com', 'a.example.com:*']],
    ['bar.com:80', ['bar.com', 'bar.com:*']],
  ]);
  assert.equal(rc.virtualHosts[0].routes[0].route?.cluster, `outbound|9080||${REVIEWS}`);
});

test('gateway references: short names are in the VirtualService namespace, ns/name anywhere', () => {
  const other = gatewayVs('from-other', ['other.example.com'], ['bookinfo-gateway'], [{ route: [{ destination: { host: 'reviews.default.svc.cluster.local' } }] }], 'other');
  const qualified = gatewayVs('qualified', ['q.example.com'], ['default/bookinfo-gateway'], [{ route: [{ destination: { host: 'reviews.default.svc.cluster.local' } }] }], 'other');
  const inputs = withGateway([gateway('bookinfo-gateway', [httpServer(['*'])])], [other, qualified]);
  const [rc] = gen(inputs).rds() as unknown as Rc[];
  assert.deepEqual(rc.virtualHosts.map((v) => v.name), ['q.example.com:80']);
});

test('no VirtualService bound: 404 blackhole virtual host; selector not matching: no listeners', () => {
  const [rc] = gen(withGateway([gateway('gw', [httpServer(['*'])])], [])).rds() as unknown as Rc[];
  assert.deepEqual(rc.virtualHosts, [{ name: 'blackhole:80', domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, directResponse: { status: 404 } }] }]);
  assert.deepEqual(gen(withGateway([gateway('gw', [httpServer(['*'])], 'default', { istio: 'egressgateway' })], [])).lds(), []);
});

test('mesh semantics: a VirtualService bound only to a gateway does not change sidecar routes; with mesh it does', () => {
  const sidecarRoutes = (inputs: ConfigInputs) => {
    const rcs = gen(inputs, V1_NODE_ID).rds() as unknown as Rc[];
    return rcs.find((r) => r.name === '9080')!.virtualHosts.find((v) => v.name === `${REVIEWS}:9080`)!.routes;
  };
  const onlyGw = gatewayVs('r-gw', ['reviews'], ['bookinfo-gateway'], [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }]);
  const inputs = withGateway([gateway('bookinfo-gateway', [httpServer(['*'])])], [onlyGw]);
  const routes = sidecarRoutes(inputs);
  assert.equal(routes.length, 1);
  assert.deepEqual(routes[0].route?.weightedClusters?.clusters.map((c) => c.weight.value), [80, 20], 'the mesh VirtualService (80/20) only');

  const both = gatewayVs('r-both', ['reviews'], ['bookinfo-gateway', 'mesh'], [
    { match: [{ uri: { prefix: '/gw-only' }, gateways: ['bookinfo-gateway'] }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
    { match: [{ uri: { prefix: '/mesh-only' }, gateways: ['mesh'] }], route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
  ], 'default', '2024-01-01T00:00:00Z');
  const inputs2 = withGateway([gateway('bookinfo-gateway', [httpServer(['*'])])], [both]);
  assert.deepEqual(sidecarRoutes(inputs2).map((r) => r.match), [{ prefix: '/mesh-only' }, { prefix: '/' }], 'per-match gateways: the mesh block only');
  const [rc] = gen(inputs2).rds() as unknown as Rc[];
  assert.deepEqual(rc.virtualHosts.map((v) => v.name), [`${REVIEWS}:80`]);
  assert.deepEqual(rc.virtualHosts[0].routes.map((r) => r.match), [{ prefix: '/gw-only' }]);
});

test('router and sidecar proxies share no generated class but endpoints', () => {
  const { push, proxy } = gen(basic());
  const sidecar = resolveProxy(parseNodeId(V1_NODE_ID), push);
  for (const g of GENERATORS.filter((x) => x.type !== 'eds')) assert.notEqual(g.proxyClass(proxy, push), g.proxyClass({ ...sidecar, namespace: proxy.namespace }, push), g.type);
});
