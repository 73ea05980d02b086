// Golden tests of pilot's traffic translation: the YAML in test/pilot/fixtures/traffic
// (VirtualServices, DestinationRules, a Gateway on a Bookinfo-like mesh) and the full Envoy
// resources a sidecar and the ingress gateway get, in *.golden.json files. The assertions here
// spell out what the goldens must show, so a regenerated golden is checked, not just trusted.
// Security is off here: test/pilot/security.test.ts has the TLS side of the same resources.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PushContext } from '../../pilot/model/push-context.js';
import { parseNodeId, resolveProxy } from '../../pilot/model/proxy.js';
import { GENERATORS } from '../../pilot/xds/generators/index.js';
import { goldenSet } from './golden.js';

const { loadInputs, assertGolden } = goldenSet('traffic');
const PRODUCTPAGE = 'sidecar~10.244.1.5~productpage-v1.default~default.svc.cluster.local';
const INGRESS = 'router~10.244.1.40~ingress-0.istio-system~istio-system.svc.cluster.local';

type Res = Record<string, any>;

function generate(nodeId: string, ...files: string[]) {
  const push = PushContext.build(loadInputs('mesh.yaml', ...files), { version: '1', security: { enabled: false } });
  const proxy = resolveProxy(parseNodeId(nodeId), push);
  const out = (type: string): Res[] => GENERATORS.find((g) => g.type === type)!.generate(push, proxy).map((r) => r.resource as Res);
  return { push, lds: () => out('lds'), rds: () => out('rds'), cds: () => out('cds'), eds: () => out('eds') };
}

const byName = (rs: Res[], name: string): Res => {
  const r = rs.find((x) => x.name === name || x.clusterName === name);
  assert.ok(r, `no resource ${name} among ${rs.map((x) => x.name ?? x.clusterName).join(', ')}`);
  return r;
};

test('sidecar routes: rules in order with their matches, fault, rewrite, retries, split, mirror, headers and CORS', () => {
  const { rds, push } = generate(PRODUCTPAGE, 'rules.yaml');
  assert.deepEqual(push.warnings, []);
  const routes = rds();
  const rc = byName(routes, '9080');
  const vh = rc.virtualHosts.find((v: Res) => v.domains.includes('reviews.default.svc.cluster.local'));
  assert.ok(vh.domains.includes('reviews'), 'short name in the domains');
  assert.deepEqual(vh.routes.map((r: Res) => r.name), ['jason', 'v3-preview', 'v3-preview', 'default']);
  const [jason, v3prefix, v3regex, dflt] = vh.routes;
  assert.deepEqual(jason.match.headers[0].name, 'end-user');
  assert.equal(jason.route.cluster, 'outbound|9080|v2|reviews.default.svc.cluster.local');
  assert.ok(jason.typedPerFilterConfig['envoy.filters.http.fault'], 'delay fault on the jason route');
  assert.equal(v3prefix.match.prefix, '/v3/');
  assert.equal(v3prefix.route.prefixRewrite, '/');
  assert.equal(v3prefix.route.retryPolicy.numRetries.value, 3);
  assert.equal(v3prefix.route.retryPolicy.retryOn, '5xx,reset,connect-failure');
  assert.equal(v3regex.match.safeRegex.regex, '^/preview/[0-9]+$');
  assert.equal(v3regex.match.caseSensitive.value, false);
  assert.deepEqual(dflt.route.weightedClusters.clusters.map((c: Res) => [c.name, c.weight.value]), [
    ['outbound|9080|v1|reviews.default.svc.cluster.local', 90], ['outbound|9080|v3|reviews.default.svc.cluster.local', 10]]);
  assert.deepEqual(dflt.route.timeout, { seconds: 10 });
  assert.equal(dflt.route.requestMirrorPolicies[0].cluster, 'outbound|9080|v2|reviews.default.svc.cluster.local');
  assert.ok(dflt.requestHeadersToRemove.includes('x-debug'));
  assert.ok(dflt.typedPerFilterConfig['envoy.filters.http.cors'], 'CORS policy on the default route');
  // ratings hashes on the x-user header (DestinationRule consistentHash).
  const ratings = byName(routes, '9090').virtualHosts.find((v: Res) => v.domains.includes('ratings.default.svc.cluster.local'));
  assert.equal(ratings.routes[0].route.hashPolicy[0].header.headerName, 'x-user');
  assertGolden(routes, 'productpage.rds.golden.json');
});

