// Golden tests of VirtualService delegation (rules inlined with merged matches, hosts
// resolved in the delegate's namespace, bad delegates warned about) and tls routes (SNI
// filter chains with serverNames on the service's outbound TCP listener).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL, packAny, unpackAny } from '../../api/xds/protos.js';
import { PushContext } from '../../pilot/model/push-context.js';
import { parseNodeId, resolveProxy } from '../../pilot/model/proxy.js';
import { generateListeners, generateRoutes, generateClusters } from '../../pilot/xds/generators/index.js';
import type { VirtualService } from '../../api/istio/index.js';
import type { ConfigInputs } from '../../pilot/model/inputs.js';
import { RATINGS, REVIEWS, V1_NODE_ID, bookinfo, service } from './fixtures.js';

function vs(name: string, namespace: string, spec: VirtualService['spec'], created = '2025-01-01T00:00:00Z'): VirtualService {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace, creationTimestamp: created }, spec };
}
function build(inputs: ConfigInputs) {
  const push = PushContext.build(inputs, { version: '1' });
  return { push, proxy: resolveProxy(parseNodeId(V1_NODE_ID), push) };
}

test('delegate: the delegate rules are inlined in place with merged matches, hosts resolved in its namespace', () => {
  const root = vs('reviews', 'default', { hosts: ['reviews'], http: [
    { match: [{ uri: { prefix: '/api' }, headers: { 'x-team': { exact: 'a' } } }], delegate: { name: 'reviews-api', namespace: 'team' } },
    { route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
  ] });
  const delegate = vs('reviews-api', 'team', { http: [
    { match: [{ uri: { prefix: '/api/v2' }, headers: { 'x-user': { exact: 'b' } } }], route: [{ destination: { host: REVIEWS, subset: 'v2' } }] },
    { route: [{ destination: { host: 'ratings' } }] },
  ] });
  const inputs = bookinfo([root, delegate]);
  const { push, proxy } = build(inputs);
  const vh = generateRoutes(push, proxy).find((r) => r.name === '9080')!.virtualHosts.find((v) => v.name === `${REVIEWS}:9080`)!;
  assert.deepEqual(vh.routes.map((r) => [r.match, r.route?.cluster]), [
    [{ prefix: '/api/v2', headers: [{ name: 'x-team', stringMatch: { exact: 'a' } }, { name: 'x-user', stringMatch: { exact: 'b' } }] }, `outbound|9080|v2|${REVIEWS}`],
    [{ prefix: '/api', headers: [{ name: 'x-team', stringMatch: { exact: 'a' } }] }, 'outbound|9080||ratings.team.svc.cluster.local'],
    [{ prefix: '/' }, `outbound|9080|v1|${REVIEWS}`],
  ]);
  assert.ok(!push.warnings.some((w) => w.includes('delegate')), push.warnings.join('\n'));
  // The delegate's short host resolved in its own namespace: a cluster (empty, with a warning-free 503) exists for it.
  assert.ok(generateClusters(push, proxy).some((c) => c.name === 'outbound|9080||ratings.team.svc.cluster.local'));
});

test('delegate: a missing delegate, or one with hosts, is warned about and its rule skipped', () => {
  const root = vs('reviews', 'default', { hosts: ['reviews'], http: [
    { match: [{ uri: { prefix: '/x' } }], delegate: { name: 'nope' } },
    { match: [{ uri: { prefix: '/y' } }], delegate: { name: 'ratings-vs' } },
    { route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
  ] });
  const withHosts = vs('ratings-vs', 'default', { hosts: ['ratings'], http: [{ route: [{ destination: { host: 'ratings' } }] }] });
  const { push, proxy } = build(bookinfo([root, withHosts]));
  assert.ok(push.warnings.includes('VirtualService default/reviews: spec.http[0].delegate default/nope does not exist; rule skipped'), push.warnings.join('\n'));
  assert.ok(push.warnings.includes('VirtualService default/reviews: spec.http[1].delegate default/ratings-vs has hosts, so it cannot be a delegate; rule skipped'));
  const vh = generateRoutes(push, proxy).find((r) => r.name === '9080')!.virtualHosts.find((v) => v.name === `${REVIEWS}:9080`)!;
  assert.deepEqual(vh.routes.map((r) => r.match), [{ prefix: '/' }]);
});

test('tls routes: SNI filter chains (serverNames) before the service chain, behind a tls_inspector', () => {
  const inputs = bookinfo([vs('secure', 'default', { hosts: ['secure'], tls: [
    { match: [{ sniHosts: ['a.secure.example', 'b.secure.example'], port: 443 }], route: [{ destination: { host: 'ratings', port: { number: 8080 } } }] },
    { match: [{ sniHosts: ['b.secure.example', 'c.secure.example'] }], route: [{ destination: { host: 'reviews', subset: 'v1', port: { number: 9080 } }, weight: 50 }, { destination: { host: 'reviews', subset: 'v2', port: { number: 9080 } }, weight: 50 }] },
    { match: [{ sniHosts: ['d.secure.example'], port: 8443 }], route: [{ destination: { host: 'ratings' } }] },
  ] })]);
  const secure = service('secure', '10.96.0.70', 443, 8443, { app: 'secure' });
  inputs.services.push({ ...secure, spec: { ...secure.spec, ports: [{ name: 'tls', port: 443, targetPort: 8443, protocol: 'TCP' }] } });
  const { push, proxy } = build(inputs);
  const listener = generateListeners(push, proxy).find((l) => l.name === '10.96.0.70_443')!;
  assert.ok(listener, 'the TLS service port has its TCP listener');
  assert.deepEqual(listener.listenerFilters, [{ name: 'envoy.filters.listener.tls_inspector', typedConfig: { '@type': TYPE_URL.tlsInspector } }]);
  const chains = listener.filterChains as { name?: string; filterChainMatch?: { serverNames?: string[] }; filters: { typedConfig: { cluster?: string; weightedClusters?: { clusters: { name: string; weight: number }[] } } }[] }[];
  assert.deepEqual(chains.map((c) => [c.name, c.filterChainMatch?.serverNames]), [
    ['default/secure.tls[0]', ['a.secure.example', 'b.secure.example']],
    ['default/secure.tls[1]', ['c.secure.example']],
    [undefined, undefined],
  ], 'a name claimed by an earlier rule is not repeated; the port-8443 rule does not apply on 443');
  assert.equal(chains[0].filters[0].typedConfig.cluster, `outbound|8080||${RATINGS}`);
  assert.deepEqual(chains[1].filters[0].typedConfig.weightedClusters?.clusters.map((c) => c.name), [`outbound|9080|v1|${REVIEWS}`, `outbound|9080|v2|${REVIEWS}`]);
  assert.equal(chains[2].filters[0].typedConfig.cluster, 'outbound|443||secure.default.svc.cluster.local');
  const back = unpackAny(packAny(TYPE_URL.listener, listener)) as { filterChains: { filterChainMatch?: { serverNames?: string[] } }[] };
  assert.deepEqual(back.filterChains[0].filterChainMatch?.serverNames, ['a.secure.example', 'b.secure.example']);
});
