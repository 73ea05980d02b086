// xDS over TLS with ServiceAccount tokens (pilot's port 15012, shared with the CA), through
// real gRPC against the project's API server: gateway credentials (SDS `kubernetes://`) are
// never served on the plaintext port, are served over TLS to a token of the gateway's
// namespace (SotW and delta), and a stream without a token, or whose token's namespace is
// not the node's, is refused with a status naming the reason.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { R, type Secret } from '../../api/kube/index.js';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Pilot } from '../../pilot/pilot.js';
import { startMeshCA, type MeshCA } from '../../pilot/ca/index.js';
import { createPod, startMeshApi, GATEWAY_NS, GATEWAY_POD, type MeshApi } from './router-harness.js';
import { gateway } from './gateway-fixtures.js';
import { AdsClient } from './ads-client.js';
import { DeltaClient } from './delta-client.js';
import type { XdsDial } from './xds-stream.js';

interface Stream { error?: Error; close(): void }
import { makeTestCA } from '../proxy/test-ca.js';
import { waitFor } from '../proxy/fixtures.js';
import { AdsClient as ProxyAdsClient } from '../../proxy/xds/ads-client.js';
import { buildNode } from '../../proxy/xds/node.js';

const NODE_ID = `router~127.0.0.1~${GATEWAY_POD}.${GATEWAY_NS}~${GATEWAY_NS}.svc.cluster.local`;
const CRED = 'kubernetes://bookinfo-cred';
const b64 = (s: string) => Buffer.from(s).toString('base64');

let mesh: MeshApi;
let pilot: Pilot;
let meshCA: MeshCA;
let xdsPort: number;
let certPem: string;
const streams: Stream[] = [];

async function tokenFor(namespace: string, serviceAccount: string): Promise<string> {
  if (!(await mesh.client.find(R.serviceAccounts, serviceAccount, namespace))) await mesh.client.create(R.serviceAccounts, { metadata: { name: serviceAccount, namespace } });
  const res = await mesh.client.createSubresource<{ status: { token: string } }>(R.serviceAccounts, serviceAccount, namespace, 'token', {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: ['istio-ca'], expirationSeconds: 3600 },
  });
  return res.status.token;
}

/** TLS to pilot verified against the mesh root, as a sidecar dials istiod.trellis-system.svc. */
function tls(token?: string): XdsDial {
  const metadata = new grpc.Metadata();
  if (token) metadata.set('authorization', `Bearer ${token}`);
  return {
    credentials: grpc.credentials.createSsl(Buffer.from(meshCA.ca.rootBundle())),
    channelOptions: { 'grpc.ssl_target_name_override': `istiod.${GATEWAY_NS}.svc`, 'grpc.default_authority': `istiod.${GATEWAY_NS}.svc` },
    metadata,
  };
}
const tlsAddress = () => `127.0.0.1:${meshCA.port}`;
function track<S extends Stream>(s: S): S { streams.push(s); return s; }

async function refusal(s: Stream): Promise<grpc.ServiceError> {
  await waitFor('the stream to be refused', () => s.error !== undefined, 10_000);
  return s.error as grpc.ServiceError;
}

before(async () => {
  mesh = await startMeshApi();
  const ca = await makeTestCA('gateway-ca');
  const cert = await ca.issue([], ['bookinfo.example.com']);
  certPem = cert.certPem;
  await createPod(mesh.client, GATEWAY_POD, GATEWAY_NS, '127.0.0.1', { istio: 'ingressgateway' }, 8443, 'https');
  await mesh.client.create<Secret>(R.secrets, { metadata: { name: 'bookinfo-cred', namespace: GATEWAY_NS }, type: 'kubernetes.io/tls', data: { 'tls.crt': b64(cert.certPem), 'tls.key': b64(cert.keyPem) } });
  await mesh.client.create(R.gateways, gateway('bookinfo-gateway', [{ port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['bookinfo.example.com'], tls: { mode: 'SIMPLE', credentialName: 'bookinfo-cred' } }]));
  pilot = new Pilot(mesh.client, { host: '127.0.0.1', xdsPort: 0, debugPort: 0, syncTimeoutMs: 15_000, quietMs: 20, maxMs: 200, writeStatus: false });
  ({ xdsPort } = await pilot.start());
  meshCA = await startMeshCA(mesh.client, {
    namespace: GATEWAY_NS, host: '127.0.0.1', port: 0, publishRootCert: false,
    alsoServe: (server, reviewer) => pilot.xds.serveAuthenticated(server, reviewer),
  });
});

after(async () => {
  for (const s of streams) s.close();
  await meshCA?.stop();
  await pilot?.stop();
  await mesh?.close();
});