test('sidecar clusters and endpoints: subsets with their policies, EDS by subset labels', () => {
  const { cds, eds } = generate(PRODUCTPAGE, 'rules.yaml');
  const clusters = cds().filter((c) => String(c.name).startsWith('outbound|'));
  const v3 = byName(clusters, 'outbound|9080|v3|reviews.default.svc.cluster.local');
  assert.equal(v3.lbPolicy, 'LEAST_REQUEST', 'the subset inherits the rule\'s load balancer');
  assert.equal(v3.circuitBreakers.thresholds[0].maxConnections.value, 10);
  assert.equal(v3.outlierDetection.consecutive_5xx?.value ?? v3.outlierDetection.consecutive5xx?.value, 3);
  const ratings = byName(clusters, 'outbound|9090||ratings.default.svc.cluster.local');
  assert.equal(ratings.lbPolicy, 'RING_HASH');
  // A gRPC port speaks HTTP/2 upstream; an HTTP port stays on HTTP/1.1.
  assert.deepEqual(ratings.typedExtensionProtocolOptions['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicitHttpConfig, { http2ProtocolOptions: {} });
  assert.equal(v3.typedExtensionProtocolOptions, undefined);
  assertGolden(clusters, 'productpage.cds.golden.json');
  const endpoints = eds().filter((c) => String(c.clusterName).includes('reviews') || String(c.clusterName).includes('mysql'));
  const ips = (name: string) => byName(endpoints, name).endpoints.flatMap((l: Res) => l.lbEndpoints.map((e: Res) => e.endpoint.address.socketAddress.address));
  assert.deepEqual(ips('outbound|9080|v3|reviews.default.svc.cluster.local'), ['10.244.1.13']);
  assert.deepEqual(ips('outbound|9080||reviews.default.svc.cluster.local').sort(), ['10.244.1.11', '10.244.1.12', '10.244.1.13']);
  assert.deepEqual(ips('outbound|3306|v2|mysql.default.svc.cluster.local'), ['10.244.1.32']);
  assertGolden(endpoints, 'productpage.eds.golden.json');
});

test('sidecar listeners: the TCP port of mysql gets its own listener with a weighted TcpProxy', () => {
  const { lds } = generate(PRODUCTPAGE, 'rules.yaml');
  const listeners = lds().filter((l) => l.name !== 'virtualInbound');
  const mysql = byName(listeners, '10.96.1.30_3306');
  const tcp = mysql.filterChains[0].filters.find((f: Res) => f.name === 'envoy.filters.network.tcp_proxy').typedConfig;
  assert.deepEqual(tcp.weightedClusters.clusters.map((c: Res) => [c.name, c.weight]), [
    ['outbound|3306|v1|mysql.default.svc.cluster.local', 75], ['outbound|3306|v2|mysql.default.svc.cluster.local', 25]]);
  assertGolden(listeners, 'productpage.lds.golden.json');
});

test('ingress gateway: the Gateway\'s server port on the pod\'s target port, its host routed 50/50', () => {
  const { lds, rds, push } = generate(INGRESS, 'rules.yaml', 'gateway.yaml');
  assert.deepEqual(push.warnings, []);
  const listeners = lds();
  assert.deepEqual(listeners.map((l) => l.address.socketAddress.portValue), [8080]);
  const routes = rds();
  const vh = byName(routes, 'http.8080').virtualHosts.find((v: Res) => v.domains.includes('bookinfo.example.com'));
  assert.equal(vh.routes[0].match.prefix, '/reviews');
  assert.deepEqual(vh.routes[0].route.weightedClusters.clusters.map((c: Res) => c.weight.value), [50, 50]);
  assertGolden({ listeners, routes }, 'ingress.lds-rds.golden.json');
});
