// Golden tests of pilot's security translation: PeerAuthentication -> inbound filter chains,
// auto mTLS and DestinationRule tls -> clusters and endpoints, AuthorizationPolicy -> RBAC.
// Inputs are YAML in test/pilot/fixtures/security; the full expected resources are the
// *.golden.json files next to them; the assertions here spell out what they must show.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL, packAny, unpackAny } from '../../api/xds/protos.js';
import { PushContext } from '../../pilot/model/push-context.js';
import { parseNodeId, resolveProxy, type Proxy } from '../../pilot/model/proxy.js';
import { GENERATORS, generateClusters, generateEndpoints, generateListeners } from '../../pilot/xds/generators/index.js';
import type { Cluster, FilterChain, Json, Listener } from '../../pilot/xds/generators/envoy.js';
import { assertGolden, loadInputs } from './security-fixtures.js';
import { portMode, workloadMtls } from '../../pilot/security/index.js';
import { structToObject, type ProtoStruct } from '../../pilot/xds/struct.js';

const WEB_A = 'sidecar~10.244.0.30~web-a.default~default.svc.cluster.local';
const SDS = { apiConfigSource: { apiType: 'GRPC', transportApiVersion: 'V3', grpcServices: [{ envoyGrpc: { clusterName: 'sds-grpc' } }] }, resourceApiVersion: 'V3' };
// The contract's DOWNSTREAM_MTLS, written out literally.
const DOWNSTREAM_MTLS = {
  name: 'envoy.transport_sockets.tls', typedConfig: {
    '@type': TYPE_URL.downstreamTlsContext, requireClientCertificate: { value: true }, commonTlsContext: {
      tlsCertificateSdsSecretConfigs: [{ name: 'default', sdsConfig: SDS }],
      combinedValidationContext: { defaultValidationContext: { matchSubjectAltNames: [{ prefix: 'spiffe://cluster.local/' }] }, validationContextSdsSecretConfig: { name: 'ROOTCA', sdsConfig: SDS } },
      alpnProtocols: ['istio', 'h2', 'http/1.1'],
    },
  },
};
const upstreamMtls = (sni: string, sans: string[]) => ({
  name: 'envoy.transport_sockets.tls', typedConfig: {
    '@type': TYPE_URL.upstreamTlsContext, sni, commonTlsContext: {
      tlsCertificateSdsSecretConfigs: [{ name: 'default', sdsConfig: SDS }],
      combinedValidationContext: { defaultValidationContext: { matchSubjectAltNames: sans.map((exact) => ({ exact })) }, validationContextSdsSecretConfig: { name: 'ROOTCA', sdsConfig: SDS } },
      alpnProtocols: ['istio'],
    },
  },
});
/** `{ tlsMode: 'istio' }` as a google.protobuf.Struct message (what protobufjs encodes). */
const ISTIO_STRUCT = { fields: { tlsMode: { stringValue: 'istio' } } };
const RAW = { name: 'envoy.transport_sockets.raw_buffer', typedConfig: { '@type': TYPE_URL.rawBuffer } };
const WEB_SANS = ['spiffe://cluster.local/ns/default/sa/web', 'spiffe://cluster.local/ns/default/sa/web-canary'];

function setup(files: string[], enabled = true, rootNamespace?: string) {
  const push = PushContext.build(loadInputs('mesh.yaml', ...files), { version: '1', security: { enabled, rootNamespace } });
  const proxy = resolveProxy(parseNodeId(WEB_A), push);
  return { push, proxy };
}

const inbound = (push: PushContext, proxy: Proxy): Listener => generateListeners(push, proxy).find((l) => l.name === 'virtualInbound') as Listener;