test('plaintext port: a router asking for its gateway credential gets none, and syncz says why', async () => {
  const c = track(new AdsClient(`127.0.0.1:${xdsPort}`, { id: NODE_ID }));
  c.request(TYPE_URL.cluster);
  const cds = await c.next(10_000);
  assert.equal(cds.typeUrl, TYPE_URL.cluster, 'the stream itself works');
  c.ack(cds);
  c.request(TYPE_URL.secret, { names: [CRED] });
  assert.ok(await c.quiet(1_500), 'no Secret is sent over plaintext');
  const conn = pilot.xds.syncz().find((s) => s.nodeId === NODE_ID && !s.identity);
  assert.match(conn?.secretsWithheld ?? '', /only over the TLS port 15012/);
});

test('TLS port with a token of the gateway namespace: the credential is served (SotW and delta), identity recorded', async () => {
  const token = await tokenFor(GATEWAY_NS, 'istio-ingressgateway');
  const c = track(new AdsClient(tlsAddress(), { id: NODE_ID }, tls(token)));
  c.request(TYPE_URL.secret, { names: [CRED] });
  const r = await c.next(10_000);
  assert.equal(r.typeUrl, TYPE_URL.secret);
  assert.deepEqual(r.resources.map((x) => x.name), [CRED]);
  const chain = (r.resources[0] as { tlsCertificate: { certificateChain: { inlineBytes: Buffer | string } } }).tlsCertificate.certificateChain.inlineBytes;
  assert.equal(Buffer.isBuffer(chain) ? chain.toString() : Buffer.from(chain, 'base64').toString(), certPem);
  const conn = pilot.xds.syncz().find((s) => s.nodeId === NODE_ID && s.identity);
  assert.equal(conn?.identity, `${GATEWAY_NS}/istio-ingressgateway`);
  assert.equal(conn?.secretsWithheld, undefined);

  const d = track(new DeltaClient(tlsAddress(), { id: NODE_ID }, tls(token)));
  d.request(TYPE_URL.secret, { subscribe: [CRED] });
  const dr = await d.next(10_000);
  assert.deepEqual(dr.resources.map((x) => x.name), [CRED]);
});

test('TLS port: a token of another namespace than the node\'s is refused with PERMISSION_DENIED', async () => {
  const token = await tokenFor('default', 'sleep');
  const c = track(new AdsClient(tlsAddress(), { id: NODE_ID }, tls(token)));
  c.request(TYPE_URL.secret, { names: [CRED] });
  const err = await refusal(c);
  assert.equal(err.code, grpc.status.PERMISSION_DENIED);
  assert.match(err.details, /claims namespace "trellis-system" but the caller is system:serviceaccount:default:sleep/);
  assert.ok(!err.details.includes(token), 'the token is not echoed');
});

test('TLS port: no token, or an invalid one, is refused with UNAUTHENTICATED', async () => {
  const none = track(new AdsClient(tlsAddress(), { id: NODE_ID }, tls()));
  none.request(TYPE_URL.secret, { names: [CRED] });
  const e1 = await refusal(none);
  assert.equal(e1.code, grpc.status.UNAUTHENTICATED);
  assert.match(e1.details, /no "authorization: Bearer <token>" metadata/);

  const forged = track(new DeltaClient(tlsAddress(), { id: NODE_ID }, tls('not-a-jwt')));
  forged.request(TYPE_URL.secret, { subscribe: [CRED] });
  const e2 = await refusal(forged);
  assert.equal(e2.code, grpc.status.UNAUTHENTICATED);
  assert.match(e2.details, /caller not authenticated/);
});

test('a proxy whose trust bundle changes on disk reconnects with it (root rotation reaches the xDS channel)', async () => {
  const token = await tokenFor(GATEWAY_NS, 'istio-ingressgateway-service-account');
  const stale = (await makeTestCA('old-root')).rootPem;
  let bundle = stale;
  const types: string[] = [];
  const logs: string[] = [];
  const client = new ProxyAdsClient({
    address: tlsAddress(),
    tls: { rootCertPem: stale, rootCerts: () => bundle, serverName: `istiod.${GATEWAY_NS}.svc`, token: () => token },
    node: buildNode({ podName: GATEWAY_POD, namespace: GATEWAY_NS, instanceIp: '127.0.0.1', serviceAccount: 'istio-ingressgateway-service-account', workloadName: 'istio-ingressgateway', labels: { istio: 'ingressgateway' }, domain: 'cluster.local' }),
    onResponse: (typeUrl) => { types.push(typeUrl); return undefined; },
    log: (m) => logs.push(m), initialBackoffMs: 100, maxBackoffMs: 300,
  });
  streams.push({ close: () => client.stop() });
  client.subscribe(TYPE_URL.cluster, undefined);
  client.start();
  // Pilot's chain does not verify against the stale bundle: no response arrives.
  await waitFor('a failed TLS attempt', () => client.stats.streamErrors > 0, 10_000);
  assert.equal(types.length, 0, 'no response over a channel pilot cannot be verified on');
  bundle = meshCA.ca.rootBundle();
  await waitFor('clusters over the rebuilt channel', () => types.includes(TYPE_URL.cluster), 10_000);
  assert.ok(logs.some((m) => /trust bundle changed/.test(m)), logs.join('\n'));
});
