// Golden tests of ServiceEntry (hosts, ports, addresses, resolution NONE/STATIC/DNS,
// endpoints, exportTo) and Sidecar scoping (egress hosts in all their forms, selection by
// workloadSelector / namespace default / root-namespace default, outboundTrafficPolicy).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL, packAny, unpackAny } from '../../api/xds/protos.js';
import { PushContext } from '../../pilot/model/push-context.js';
import { parseNodeId, resolveProxy } from '../../pilot/model/proxy.js';
import { GENERATORS } from '../../pilot/xds/generators/index.js';
import type { ConfigInputs } from '../../pilot/model/inputs.js';
import type { ServiceEntry, ServiceEntrySpec, Sidecar, SidecarSpec } from '../../api/istio/index.js';
import { RATINGS, REVIEWS, V1_NODE_ID, bookinfo } from './fixtures.js';

type Res = Record<string, unknown> & { name?: string; clusterName?: string };

function gen(inputs: ConfigInputs, nodeId = V1_NODE_ID) {
  const push = PushContext.build(inputs, { version: '1' });
  const proxy = resolveProxy(parseNodeId(nodeId), push);
  const out = (type: string) => GENERATORS.find((g) => g.type === type)!.generate(push, proxy).map((r) => r.resource as Res);
  return { push, proxy, lds: () => out('lds'), rds: () => out('rds'), cds: () => out('cds'), eds: () => out('eds'), cls: (t: string) => GENERATORS.find((g) => g.type === t)!.proxyClass(proxy, push) };
}

function se(name: string, spec: ServiceEntrySpec, namespace = 'default', created = '2025-01-01T00:00:00Z'): ServiceEntry {
  return { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name, namespace, creationTimestamp: created }, spec };
}
function sidecar(name: string, spec: SidecarSpec, namespace = 'default', created = '2025-01-01T00:00:00Z'): Sidecar {
  return { apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name, namespace, creationTimestamp: created }, spec };
}
function world(extra: Partial<ConfigInputs>): ConfigInputs {
  return { ...bookinfo(), ...extra };
}
const names = (rs: Res[]) => rs.map((r) => r.name ?? r.clusterName);
const roundTrip = (typeUrl: string, r: object) => unpackAny(packAny(typeUrl, r));

test('ServiceEntry STATIC: EDS cluster with the entry endpoints, HTTP listener and virtual host by host and address', () => {
  const { cds, eds, lds, rds } = gen(world({ serviceEntries: [se('api', {
    hosts: ['api.internal.example'], addresses: ['240.0.0.10'], location: 'MESH_INTERNAL', resolution: 'STATIC',
    ports: [{ number: 8081, name: 'http', protocol: 'HTTP' }],
    endpoints: [{ address: '10.1.0.5' }, { address: '10.1.0.6', ports: { http: 9000 } }],
  })] }));
  const cluster = cds().find((c) => c.name === 'outbound|8081||api.internal.example');
  assert.equal(cluster?.type, 'EDS');
  assert.deepEqual(eds().find((c) => c.clusterName === 'outbound|8081||api.internal.example'), {
    clusterName: 'outbound|8081||api.internal.example',
    endpoints: [{ lbEndpoints: [
      { endpoint: { address: { socketAddress: { address: '10.1.0.5', portValue: 8081 } } } },
      { endpoint: { address: { socketAddress: { address: '10.1.0.6', portValue: 9000 } } } },
    ] }],
  });
  assert.ok(names(lds()).includes('0.0.0.0_8081'));
  const rc = rds().find((r) => r.name === '8081') as { virtualHosts: { name: string; domains: string[]; routes: { route?: { cluster?: string } }[] }[] };
  assert.deepEqual(rc.virtualHosts[0].domains, ['api.internal.example', 'api.internal.example:8081', '240.0.0.10', '240.0.0.10:8081']);
  assert.equal(rc.virtualHosts[0].routes[0].route?.cluster, 'outbound|8081||api.internal.example');
  assert.equal(rc.virtualHosts[1].name, 'allow_any');
});