/** Each chain as `<port|*>/<transport>` with its XFCC setting. */
function chainSummary(l: Listener): string[] {
  return l.filterChains.map((c: FilterChain) => {
    const port = c.filterChainMatch?.destinationPort?.value ?? '*';
    const tp = c.filterChainMatch?.transportProtocol ?? 'any';
    if ((tp === 'tls') !== (c.transportSocket !== undefined)) throw new Error(`chain ${port}/${tp}: transport socket and match disagree`);
    const hcm = c.filters.find((f) => f.name === 'envoy.filters.network.http_connection_manager');
    return `${port}/${tp}${hcm ? `/${String(hcm.typedConfig.forwardClientCertDetails)}` : ''}`;
  });
}

function rbacOf(filters: { name: string; typedConfig: Json }[]): { action: string; policies: string[] }[] {
  return filters.filter((f) => f.name.endsWith('.rbac')).map((f) => {
    const rules = f.typedConfig.rules as { action: string; policies: Record<string, unknown> };
    return { action: rules.action, policies: Object.keys(rules.policies) };
  });
}

test('no PeerAuthentication: PERMISSIVE everywhere (tls and plaintext chains), tls_inspector, XFCC per transport', () => {
  const { push, proxy } = setup([]);
  const l = inbound(push, proxy);
  assert.deepEqual(l.listenerFilters?.map((f) => f.name), ['envoy.filters.listener.original_dst', 'envoy.filters.listener.tls_inspector']);
  assert.deepEqual(chainSummary(l), ['8080/tls/APPEND_FORWARD', '8080/raw_buffer/SANITIZE', '9000/tls', '9000/raw_buffer', '*/tls', '*/raw_buffer']);
  assert.deepEqual(l.filterChains[0].transportSocket, DOWNSTREAM_MTLS);
  const hcm = l.filterChains[0].filters[0].typedConfig;
  // subject is a BoolValue in the proto (the others plain bools).
  assert.deepEqual(hcm.setCurrentClientCertDetails, { subject: { value: true }, dns: true, uri: true });
  assertGolden(l, 'permissive.lds.golden.json');
});

test('mesh STRICT, workload UNSET inherits it, portLevelMtls PERMISSIVE on 8080 only', () => {
  const { push, proxy } = setup(['strict-mesh.yaml']);
  assert.deepEqual(chainSummary(inbound(push, proxy)), ['8080/tls/APPEND_FORWARD', '8080/raw_buffer/SANITIZE', '9000/tls', '*/tls']);
  assertGolden(inbound(push, proxy), 'strict-mesh.lds.golden.json');
  // The same policies in another root namespace are an ordinary namespace's: they do not reach `default`.
  const other = setup(['strict-mesh.yaml'], true, 'istio-system');
  assert.deepEqual(chainSummary(inbound(other.push, other.proxy)), ['8080/tls/APPEND_FORWARD', '8080/raw_buffer/SANITIZE', '9000/tls', '9000/raw_buffer', '*/tls', '*/raw_buffer']);
});

test('namespace DISABLE overrides mesh STRICT; a workload port goes STRICT; portLevelMtls without selector is ignored with a warning', () => {
  const { push, proxy } = setup(['ns-disable.yaml']);
  assert.deepEqual(chainSummary(inbound(push, proxy)), ['8080/any/SANITIZE', '9000/tls', '*/any']);
  assert.ok(push.warnings.some((w) => w.startsWith('PeerAuthentication default/ignored-ports: spec.portLevelMtls needs spec.selector')), push.warnings.join('\n'));
  // A namespace that disables mTLS gets no automatic mTLS either (Istio's serviceMTLSMode).
  const web = generateClusters(push, proxy).find((c) => c.name === 'outbound|80||web.default.svc.cluster.local') as Cluster;
  assert.equal(web.transportSocketMatches, undefined);
  assert.equal(web.transportSocket, undefined);
});

