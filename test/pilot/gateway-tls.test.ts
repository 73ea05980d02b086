// Golden tests of Gateway TLS translation: HTTPS servers terminate with a certificate served
// over SDS (`kubernetes://<credentialName>` from the gateway workload's namespace only),
// MUTUAL adds the client CA (`...-cacert`), PASSTHROUGH routes by SNI to the bound tls
// routes, httpsRedirect marks virtual hosts requireTls, and servers that cannot be served
// (no credential, a missing Secret) are left out and reported while the others work. The
// proxy's own decoders accept what pilot emits.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL, packAny, unpackAny } from '../../api/xds/protos.js';
import type { Secret, Service } from '../../api/kube/index.js';
import type { GatewayServer } from '../../api/istio/index.js';
import { PushContext } from '../../pilot/model/push-context.js';
import { parseNodeId, resolveProxy } from '../../pilot/model/proxy.js';
import { GENERATORS } from '../../pilot/xds/generators/index.js';
import { analyze } from '../../pilot/analysis/analyze.js';
import { changeScope, typeUnaffected } from '../../pilot/xds/change-scope.js';
import type { ConfigInputs } from '../../pilot/model/inputs.js';
import { decodeListener } from '../../proxy/xds/resources/listener.js';
import { decodeSecret } from '../../proxy/xds/resources/secret.js';
import { decodeRouteConfiguration } from '../../proxy/xds/resources/route.js';
import { V1_NODE_ID } from './fixtures.js';
import { GW_NODE_ID, GW_NS, gateway, gatewayVs, withGateway } from './gateway-fixtures.js';
import { makeTestCA } from '../proxy/test-ca.js';

type Obj = Record<string, any>;
const b64 = (s: string) => Buffer.from(s).toString('base64');
const ADS = { ads: {}, resourceApiVersion: 'V3' };
let cert: { certPem: string; keyPem: string; rootPem: string };

before(async () => {
  const ca = await makeTestCA('example');
  const c = await ca.issue([], ['bookinfo.example.com']);
  cert = { ...c, rootPem: ca.rootPem };
});

function tlsSecret(name: string, namespace = GW_NS, withCa = false): Secret {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'kubernetes.io/tls', data: { 'tls.crt': b64(cert.certPem), 'tls.key': b64(cert.keyPem), ...(withCa ? { 'ca.crt': b64(cert.rootPem) } : {}) } };
}
function genericSecret(name: string, data: Record<string, string>, namespace = GW_NS): Secret {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'Opaque', data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])) };
}
const https = (name: string, hosts: string[], tls: GatewayServer['tls'], protocol = 'HTTPS'): GatewayServer => ({ port: { number: 443, name, protocol }, hosts, tls });

function inputs(servers: GatewayServer[], secrets: Secret[]): ConfigInputs {
  const route = [{ route: [{ destination: { host: 'reviews.default.svc.cluster.local', subset: 'v1' } }] }];
  const i = withGateway([gateway('bookinfo-gateway', servers)], [
    gatewayVs('web', ['bookinfo.example.com', 'mtls.example.com', 'missing.example.com', 'files.example.com'], ['bookinfo-gateway'], route),
    { ...gatewayVs('nginx', ['nginx.example.com'], ['bookinfo-gateway'], undefined), spec: { hosts: ['nginx.example.com'], gateways: ['bookinfo-gateway'], tls: [{ match: [{ sniHosts: ['nginx.example.com'] }], route: [{ destination: { host: 'reviews.default.svc.cluster.local', port: { number: 9080 } } }] }] } },
  ]);
  // The gateway Service maps 80 -> 8080 and 443 -> 8443.
  const svc = i.services.find((s) => s.metadata.name === 'istio-ingressgateway') as Service;
  svc.spec.ports = [{ name: 'http2', port: 80, targetPort: 8080, protocol: 'TCP' }, { name: 'https', port: 443, targetPort: 8443, protocol: 'TCP' }];
  i.secrets = secrets;
  return i;
}

function gen(i: ConfigInputs, nodeId = GW_NODE_ID) {
  const push = PushContext.build(i, { version: '1' });
  const proxy = resolveProxy(parseNodeId(nodeId), push);
  const out = (type: string) => GENERATORS.find((g) => g.type === type)!.generate(push, proxy);
  return { push, lds: () => out('lds').map((r) => r.resource as Obj), rds: () => out('rds').map((r) => r.resource as Obj), sds: () => out('sds') };
}
const wire = (typeUrl: string, r: object): Obj => { const { '@type': _t, ...body } = unpackAny<Obj>(packAny(typeUrl, r)); return body; };