test('ServiceEntry DNS -> STRICT_DNS with the names to resolve; NONE -> ORIGINAL_DST; a TCP port with an address gets its listener', () => {
  const { cds, lds } = gen(world({ serviceEntries: [
    se('httpbin', { hosts: ['httpbin.example.org'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'DNS' }),
    se('db', { hosts: ['db.example.org'], addresses: ['240.0.0.20'], ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }], resolution: 'DNS', endpoints: [{ address: 'db1.example.org' }] }),
    se('wiki', { hosts: ['*.wikipedia.org'], ports: [{ number: 443, name: 'tls', protocol: 'TLS' }], resolution: 'NONE' }),
  ] }));
  const clusters = cds();
  const dns = clusters.find((c) => c.name === 'outbound|80||httpbin.example.org')!;
  assert.deepEqual(dns, {
    name: 'outbound|80||httpbin.example.org', type: 'STRICT_DNS', lbPolicy: 'LEAST_REQUEST', connectTimeout: { seconds: 10 }, dnsLookupFamily: 'V4_ONLY',
    loadAssignment: { clusterName: 'outbound|80||httpbin.example.org', endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: 'httpbin.example.org', portValue: 80 } } } }] }] },
    circuitBreakers: dns.circuitBreakers,
  });
  assert.equal((roundTrip(TYPE_URL.cluster, dns) as { type: string }).type, 'STRICT_DNS');
  const db = clusters.find((c) => c.name === 'outbound|5432||db.example.org') as { loadAssignment: { endpoints: { lbEndpoints: { endpoint: { address: { socketAddress: { address: string } } } }[] }[] } };
  assert.equal(db.loadAssignment.endpoints[0].lbEndpoints[0].endpoint.address.socketAddress.address, 'db1.example.org');
  const none = clusters.find((c) => c.name === 'outbound|443||*.wikipedia.org')!;
  assert.equal(none.type, 'ORIGINAL_DST');
  assert.equal(none.lbPolicy, 'CLUSTER_PROVIDED');
  assert.equal(none.edsClusterConfig, undefined);
  roundTrip(TYPE_URL.cluster, none);
  const tcp = lds().find((l) => l.name === '240.0.0.20_5432');
  assert.ok(tcp, `a TCP listener on the entry address: ${names(lds()).join(', ')}`);
  roundTrip(TYPE_URL.listener, tcp);
});