test('auto mTLS: every outbound cluster offers Istio mTLS by tlsMode, SANs from the service accounts, EDS metadata from the pod label', () => {
  const { push, proxy } = setup([]);
  const clusters = generateClusters(push, proxy).filter((c) => c.name.startsWith('outbound|'));
  assert.equal(clusters.length, 3);
  for (const c of clusters) assert.equal(c.transportSocketMatches?.length, 2, c.name);
  const web = clusters.find((c) => c.name === 'outbound|80||web.default.svc.cluster.local') as Cluster;
  assert.deepEqual(web.transportSocketMatches, [
    { name: 'tlsMode-istio', match: ISTIO_STRUCT, transportSocket: upstreamMtls('outbound_.80_._.web.default.svc.cluster.local', WEB_SANS) },
    { name: 'tlsMode-disabled', match: {}, transportSocket: RAW },
  ]);
  const cla = generateEndpoints(push, 'default');
  const webEps = cla.find((c) => c.clusterName === web.name)?.endpoints[0].lbEndpoints ?? [];
  assert.deepEqual(webEps.map((e) => e.metadata), [1, 2].map(() => ({ filterMetadata: { 'envoy.transport_socket_match': ISTIO_STRUCT } })));
  const dbEps = cla.find((c) => c.clusterName === 'outbound|5432||db.default.svc.cluster.local')?.endpoints[0].lbEndpoints ?? [];
  assert.deepEqual(dbEps.map((e) => e.metadata), [undefined], 'a pod without a sidecar gets plaintext');
  assertGolden({ clusters, endpoints: cla }, 'auto-mtls.cds-eds.golden.json');
});

test('DestinationRule tls: ISTIO_MUTUAL, port-level DISABLE, subset SIMPLE, MUTUAL with files', () => {
  const { push, proxy } = setup(['dr-tls.yaml']);
  const byName = new Map(generateClusters(push, proxy).map((c) => [c.name, c]));
  const get = (n: string): Cluster => byName.get(n) as Cluster;
  const web80 = get('outbound|80||web.default.svc.cluster.local');
  assert.deepEqual(web80.transportSocket, upstreamMtls('outbound_.80_._.web.default.svc.cluster.local', WEB_SANS));
  assert.equal(web80.transportSocketMatches, undefined);
  assert.deepEqual(get('outbound|80|v1|web.default.svc.cluster.local').transportSocket, upstreamMtls('outbound_.80_.v1_.web.default.svc.cluster.local', WEB_SANS));
  const web9000 = get('outbound|9000||web.default.svc.cluster.local');
  assert.equal(web9000.transportSocket, undefined, 'port-level DISABLE replaces the rule-level tls');
  assert.equal(web9000.transportSocketMatches, undefined, 'DISABLE turns auto mTLS off');
  assert.deepEqual(get('outbound|80|v2|web.default.svc.cluster.local').transportSocket, {
    name: 'envoy.transport_sockets.tls', typedConfig: {
      '@type': TYPE_URL.upstreamTlsContext, sni: 'web.default.svc.cluster.local',
      commonTlsContext: { validationContext: { trustedCa: { filename: '/etc/certs/ca.pem' }, matchSubjectAltNames: [{ exact: 'web.example.com' }] } },
    },
  });
  assert.deepEqual(get('outbound|5432||db.default.svc.cluster.local').transportSocket, {
    name: 'envoy.transport_sockets.tls', typedConfig: {
      '@type': TYPE_URL.upstreamTlsContext, sni: 'db.internal',
      commonTlsContext: {
        validationContext: { trustedCa: { filename: '/etc/certs/ca.pem' } },
        tlsCertificates: [{ certificateChain: { filename: '/etc/certs/cert.pem' }, privateKey: { filename: '/etc/certs/key.pem' } }],
      },
    },
  });
  assertGolden([...byName.values()].filter((c) => c.name.startsWith('outbound|')), 'dr-tls.cds.golden.json');
});

