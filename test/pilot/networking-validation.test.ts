// Apply-time validation of Gateway, ServiceEntry and Sidecar: istio.io examples admitted,
// bad input named by field path, through the webhook's review and through a real API
// server calling pilot's webhook (a refused apply carries the field path).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { validateGateway, validateServiceEntry, validateSidecar } from '../../pilot/validation/networking.js';
import { review, ValidationWebhook } from '../../pilot/validation/webhook.js';
import { call, startTestServer, type TestServer } from '../apiserver/helpers.js';
import { parseAllDocuments } from 'yaml';

const fields = (errs: { field: string; message: string }[]): string[] => errs.map((e) => `${e.field}: ${e.message}`);
const cleanups: (() => Promise<void>)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c().catch(() => {}); });

const httpsServer = (tls: Record<string, unknown>, name = 'https') => ({ port: { number: 443, name, protocol: 'HTTPS' }, hosts: ['bookinfo.example.com'], tls });

test('Gateway: istio.io examples pass (HTTP with httpsRedirect, SIMPLE/MUTUAL credentialName, PASSTHROUGH, ISTIO_MUTUAL)', () => {
  assert.deepEqual(validateGateway({
    selector: { istio: 'ingressgateway' },
    servers: [
      { port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'], tls: { httpsRedirect: true } },
      httpsServer({ mode: 'SIMPLE', credentialName: 'bookinfo-secret', minProtocolVersion: 'TLSV1_2', maxProtocolVersion: 'TLSV1_3', cipherSuites: ['ECDHE-RSA-AES128-GCM-SHA256'] }),
      { port: { number: 8443, name: 'https-mtls', protocol: 'HTTPS' }, hosts: ['prod-us1/*.example.com', './reviews.example.com'], tls: { mode: 'MUTUAL', credentialName: 'mtls' } },
      { port: { number: 9443, name: 'tls-pass', protocol: 'TLS' }, hosts: ['*.nginx.example.com'], tls: { mode: 'PASSTHROUGH' } },
      { port: { number: 15443, name: 'tls-istio', protocol: 'TLS' }, hosts: ['*'], tls: { mode: 'ISTIO_MUTUAL' } },
      { port: { number: 8444, name: 'https-files', protocol: 'HTTPS' }, hosts: ['files.example.com'], tls: { mode: 'SIMPLE', serverCertificate: '/etc/certs/c.pem', privateKey: '/etc/certs/k.pem' } },
    ],
  }), []);
});

test('Gateway field errors: servers, ports, protocols, hosts, tls modes and credentials, duplicate port names', () => {
  assert.deepEqual(fields(validateGateway({ selector: { istio: 'ingressgateway' } })), ['spec.servers: at least one server is required']);
  assert.deepEqual(fields(validateGateway({
    servers: [
      { port: { number: 70000, name: 'http', protocol: 'HTTPX' }, hosts: [] },
      { port: { number: 443, name: 'http', protocol: 'HTTPS' }, hosts: ['a/b/c', 'foo/*bar.com', '*/', 'Bad_NS/x.com'] },
      httpsServer({ mode: 'SIMPLE' }, 'https-a'),
      httpsServer({ mode: 'MUTUAL', serverCertificate: '/c.pem' }, 'https-b'),
      httpsServer({ mode: 'STRICT', credentialName: 'x' }, 'https-c'),
      httpsServer({ mode: 'ISTIO_MUTUAL', credentialName: 'x', minProtocolVersion: 'TLSV1_3', maxProtocolVersion: 'TLSV1_1' }, 'https-d'),
      { port: { number: 8443, protocol: 'HTTPS' }, hosts: ['x.com'], tls: { httpsRedirect: true }, extra: 1 },
    ],
  })), [
    'spec.servers[0].port.number: 70000: a port number 1-65535 is required',
    "spec.servers[0].port.protocol: 'HTTPX' is not a protocol (HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, MONGO, TCP, TLS)",
    'spec.servers[0].hosts: at least one host is required',
    "spec.servers[1].hosts[0]: 'a/b/c' must be <namespace>/<host> or <host>",
    "spec.servers[1].hosts[1]: 'foo/*bar.com': a wildcard is only allowed as the whole leftmost label (*.example.com)",
    "spec.servers[1].hosts[2]: '*/': the host after '/' is empty",
    "spec.servers[1].hosts[3]: 'Bad_NS/x.com': namespace 'Bad_NS' must be *, . or a namespace name",
    'spec.servers[1].tls: required for HTTPS servers',
    "spec.servers[1].port.name: duplicate port name 'http' (also spec.servers[0])",
    'spec.servers[2].tls.credentialName: SIMPLE TLS requires credentialName or serverCertificate',
    'spec.servers[3].tls.privateKey: MUTUAL TLS with serverCertificate requires privateKey',
    'spec.servers[3].tls.caCertificates: MUTUAL TLS with serverCertificate requires caCertificates',
    "spec.servers[4].tls.mode: 'STRICT' is not a TLS mode (PASSTHROUGH, SIMPLE, MUTUAL, AUTO_PASSTHROUGH, ISTIO_MUTUAL, OPTIONAL_MUTUAL)",
    'spec.servers[5].tls.credentialName: must be empty with ISTIO_MUTUAL (the workload certificate is used)',
    'spec.servers[5].tls.maxProtocolVersion: must not be lower than minProtocolVersion',
    'spec.servers[6].extra: unknown field',
    'spec.servers[6].port.name: required',
    'spec.servers[6].tls.mode: a HTTPS server needs TLS settings (mode and credentials), not only httpsRedirect',
  ]);
});

test('ServiceEntry: examples pass; hosts, ports, addresses and resolution vs endpoints are checked', () => {
  assert.deepEqual(validateServiceEntry({ hosts: ['api.example.com'], ports: [{ number: 443, name: 'https', protocol: 'TLS' }], resolution: 'DNS', location: 'MESH_EXTERNAL' }), []);
  assert.deepEqual(validateServiceEntry({
    hosts: ['mymongodb.somedomain'], addresses: ['192.192.192.192/24'], ports: [{ number: 27018, name: 'mongodb', protocol: 'MONGO' }],
    location: 'MESH_INTERNAL', resolution: 'STATIC', endpoints: [{ address: '2.2.2.2' }, { address: '3.3.3.3', ports: { mongodb: 27019 } }],
  }), []);
  assert.deepEqual(fields(validateServiceEntry({
    hosts: ['*', 'a.com', 'a.com', 'ns/b.com'], addresses: ['10.0.0.0/33', 'nope'],
    ports: [{ number: 80, name: 'http', protocol: 'HTTP' }, { number: 80, name: 'http', protocol: 'FTP' }],
    resolution: 'STATIC', endpoints: [{ address: 'db.example.com', ports: { grpc: 9090 } }],
  })), [
    "spec.hosts[0]: '*' is not allowed: name the hosts (or *.domain)",
    "spec.hosts[2]: duplicate host 'a.com'",
    "spec.hosts[3]: 'ns/b.com' must be a host name, without a namespace",
    "spec.addresses[0]: '10.0.0.0/33' is not an IP address or CIDR",
    "spec.addresses[1]: 'nope' is not an IP address or CIDR",
    "spec.ports[1].protocol: 'FTP' is not a protocol (HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, MONGO, TCP, TLS, MYSQL, REDIS, UDP)",
    "spec.ports[1].name: duplicate port name 'http'",
    'spec.ports[1].number: duplicate port number 80',
    "spec.endpoints[0].address: 'db.example.com' must be an IP address with resolution STATIC",
    "spec.endpoints[0].ports.grpc: port 'grpc' is not one of spec.ports",
  ]);
  assert.deepEqual(fields(validateServiceEntry({ hosts: ['a.com'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC' })), ['spec.endpoints: at least one endpoint is required with resolution STATIC']);
  assert.deepEqual(fields(validateServiceEntry({ hosts: ['a.com'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], endpoints: [{ address: '1.1.1.1' }] })), ['spec.endpoints: must be empty with resolution NONE']);
  assert.deepEqual(fields(validateServiceEntry({ hosts: ['*.a.com'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'DNS', resolutoin: 'x' })), [
    'spec.resolutoin: unknown field',
    "spec.hosts[0]: '*.a.com': a wildcard host needs endpoints with resolution DNS",
  ]);
});

test('Sidecar: examples pass; egress hosts, ports, catch-all order, outbound policy and empty specs fail', () => {
  assert.deepEqual(validateSidecar({ egress: [{ hosts: ['./*', 'istio-system/*'] }] }), []);
  assert.deepEqual(validateSidecar({
    workloadSelector: { labels: { app: 'ratings' } },
    egress: [{ port: { number: 9080, protocol: 'HTTP', name: 'egresshttp' }, hosts: ['prod-us1/*'] }, { hosts: ['istio-system/*', '~/*'] }],
    outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
  }), []);
  assert.deepEqual(fields(validateSidecar({})), ['spec: empty Sidecar: set egress, ingress or outboundTrafficPolicy']);
  assert.deepEqual(fields(validateSidecar({
    workloadSelector: { labels: {} },
    egress: [{ hosts: ['*/*'] }, { port: { number: 0, protocol: 'HTTP' }, hosts: ['reviews', 'x/y/z'] }, { port: { number: 9080, protocol: 'TCP' }, hosts: [] }, { port: { number: 9080, protocol: 'TCP' }, hosts: ['./*'] }],
    outboundTrafficPolicy: { mode: 'DENY' },
  })), [
    'spec.workloadSelector.labels: at least one label is required',
    'spec.egress[0]: an egress listener without a port must be the last one',
    "spec.egress[1].hosts[0]: 'reviews' must be <namespace>/<host> (*, . or ~ for the namespace)",
    "spec.egress[1].hosts[1]: 'x/y/z' must be <namespace>/<host> or <host>",
    'spec.egress[1].port.number: 0: a port number 1-65535 is required',
    'spec.egress[2].hosts: at least one host is required',
    'spec.egress[3].port.number: duplicate egress port 9080',
    "spec.outboundTrafficPolicy.mode: 'DENY' is not a mode (ALLOW_ANY, REGISTRY_ONLY)",
  ]);
});

test('the webhook reviews Gateway, ServiceEntry and Sidecar; the shipped samples and examples are admitted', () => {
  const req = (kind: string, spec: unknown) => ({ uid: 'u', kind: { group: 'networking.istio.io', kind }, operation: 'CREATE', object: { metadata: { name: 'g', namespace: 'demo' }, spec } });
  const denied = review(req('Gateway', { servers: [{ port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['a.com'] }] }));
  assert.equal(denied.allowed, false);
  assert.equal(denied.status?.message, 'Gateway demo/g is invalid: spec.servers[0].tls: required for HTTPS servers');
  assert.equal(review(req('ServiceEntry', { hosts: [] })).allowed, false);
  assert.equal(review(req('Sidecar', { egress: [{ hosts: ['bad'] }] })).allowed, false);
  // Every Gateway/ServiceEntry/Sidecar the project ships must pass.
  for (const file of ['samples/split/gateway.yaml']) {
    for (const doc of parseAllDocuments(fs.readFileSync(file, 'utf8'))) {
      const o = doc.toJS() as { kind?: string; spec?: unknown; metadata?: { name?: string } } | null;
      if (!o?.kind || !['Gateway', 'ServiceEntry', 'Sidecar'].includes(o.kind)) continue;
      assert.deepEqual(review(req(o.kind, o.spec)), { uid: 'u', allowed: true }, `${file}: ${o.kind} ${o.metadata?.name}`);
    }
  }
});

test('an apply through the API server is refused by pilot\'s webhook with the field path', async () => {
  const t: TestServer = await startTestServer({ memory: true });
  cleanups.push(() => t.stop());
  const hook = new ValidationWebhook({ host: '127.0.0.1', port: 0 });
  const port = await hook.start();
  cleanups.push(() => hook.stop());
  const s = t.server;
  const schema = { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } };
  assert.equal((await call(s, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'gateways.networking.istio.io' },
    spec: { group: 'networking.istio.io', scope: 'Namespaced', names: { plural: 'gateways', singular: 'gateway', kind: 'Gateway', listKind: 'GatewayList' }, versions: [{ name: 'v1', served: true, storage: true, schema }] },
  })).status, 201);
  assert.equal((await call(s, 'POST', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations', {
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: 'istio-validator' },
    webhooks: [{ name: 'rev.validation.istio.io', admissionReviewVersions: ['v1'], sideEffects: 'None', failurePolicy: 'Fail',
      clientConfig: { url: `https://127.0.0.1:${port}/validate`, caBundle: Buffer.from(hook.certificate.caCertPem).toString('base64') },
      rules: [{ operations: ['CREATE', 'UPDATE'], apiGroups: ['networking.istio.io'], apiVersions: ['v1'], resources: ['gateways'] }] }],
  })).status, 201);
  const gw = (servers: unknown[]) => ({ apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'gw', namespace: 'default' }, spec: { selector: { istio: 'ingressgateway' }, servers } });
  const refused = await call(s, 'POST', '/apis/networking.istio.io/v1/namespaces/default/gateways', gw([{ port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['a.example.com'], tls: { mode: 'SIMPLE' } }]));
  assert.equal(refused.status, 422, JSON.stringify(refused.body));
  assert.match(refused.body.message, /admission webhook "rev.validation.istio.io" denied the request: Gateway default\/gw is invalid: spec\.servers\[0\]\.tls\.credentialName: SIMPLE TLS requires credentialName or serverCertificate/);
  const ok = await call(s, 'POST', '/apis/networking.istio.io/v1/namespaces/default/gateways', gw([{ port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['a.example.com'], tls: { mode: 'SIMPLE', credentialName: 'a-cert' } }]));
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
});