test('ServiceEntry exportTo: `.` keeps it in its namespace; bad entries are warned about and skipped', () => {
  const inputs = world({ serviceEntries: [
    se('private', { hosts: ['private.example.org'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'DNS', exportTo: ['.'] }, 'other'),
    se('noports', { hosts: ['x.example.org'], resolution: 'DNS' }),
    se('wild-dns', { hosts: ['*.example.net'], ports: [{ number: 80, name: 'http' }], resolution: 'DNS' }),
  ] });
  const fromDefault = gen(inputs);
  assert.ok(!names(fromDefault.cds()).includes('outbound|80||private.example.org'));
  const otherNode = 'sidecar~10.244.0.77~c-1.other~other.svc.cluster.local';
  assert.ok(names(gen(inputs, otherNode).cds()).includes('outbound|80||private.example.org'));
  assert.notEqual(fromDefault.cls('cds'), gen(inputs, otherNode).cls('cds'));
  assert.ok(fromDefault.push.warnings.some((w) => w === 'ServiceEntry default/noports: spec.ports is empty; entry ignored'), fromDefault.push.warnings.join('\n'));
  assert.ok(fromDefault.push.warnings.some((w) => w.startsWith("ServiceEntry default/wild-dns: spec.hosts[0] '*.example.net' is a wildcard")));
});

test('Sidecar egress `./host`: only that service in CDS, EDS, LDS and RDS', () => {
  const { cds, eds, lds, rds } = gen(world({ sidecars: [sidecar('default', { egress: [{ hosts: [`./${RATINGS}`] }] })] }));
  assert.deepEqual(names(cds()).filter((n) => n?.startsWith('outbound|')), [`outbound|8080||${RATINGS}`]);
  assert.deepEqual(names(eds()), [`outbound|8080||${RATINGS}`]);
  assert.deepEqual(names(lds()), ['virtualOutbound', '0.0.0.0_8080', 'virtualInbound']);
  assert.deepEqual(names(rds()), ['8080']);
});

test('Sidecar egress: a visible VirtualService routing outside the scope still gets its clusters; `~/*` sees nothing; `*/*` all', () => {
  const seeReviews = gen(world({ sidecars: [sidecar('default', { egress: [{ hosts: ['default/reviews.default.svc.cluster.local'] }] })] }));
  assert.deepEqual(names(seeReviews.cds()).filter((n) => n?.startsWith('outbound|')), [`outbound|9080||${REVIEWS}`, `outbound|9080|v1|${REVIEWS}`, `outbound|9080|v2|${REVIEWS}`]);
  const none = gen(world({ sidecars: [sidecar('default', { egress: [{ hosts: ['~/*'] }] })] }));
  assert.deepEqual(names(none.cds()).filter((n) => n?.startsWith('outbound|')), []);
  assert.deepEqual(names(none.lds()), ['virtualOutbound', 'virtualInbound']);
  const all = gen(world({ sidecars: [sidecar('default', { egress: [{ hosts: ['*/*'] }] })] }));
  const unscoped = gen(bookinfo());
  assert.deepEqual(names(all.cds()), names(unscoped.cds()));
  assert.deepEqual(all.rds(), unscoped.rds());
});

test('Sidecar selection: workloadSelector first, then the namespace default, then the root namespace default', () => {
  const root = sidecar('default', { egress: [{ hosts: ['~/*'] }] }, 'trellis-system');
  const nsDefault = sidecar('ns-default', { egress: [{ hosts: [`./${RATINGS}`] }] });
  const forV1 = sidecar('for-v1', { workloadSelector: { labels: { app: 'reviews', version: 'v1' } }, egress: [{ hosts: [`./${REVIEWS}`] }] }, 'default', '2025-02-01T00:00:00Z');
  const forV2 = sidecar('for-v2', { workloadSelector: { labels: { version: 'v2' } }, egress: [{ hosts: ['~/*'] }] });
  const outbound = (inputs: ConfigInputs) => names(gen(inputs).cds()).filter((n) => n?.startsWith('outbound|') && !n.includes('|v'));
  assert.deepEqual(outbound(world({ sidecars: [root, nsDefault, forV1, forV2] })), [`outbound|9080||${REVIEWS}`], 'the selecting Sidecar');
  assert.deepEqual(outbound(world({ sidecars: [root, nsDefault, forV2] })), [`outbound|8080||${RATINGS}`], 'the namespace default');
  assert.deepEqual(outbound(world({ sidecars: [root, forV2] })), [], 'the root namespace default');
  assert.notEqual(gen(world({ sidecars: [nsDefault] })).cls('lds'), gen(bookinfo()).cls('lds'));
});

test('outboundTrafficPolicy REGISTRY_ONLY: unknown TCP destinations to BlackHoleCluster, unknown HTTP hosts get 502', () => {
  const { cds, lds, rds } = gen(world({ sidecars: [sidecar('default', { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } }, 'trellis-system')] }));
  const bh = cds().find((c) => c.name === 'BlackHoleCluster')!;
  assert.deepEqual(bh, { name: 'BlackHoleCluster', type: 'STATIC', lbPolicy: 'ROUND_ROBIN', connectTimeout: { seconds: 10 }, loadAssignment: { clusterName: 'BlackHoleCluster', endpoints: [] } });
  roundTrip(TYPE_URL.cluster, bh);
  const vo = lds().find((l) => l.name === 'virtualOutbound') as { filterChains: { name: string; filters: { typedConfig: { cluster: string } }[] }[] };
  assert.equal(vo.filterChains[0].filters[0].typedConfig.cluster, 'BlackHoleCluster');
  const rc = rds().find((r) => r.name === '9080') as { virtualHosts: { name: string; domains: string[]; routes: unknown[] }[] };
  assert.deepEqual(rc.virtualHosts.at(-1), { name: 'block_all', domains: ['*'], routes: [{ name: 'block_all', match: { prefix: '/' }, directResponse: { status: 502 } }] });
  roundTrip(TYPE_URL.routeConfiguration, rc);
  // ALLOW_ANY (the default) keeps the passthrough.
  const allow = gen(bookinfo());
  assert.ok(!names(allow.cds()).includes('BlackHoleCluster'));
  const vo2 = allow.lds().find((l) => l.name === 'virtualOutbound') as { filterChains: { filters: { typedConfig: { cluster: string } }[] }[] };
  assert.equal(vo2.filterChains[0].filters[0].typedConfig.cluster, 'PassthroughCluster');
});