test('AuthorizationPolicy: LOG, DENY, ALLOW filters before the router and the TCP proxy; TCP drops HTTP-only rules', () => {
  const { push, proxy } = setup(['authz.yaml']);
  const l = inbound(push, proxy);
  const http = l.filterChains.find((c) => c.filterChainMatch?.destinationPort?.value === 8080) as FilterChain;
  const httpFilters = http.filters[0].typedConfig.httpFilters as { name: string; typedConfig: Json }[];
  assert.equal(httpFilters.at(-1)?.name, 'envoy.filters.http.router');
  assert.deepEqual(rbacOf(httpFilters), [
    { action: 'LOG', policies: ['ns[trellis-system]-policy[audit-all]-rule[0]'] },
    { action: 'DENY', policies: ['ns[default]-policy[deny-admin]-rule[0]'] },
    { action: 'ALLOW', policies: ['ns[default]-policy[allow-a]-rule[0]', 'ns[default]-policy[allow-a]-rule[1]'] },
  ]);
  const allow = httpFilters[2].typedConfig.rules as { policies: Record<string, Json> };
  assert.deepEqual(allow.policies['ns[default]-policy[allow-a]-rule[0]'], {
    principals: [{ andIds: { ids: [
      { orIds: { ids: [{ authenticated: { principalName: { exact: 'spiffe://cluster.local/ns/default/sa/a' } } }] } },
      { orIds: { ids: [{ header: { name: 'x-user', stringMatch: { prefix: 'alice' } } }] } },
    ] } }],
    permissions: [{ andRules: { rules: [
      { orRules: { rules: [{ destinationPort: 8080 }] } },
      { orRules: { rules: [{ header: { name: ':method', stringMatch: { exact: 'GET' } } }] } },
    ] } }],
  });
  assert.deepEqual(allow.policies['ns[default]-policy[allow-a]-rule[1]'].principals, [{ andIds: { ids: [{ orIds: { ids: [{ authenticated: { principalName: { safeRegex: { regex: '.*/ns/ops/.*' } } } }] } }] } }]);
  const tcp = l.filterChains.find((c) => c.filterChainMatch?.destinationPort?.value === 9000) as FilterChain;
  assert.deepEqual(tcp.filters.map((f) => f.name), ['envoy.filters.network.rbac', 'envoy.filters.network.rbac', 'envoy.filters.network.rbac', 'envoy.filters.network.tcp_proxy']);
  assert.deepEqual(rbacOf(tcp.filters), [
    { action: 'LOG', policies: ['ns[trellis-system]-policy[audit-all]-rule[0]'] },
    { action: 'DENY', policies: ['ns[default]-policy[deny-admin]-rule[0]'] },
    { action: 'ALLOW', policies: ['ns[default]-policy[allow-a]-rule[1]'] },
  ]);
  const tcpDeny = (tcp.filters[1].typedConfig.rules as { policies: Record<string, Json> }).policies['ns[default]-policy[deny-admin]-rule[0]'];
  assert.deepEqual(tcpDeny.permissions, [{ andRules: { rules: [{ any: true }] } }], 'the DENY rule loses its path on TCP');
  assert.equal(tcp.filters[0].typedConfig.statPrefix, 'tcp.');
  assert.ok(push.warnings.some((w) => w.startsWith('AuthorizationPolicy default/allow-a: spec.rules[0].to[0].operation.methods')), push.warnings.join('\n'));
  assertGolden(l, 'authz.lds.golden.json');
});

test('ALLOW without rules denies everything; DENY without rules matches nothing; empty rule matches all', () => {
  const inputs = loadInputs('mesh.yaml');
  const ap = (name: string, spec: Json) => ({ apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name, namespace: 'default' }, spec });
  inputs.authorizationPolicies = [ap('deny-none', { action: 'DENY' }), ap('allow-nothing', {}), ap('other', { selector: { matchLabels: { app: 'db' } }, rules: [{}] })] as never;
  const push = PushContext.build(inputs, { version: '1', security: { enabled: true } });
  const proxy = resolveProxy(parseNodeId(WEB_A), push);
  const http = inbound(push, proxy).filterChains[0].filters[0].typedConfig.httpFilters as { name: string; typedConfig: Json }[];
  assert.deepEqual(rbacOf(http), [{ action: 'ALLOW', policies: [] }]);
});