const SERVERS = (): GatewayServer[] => [
  { port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['bookinfo.example.com'], tls: { httpsRedirect: true } },
  https('https-bookinfo', ['bookinfo.example.com'], { mode: 'SIMPLE', credentialName: 'bookinfo-cred', minProtocolVersion: 'TLSV1_2', cipherSuites: ['ECDHE-RSA-AES128-GCM-SHA256'] }),
  https('https-mtls', ['mtls.example.com'], { mode: 'MUTUAL', credentialName: 'mtls-cred', subjectAltNames: ['client.example.com'] }),
  https('https-missing', ['missing.example.com'], { mode: 'SIMPLE', credentialName: 'no-such-secret' }),
  https('https-nocred', ['nocred.example.com'], { mode: 'SIMPLE' }),
  https('tls-nginx', ['nginx.example.com'], { mode: 'PASSTHROUGH' }, 'TLS'),
];
const SECRETS = (): Secret[] => [
  tlsSecret('bookinfo-cred'),
  genericSecret('mtls-cred', { cert: cert.certPem, key: cert.keyPem, cacert: cert.rootPem }),
  tlsSecret('foreign', 'default'),
  tlsSecret('no-such-secret', 'default'),
];

test('HTTPS listener: tls_inspector, a chain per servable server by SNI, SDS certificate over ADS, client CA for MUTUAL, PASSTHROUGH by SNI', () => {
  const { lds } = gen(inputs(SERVERS(), SECRETS()));
  const l = lds().find((x) => x.name === '0.0.0.0_8443')!;
  assert.deepEqual(l.listenerFilters, [{ name: 'envoy.filters.listener.tls_inspector', typedConfig: { '@type': TYPE_URL.tlsInspector } }]);
  assert.deepEqual(l.filterChains.map((c: Obj) => [c.name, c.filterChainMatch?.serverNames]), [
    ['default/bookinfo-gateway:https-bookinfo', ['bookinfo.example.com']],
    ['default/bookinfo-gateway:https-mtls', ['mtls.example.com']],
    ['default/nginx.tls[0]', ['nginx.example.com']],
  ], 'the server whose Secret is missing (in the gateway namespace) and the one without a credential are left out');
  const [simple, mutual, pass] = l.filterChains as Obj[];
  assert.deepEqual(simple.transportSocket, {
    name: 'envoy.transport_sockets.tls',
    typedConfig: {
      '@type': TYPE_URL.downstreamTlsContext, requireClientCertificate: { value: false },
      commonTlsContext: {
        tlsCertificateSdsSecretConfigs: [{ name: 'kubernetes://bookinfo-cred', sdsConfig: ADS }],
        tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2', cipherSuites: ['ECDHE-RSA-AES128-GCM-SHA256'] },
        alpnProtocols: ['h2', 'http/1.1'],
      },
    },
  });
  assert.equal(simple.filters[0].typedConfig.rds.routeConfigName, 'https.443.https-bookinfo.bookinfo-gateway.default');
  assert.deepEqual(mutual.transportSocket.typedConfig.requireClientCertificate, { value: true });
  assert.deepEqual(mutual.transportSocket.typedConfig.commonTlsContext.combinedValidationContext, {
    defaultValidationContext: { matchSubjectAltNames: [{ exact: 'client.example.com' }] },
    validationContextSdsSecretConfig: { name: 'kubernetes://mtls-cred-cacert', sdsConfig: ADS },
  });
  assert.equal(pass.transportSocket, undefined, 'PASSTHROUGH does not terminate');
  assert.equal(pass.filters[0].name, 'envoy.filters.network.tcp_proxy');
  assert.equal(pass.filters[0].typedConfig.cluster, 'outbound|9080||reviews.default.svc.cluster.local');
  // The proxy accepts it, and sees which SDS names to fetch.
  const decoded = decodeListener(wire(TYPE_URL.listener, l));
  assert.deepEqual(decoded.errors, []);
  const chains = decoded.value!.filterChains;
  assert.deepEqual(chains[0].tls?.certificate, { kind: 'sds', name: 'kubernetes://bookinfo-cred' });
  assert.deepEqual(chains[0].tls?.params, { minVersion: 'TLSv1.2', maxVersion: undefined, ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' });
  assert.deepEqual(chains[1].tls?.roots, { kind: 'sds', name: 'kubernetes://mtls-cred-cacert' });
  assert.equal(chains[1].tls?.requireClientCertificate, true);
});

test('routes: one RouteConfiguration per HTTPS server; httpsRedirect marks the plain HTTP host requireTls', () => {
  const { rds } = gen(inputs(SERVERS(), SECRETS()));
  const routes = rds();
  assert.deepEqual(routes.map((r) => r.name), ['http.8080', 'https.443.https-bookinfo.bookinfo-gateway.default', 'https.443.https-mtls.bookinfo-gateway.default', 'https.443.https-missing.bookinfo-gateway.default', 'https.443.https-nocred.bookinfo-gateway.default']);
  const http = routes[0];
  assert.deepEqual(http.virtualHosts.map((v: Obj) => [v.name, v.requireTls]), [['bookinfo.example.com:80', 'ALL']]);
  assert.deepEqual(routes[1].virtualHosts.map((v: Obj) => v.domains), [['bookinfo.example.com', 'bookinfo.example.com:*']]);
  const decoded = decodeRouteConfiguration(wire(TYPE_URL.routeConfiguration, http));
  assert.deepEqual(decoded.errors, []);
  assert.equal(decoded.value!.virtualHosts[0].requireTls, 'ALL');
});

test('SDS: only the gateway namespace\'s credentials, certificate and -cacert resources; sidecars get none', () => {
  const { sds } = gen(inputs(SERVERS(), [...SECRETS(), genericSecret('bookinfo-cred-cacert', { cacert: cert.rootPem }), genericSecret('not-pem', { cert: 'garbage', key: 'garbage' })]));
  const got = sds();
  assert.deepEqual(got.map((r) => r.name), ['kubernetes://bookinfo-cred', 'kubernetes://bookinfo-cred-cacert', 'kubernetes://mtls-cred', 'kubernetes://mtls-cred-cacert'],
    'no Secret from another namespace, none that does not parse');
  const byName = new Map(got.map((r) => [r.name, wire(TYPE_URL.secret, r.resource)]));
  const c = decodeSecret(byName.get('kubernetes://bookinfo-cred')!);
  assert.deepEqual(c.errors, []);
  assert.deepEqual(c.value, { kind: 'certificate', certChainPem: cert.certPem, keyPem: cert.keyPem });
  assert.deepEqual(decodeSecret(byName.get('kubernetes://mtls-cred-cacert')!).value, { kind: 'roots', caPem: cert.rootPem });
  assert.deepEqual(gen(inputs(SERVERS(), SECRETS()), V1_NODE_ID).sds(), []);
  // Another gateway namespace sees its own Secrets only.
  const other = gen(inputs(SERVERS(), SECRETS()), `router~10.244.0.91~gw-2.default~default.svc.cluster.local`).sds();
  assert.deepEqual(other.map((r) => r.name), ['kubernetes://foreign', 'kubernetes://no-such-secret']);
});

test('servers that cannot be served are reported (pilot warnings, analyze IST0101) and the rest still work', () => {
  const i = inputs([...SERVERS(), { port: { number: 443, name: 'https-notls', protocol: 'HTTPS' }, hosts: ['x.example.com'] }], SECRETS());
  const { push, lds } = gen(i);
  const warnings = push.warnings.filter((w) => w.startsWith('Gateway '));
  assert.deepEqual(warnings, [
    'Gateway default/bookinfo-gateway: spec.servers[3].tls.credentialName: Secret "no-such-secret" not found in namespace "trellis-system" (the gateway workload\'s); the server is not served to gateway workloads in trellis-system',
    'Gateway default/bookinfo-gateway: spec.servers[4].tls.credentialName: SIMPLE TLS needs credentialName (or serverCertificate and privateKey); the server is not served to gateway workloads in trellis-system',
    'Gateway default/bookinfo-gateway: spec.servers[6].tls: required for HTTPS servers; the server is not served to gateway workloads in trellis-system',
  ]);
  assert.equal(lds().find((x) => x.name === '0.0.0.0_8443')!.filterChains.length, 3);
  assert.ok(lds().some((x) => x.name === '0.0.0.0_8080'), 'the HTTP server keeps working');
  const msgs = analyze(i).filter((m) => m.resource.kind === 'Gateway');
  assert.deepEqual(msgs.map((m) => [m.code, m.field, m.message]), [
    ['IST0101', 'spec.servers[3].tls.credentialName', 'Referenced credentialName not found: "no-such-secret" (in namespace trellis-system, where the gateway workload runs)'],
    ['IST0106', 'spec.servers[4].tls.credentialName', 'SIMPLE TLS needs credentialName (or serverCertificate and privateKey)'],
    ['IST0106', 'spec.servers[6].tls', 'required for HTTPS servers'],
  ]);
  // When the Secret appears, the server is served.
  const fixed = gen(inputs(SERVERS(), [...SECRETS(), tlsSecret('no-such-secret')]));
  assert.deepEqual(fixed.lds().find((x) => x.name === '0.0.0.0_8443')!.filterChains.map((c: Obj) => c.filterChainMatch?.serverNames[0]), ['bookinfo.example.com', 'mtls.example.com', 'missing.example.com', 'nginx.example.com']);
});

test('ISTIO_MUTUAL uses the workload certificate; serverCertificate files; a TLS server that terminates routes tcp', () => {
  const servers: GatewayServer[] = [
    https('https-istio', ['bookinfo.example.com'], { mode: 'ISTIO_MUTUAL' }),
    https('https-files', ['files.example.com'], { mode: 'MUTUAL', serverCertificate: '/etc/certs/cert.pem', privateKey: '/etc/certs/key.pem', caCertificates: '/etc/certs/ca.pem', maxProtocolVersion: 'TLSV1_2' }),
  ];
  const l = gen(inputs(servers, [])).lds().find((x) => x.name === '0.0.0.0_8443')!;
  const [istio, files] = l.filterChains as Obj[];
  assert.deepEqual(istio.transportSocket.typedConfig.commonTlsContext.tlsCertificateSdsSecretConfigs.map((s: Obj) => s.name), ['default']);
  assert.equal(istio.transportSocket.typedConfig.commonTlsContext.combinedValidationContext.validationContextSdsSecretConfig.name, 'ROOTCA');
  assert.deepEqual(files.transportSocket.typedConfig.commonTlsContext.tlsCertificates, [{ certificateChain: { filename: '/etc/certs/cert.pem' }, privateKey: { filename: '/etc/certs/key.pem' } }]);
  assert.deepEqual(files.transportSocket.typedConfig.commonTlsContext.validationContext, { trustedCa: { filename: '/etc/certs/ca.pem' } });
  assert.deepEqual(files.transportSocket.typedConfig.commonTlsContext.tlsParams, { tlsMinimumProtocolVersion: 'TLSv1_2', tlsMaximumProtocolVersion: 'TLSv1_2' });
  // TLS protocol + SIMPLE: terminated, then the bound tcp route.
  const i = inputs([https('tls-term', ['bookinfo.example.com'], { mode: 'SIMPLE', credentialName: 'bookinfo-cred' }, 'TLS')], SECRETS());
  i.virtualServices.push({ ...gatewayVs('tcp', ['bookinfo.example.com'], ['bookinfo-gateway'], undefined), spec: { hosts: ['bookinfo.example.com'], gateways: ['bookinfo-gateway'], tcp: [{ route: [{ destination: { host: 'reviews.default.svc.cluster.local', port: { number: 9080 } } }] }] } });
  const [chain] = gen(i).lds().find((x) => x.name === '0.0.0.0_8443')!.filterChains as Obj[];
  assert.equal(chain.filters[0].typedConfig.cluster, 'outbound|9080||reviews.default.svc.cluster.local');
  assert.equal(chain.transportSocket.typedConfig.commonTlsContext.alpnProtocols, undefined);
});

test('change scope: a Gateway change regenerates listeners and routes only, a Secret change listeners and secrets only', () => {
  const base = inputs(SERVERS(), SECRETS());
  const before = PushContext.build(base, { version: '1' });
  const types = ['cds', 'eds', 'lds', 'rds', 'sds'];
  const gw = PushContext.build({ ...base, gateways: [gateway('bookinfo-gateway', SERVERS().slice(0, 2))] }, { version: '2' });
  const gwScope = changeScope(before, gw);
  assert.equal(gwScope.full, false);
  assert.deepEqual(types.map((t) => typeUnaffected(gwScope, t)), [true, true, false, false, true]);
  const rotated = PushContext.build({ ...base, secrets: [...SECRETS().slice(1), tlsSecret('bookinfo-cred', GW_NS, true)] }, { version: '3' });
  const secretScope = changeScope(before, rotated);
  assert.deepEqual(types.map((t) => typeUnaffected(secretScope, t)), [true, true, false, true, false]);
});