test('the resources pass through protobuf, and listeners of pods selected by different policies are not shared', () => {
  const { push, proxy } = setup(['authz.yaml', 'strict-mesh.yaml']);
  // protobufjs drops fields it does not know: what comes back must still say the same things.
  type Decoded = { filterChains: { filterChainMatch?: { transportProtocol?: string }; transportSocket?: { typedConfig: { requireClientCertificate?: { value: boolean }; commonTlsContext: { combinedValidationContext: { validationContextSdsSecretConfig: { name: string } } } } };
    filters: { typedConfig: { httpFilters?: { typedConfig: { rules?: { action?: string; policies: Record<string, { principals: unknown[] }> } } }[]; forwardClientCertDetails?: string } }[] }[] };
  const l = unpackAny<Decoded>(packAny(TYPE_URL.listener, inbound(push, proxy)));
  assert.equal(l.filterChains[0].filterChainMatch?.transportProtocol, 'tls');
  assert.equal(l.filterChains[0].transportSocket?.typedConfig.requireClientCertificate?.value, true);
  assert.equal(l.filterChains[0].transportSocket?.typedConfig.commonTlsContext.combinedValidationContext.validationContextSdsSecretConfig.name, 'ROOTCA');
  assert.equal(l.filterChains[0].filters[0].typedConfig.forwardClientCertDetails, 'APPEND_FORWARD');
  const allow = l.filterChains[0].filters[0].typedConfig.httpFilters?.[2].typedConfig.rules;
  assert.equal(allow?.action, 'ALLOW');
  const decoded = JSON.stringify(allow?.policies);
  for (const want of ['"regex":".*/ns/ops/.*"', '"exact":"spiffe://cluster.local/ns/default/sa/a"', '"destinationPort":8080', '"name":"x-user"']) assert.ok(decoded.includes(want), `${want} in ${decoded}`);
  const c = unpackAny<{ transportSocketMatches: { match: ProtoStruct; transportSocket: { typedConfig: { sni: string } } }[] }>(packAny(TYPE_URL.cluster, generateClusters(push, proxy)[0]));
  assert.deepEqual(structToObject(c.transportSocketMatches[0].match), { tlsMode: 'istio' });
  assert.equal(c.transportSocketMatches[0].transportSocket.typedConfig.sni, 'outbound_.5432_._.db.default.svc.cluster.local');
  const e = unpackAny<{ endpoints: { lbEndpoints: { metadata?: { filterMetadata: Record<string, unknown> } }[] }[] }>(packAny(TYPE_URL.clusterLoadAssignment, generateEndpoints(push, 'default')[1]));
  assert.deepEqual(structToObject(e.endpoints[0].lbEndpoints[0].metadata?.filterMetadata['envoy.transport_socket_match'] as ProtoStruct), { tlsMode: 'istio' });
  const lds = GENERATORS.find((g) => g.type === 'lds');
  const db = resolveProxy(parseNodeId('sidecar~10.244.0.40~db-0.default~default.svc.cluster.local'), push);
  assert.notEqual(lds?.proxyClass(proxy, push), lds?.proxyClass(db, push));
});

test('security off (proxies without TLS): plaintext chains and no transport sockets, policies still checked', () => {
  const { push, proxy } = setup(['authz.yaml', 'strict-mesh.yaml'], false);
  assert.deepEqual(chainSummary(inbound(push, proxy)), ['8080/any/undefined', '9000/any', '*/any']);
  assert.ok(generateClusters(push, proxy).every((c) => !c.transportSocket && !c.transportSocketMatches));
  assert.ok(push.warnings.length > 0);
});

test("Istio's value forms: principal `*`, prefix and suffix, namespace wildcards, service accounts, CIDRs, paths", () => {
  const inputs = loadInputs('mesh.yaml');
  inputs.authorizationPolicies = [{
    apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'forms', namespace: 'default' },
    spec: { rules: [{
      from: [{ source: { principals: ['*', 'cluster.local/ns/a/*', '*/sa/b'], notNamespaces: ['test-*'], serviceAccounts: ['web', 'ops/admin'], remoteIpBlocks: ['192.168.0.1'] } }],
      to: [{ operation: { paths: ['/x', '/api/*', '*.png', '*'], notHosts: ['*.internal'] } }],
      when: [{ key: 'source.ip', notValues: ['10.0.0.0/8'] }, { key: 'request.auth.claims[iss]', values: ['x'] }],
    }] },
  }];
  const push = PushContext.build(inputs, { version: '1', security: { enabled: true } });
  const [allow] = rbacRulesOf(push);
  const policy = allow.policies['ns[default]-policy[forms]-rule[0]'] as { principals: { andIds: { ids: Json[] } }[]; permissions: { andRules: { rules: Json[] } }[] };
  const pn = (m: Json) => ({ authenticated: { principalName: m } });
  assert.deepEqual(policy.principals[0].andIds.ids, [
    { orIds: { ids: [pn({ safeRegex: { regex: 'spiffe://.+' } }), pn({ prefix: 'spiffe://cluster.local/ns/a/' }), pn({ safeRegex: { regex: 'spiffe://.*/sa/b' } })] } },
    { orIds: { ids: [pn({ safeRegex: { regex: 'spiffe://[^/]+/ns/default/sa/web' } }), pn({ safeRegex: { regex: 'spiffe://[^/]+/ns/ops/sa/admin' } })] } },
    { notId: { orIds: { ids: [pn({ safeRegex: { regex: '.*/ns/test-.*/.*' } })] } } },
    { orIds: { ids: [{ remoteIp: { addressPrefix: '192.168.0.1', prefixLen: { value: 32 } } }] } },
    { notId: { orIds: { ids: [{ directRemoteIp: { addressPrefix: '10.0.0.0', prefixLen: { value: 8 } } }] } } },
    { orIds: { ids: [{ notId: { any: true } }] } }, // no JWT in Trellis: a claim never matches
  ]);
  assert.deepEqual(policy.permissions[0].andRules.rules, [
    { notRule: { orRules: { rules: [{ header: { name: ':authority', stringMatch: { suffix: '.internal', ignoreCase: true } } }] } } },
    { orRules: { rules: [
      { urlPath: { path: { exact: '/x' } } }, { urlPath: { path: { prefix: '/api/' } } },
      { urlPath: { path: { suffix: '.png' } } }, { urlPath: { path: { safeRegex: { regex: '.+' } } } },
    ] } },
  ]);
});

function rbacRulesOf(push: PushContext): { action: string; policies: Record<string, unknown> }[] {
  const proxy = resolveProxy(parseNodeId(WEB_A), push);
  const hcm = inbound(push, proxy).filterChains[0].filters[0].typedConfig;
  return (hcm.httpFilters as { name: string; typedConfig: Json }[]).filter((f) => f.name === 'envoy.filters.http.rbac').map((f) => f.typedConfig.rules as { action: string; policies: Record<string, unknown> });
}

test('a selector policy in the root namespace is not a workload policy (Istio), even for workloads there', () => {
  const inputs = loadInputs('mesh.yaml', 'strict-mesh.yaml');
  inputs.peerAuthentications?.push({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'sel', namespace: 'trellis-system' }, spec: { selector: { matchLabels: { app: 'web' } }, mtls: { mode: 'DISABLE' } } });
  const push = PushContext.build(inputs, { version: '1', security: { enabled: true } });
  assert.equal(workloadMtls(push, { namespace: 'trellis-system', labels: { app: 'web' } }).mode, 'STRICT');
  assert.equal(workloadMtls(push, { namespace: 'default', labels: { app: 'web' } }).mode, 'STRICT', 'default/web inherits the mesh mode (its own policy leaves it UNSET)');
  assert.equal(portMode(workloadMtls(push, { namespace: 'default', labels: { app: 'web' } }), 8080), 'PERMISSIVE');
});
