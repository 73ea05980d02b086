// HTTPS through a real gateway: the project's API server, pilot reading Gateways and Secrets,
// a real proxy in router mode and an HTTP app on a loopback address. The certificate comes
// from a Secret over SDS on the proxy's ADS stream, which runs over TLS with the gateway's
// ServiceAccount token (pilot's CA port, as on 15012): HTTPS with SNI reaches the backend and
// presents the Secret's certificate, a MUTUAL server refuses a client without a certificate
// and accepts one signed by the Secret's CA, a rotated Secret is served without restarting
// the proxy, and httpsRedirect answers plaintext with 301.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import https from 'node:https';
import { X509Certificate } from 'node:crypto';
import { KubeClient, R, type KubeObject, type Pod, type Secret, type Service } from '../../api/kube/index.js';
import { startApiServer } from '../../cluster/apiserver/index.js';
import { MemoryStore } from '../../cluster/store/index.js';
import { Pilot } from '../../pilot/pilot.js';
import { startMeshCA } from '../../pilot/ca/index.js';
import { Sidecar } from '../../proxy/sidecar.js';
import { freePort, startApp, waitFor } from '../proxy/fixtures.js';
import { makeTestCA } from '../proxy/test-ca.js';
import { gateway, gatewayVs } from './gateway-fixtures.js';
import { slicesFor } from './fixtures.js';
import { networkingCrd } from './crds.js';

const cleanups: (() => Promise<void>)[] = [];
after(async () => { for (const c of cleanups.reverse()) { try { await c(); } catch { /* best effort */ } } });


interface Reply { status: number; body: string; location?: string; fingerprint?: string; protocol?: string | null }

function httpsGet(port: number, host: string, opts: { ca: string; cert?: string; key?: string }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/', servername: host, headers: { host }, agent: false, ca: opts.ca, cert: opts.cert, key: opts.key, timeout: 5_000 }, (res) => {
      const socket = res.socket as import('node:tls').TLSSocket;
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      const protocol = socket.getProtocol();
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, fingerprint, protocol }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function httpGet(port: number, host: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/reviews?x=1', headers: { host }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: '', location: res.headers.location }));
    });
    req.on('error', reject);
    req.end();
  });
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

async function scenario(deltaXds: boolean): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-gateway-https-'));
  cleanups.push(async () => fs.rmSync(dataDir, { recursive: true, force: true }));
  const api = await startApiServer({ dataDir, store: new MemoryStore(), listen: [{ host: '127.0.0.1', port: 0 }] });
  cleanups.push(() => api.close());
  const client = KubeClient.fromKubeconfig(api.kubeconfigPath);
  cleanups.push(() => client.close());
  for (const [plural, kind] of [['virtualservices', 'VirtualService'], ['destinationrules', 'DestinationRule'], ['gateways', 'Gateway']]) {
    await client.create(R.customResourceDefinitions, networkingCrd(plural, kind, ['v1'], { status: true }));
  }
  for (const ns of ['default', 'trellis-system']) if (!(await client.find(R.namespaces, ns))) await client.create(R.namespaces, { metadata: { name: ns } });

  // Certificates: a server CA for the gateway's certificate, a client CA for MUTUAL.
  const serverCa = await makeTestCA('server-ca');
  const clientCa = await makeTestCA('client-ca');
  const [cert1, cert2, mtlsCert, clientCert] = await Promise.all([
    serverCa.issue([], ['bookinfo.example.com']), serverCa.issue([], ['bookinfo.example.com']),
    serverCa.issue([], ['mtls.example.com']), clientCa.issue([], ['client.example.com']),
  ]);
  const strangerCa = await makeTestCA('stranger');
  const stranger = await strangerCa.issue([], ['client.example.com']);

  const app = await startApp('reviews-v1', '127.0.0.11');
  cleanups.push(async () => { app.server.close(); });
  const pod = await client.create<Pod>(R.pods, { metadata: { name: 'reviews-v1-abc', namespace: 'default', labels: { app: 'reviews' } }, spec: { containers: [{ name: 'app', image: 'x', ports: [{ name: 'http', containerPort: app.port }] }] } });
  await client.updateStatus<Pod>(R.pods, { ...pod, status: { phase: 'Running', podIP: '127.0.0.11', podIPs: [{ ip: '127.0.0.11' }] } });
  await client.create<Service>(R.services, { metadata: { name: 'reviews', namespace: 'default' }, spec: { selector: { app: 'reviews' }, ports: [{ name: 'http', port: 9080, targetPort: 'http', protocol: 'TCP' }] } });
  for (const sl of slicesFor({ metadata: { name: 'reviews', namespace: 'default' }, subsets: [{ addresses: [{ ip: '127.0.0.11', targetRef: { kind: 'Pod', name: 'reviews-v1-abc', namespace: 'default' } }], ports: [{ name: 'http', port: app.port, protocol: 'TCP' }] }] })) {
    await client.create(R.endpointSlices, sl);
  }

  // The gateway workload in trellis-system: 80 and 443 map to the ports the router binds.
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  const gwPod = await client.create<Pod>(R.pods, { metadata: { name: 'istio-ingressgateway-xyz', namespace: 'trellis-system', labels: { istio: 'ingressgateway' } }, spec: { containers: [{ name: 'istio-proxy', image: 'x' }] } });
  await client.updateStatus<Pod>(R.pods, { ...gwPod, status: { phase: 'Running', podIP: '127.0.0.1', podIPs: [{ ip: '127.0.0.1' }] } });
  await client.create<Service>(R.services, { metadata: { name: 'istio-ingressgateway', namespace: 'trellis-system' }, spec: { selector: { istio: 'ingressgateway' }, ports: [{ name: 'http2', port: 80, targetPort: httpPort, protocol: 'TCP' }, { name: 'https', port: 443, targetPort: httpsPort, protocol: 'TCP' }] } });
  const tlsSecret = (c: { certPem: string; keyPem: string }): Secret => ({ metadata: { name: 'bookinfo-cred', namespace: 'trellis-system' }, type: 'kubernetes.io/tls', data: { 'tls.crt': b64(c.certPem), 'tls.key': b64(c.keyPem) } });
  await client.create<Secret>(R.secrets, tlsSecret(cert1));
  await client.create<Secret>(R.secrets, { metadata: { name: 'mtls-cred', namespace: 'trellis-system' }, type: 'Opaque', data: { cert: b64(mtlsCert.certPem), key: b64(mtlsCert.keyPem), cacert: b64(clientCa.rootPem) } });
  // Same name in another namespace: never served to this gateway.
  await client.create<Secret>(R.secrets, { ...tlsSecret(cert2), metadata: { name: 'other-cred', namespace: 'default' } });

  await client.create(R.gateways, gateway('bookinfo-gateway', [
    { port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['bookinfo.example.com'], tls: { httpsRedirect: true } },
    { port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['bookinfo.example.com'], tls: { mode: 'SIMPLE', credentialName: 'bookinfo-cred', maxProtocolVersion: 'TLSV1_2' } },
    { port: { number: 443, name: 'https-mtls', protocol: 'HTTPS' }, hosts: ['mtls.example.com'], tls: { mode: 'MUTUAL', credentialName: 'mtls-cred' } },
    // A credential from another namespace: reported, not served; the others keep working.
    { port: { number: 443, name: 'https-other', protocol: 'HTTPS' }, hosts: ['other.example.com'], tls: { mode: 'SIMPLE', credentialName: 'other-cred' } },
  ]));
  await client.create(R.virtualServices, gatewayVs('bookinfo', ['bookinfo.example.com', 'mtls.example.com', 'other.example.com'], ['bookinfo-gateway'], [{ route: [{ destination: { host: 'reviews' } }] }]));

  const pilot = new Pilot(client, { host: '127.0.0.1', xdsPort: 0, debugPort: 0, syncTimeoutMs: 15_000, quietMs: 20, maxMs: 200 });
  cleanups.push(() => pilot.stop());
  const { debugPort } = await pilot.start();
  // Gateway credentials come only over TLS (the CA's port) to a token of the gateway's namespace.
  const meshCA = await startMeshCA(client, {
    namespace: 'trellis-system', host: '127.0.0.1', port: 0, publishRootCert: false,
    alsoServe: (server, reviewer) => pilot.xds.serveAuthenticated(server, reviewer),
  });
  cleanups.push(() => meshCA.stop());
  await client.create(R.serviceAccounts, { metadata: { name: 'istio-ingressgateway', namespace: 'trellis-system' } });
  const tokenRes = await client.createSubresource<{ status: { token: string } }>(R.serviceAccounts, 'istio-ingressgateway', 'trellis-system', 'token', {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: ['istio-ca'], expirationSeconds: 3600 },
  });
  const router = new Sidecar({
    pilotAddress: `127.0.0.1:${meshCA.port}`, nodeType: 'router', deltaXds,
    xdsTls: { rootCertPem: meshCA.ca.rootBundle(), serverName: 'istiod.trellis-system.svc', token: () => tokenRes.status.token }, log: () => {}, accessLog: () => {},
    identity: { podName: 'istio-ingressgateway-xyz', namespace: 'trellis-system', instanceIp: '127.0.0.1', serviceAccount: 'default', workloadName: 'istio-ingressgateway', labels: { istio: 'ingressgateway' }, domain: 'cluster.local' },
    ports: { admin: 0, prometheus: 0, readiness: 0 },
  });
  cleanups.push(() => router.stop());
  await router.start();

  // 1. HTTPS with SNI reaches the backend; the certificate is the Secret's.
  await waitFor('the HTTPS listener', async () => (await httpsGet(httpsPort, 'bookinfo.example.com', { ca: serverCa.rootPem }).catch(() => ({ status: 0 }))).status === 200, 20_000);
  const ok = await httpsGet(httpsPort, 'bookinfo.example.com', { ca: serverCa.rootPem });
  assert.equal(ok.status, 200);
  assert.match(ok.body, /^reviews-v1 GET \//);
  assert.equal(ok.fingerprint, fingerprint(cert1.certPem));
  assert.equal(ok.protocol, 'TLSv1.2', 'maxProtocolVersion TLSV1_2 holds the client (which offers 1.3) to 1.2');
  assert.ok(router.config.current.secrets.has('kubernetes://bookinfo-cred'), 'fetched over ADS');
  assert.ok(![...router.config.current.secrets.keys()].some((n) => n.includes('other-cred')), 'a Secret of another namespace is not served');

  // 2. httpsRedirect: plaintext gets a 301 to https.
  const redirect = await httpGet(httpPort, 'bookinfo.example.com');
  assert.equal(redirect.status, 301);
  assert.equal(redirect.location, 'https://bookinfo.example.com/reviews?x=1');

  // 3. MUTUAL: no client certificate (or one from another CA) is refused; the CA's is accepted.
  await assert.rejects(httpsGet(httpsPort, 'mtls.example.com', { ca: serverCa.rootPem }));
  await assert.rejects(httpsGet(httpsPort, 'mtls.example.com', { ca: serverCa.rootPem, cert: stranger.certPem, key: stranger.keyPem }));
  const mutual = await httpsGet(httpsPort, 'mtls.example.com', { ca: serverCa.rootPem, cert: clientCert.certPem, key: clientCert.keyPem });
  assert.equal(mutual.status, 200);
  assert.equal(mutual.fingerprint, fingerprint(mtlsCert.certPem));
  assert.equal(mutual.protocol, 'TLSv1.3', 'no maximum: TLS 1.3');

  // 4. The server whose credential is in another namespace is reported and not served.
  await assert.rejects(httpsGet(httpsPort, 'other.example.com', { ca: serverCa.rootPem }));
  const { warnings } = await (await fetch(`http://127.0.0.1:${debugPort}/debug/warnings`)).json() as { warnings: string[] };
  assert.ok(warnings.some((w) => w.includes('spec.servers[3].tls.credentialName: Secret "other-cred" not found in namespace "trellis-system"')), warnings.join('\n'));
  // ... and in the Gateway's status, as Istio's analyzer writes it.
  type WithStatus = KubeObject & { status?: { validationMessages?: { type: { code: string }; description: string }[] } };
  await waitFor('Gateway status.validationMessages', async () => ((await client.get<WithStatus>(R.gateways, 'bookinfo-gateway', 'default')).status?.validationMessages ?? []).length > 0, 20_000);
  const { status } = await client.get<WithStatus>(R.gateways, 'bookinfo-gateway', 'default');
  assert.deepEqual(status?.validationMessages?.map((m) => [m.type.code, m.description]), [
    ['IST0101', 'Referenced credentialName not found: "other-cred" (in namespace trellis-system, where the gateway workload runs) (spec.servers[3].tls.credentialName)'],
  ]);

  // 5. Rotation: the updated Secret is served to new connections, the proxy keeps running.
  const current = await client.get<Secret>(R.secrets, 'bookinfo-cred', 'trellis-system');
  await client.update<Secret>(R.secrets, { ...current, data: tlsSecret(cert2).data });
  await waitFor('the rotated certificate', async () => (await httpsGet(httpsPort, 'bookinfo.example.com', { ca: serverCa.rootPem }).catch(() => ({ fingerprint: '' }))).fingerprint === fingerprint(cert2.certPem), 20_000);
  const after2 = await httpsGet(httpsPort, 'bookinfo.example.com', { ca: serverCa.rootPem });
  assert.equal(after2.status, 200);
  assert.equal(router.stats.get('listener_manager.listener_create_success'), 2, 'the listeners were bound once each (no restart, no rebind)');
}

test('HTTPS gateway: SNI to the backend with the Secret\'s certificate, MUTUAL client certificates, rotation without restart, httpsRedirect', () => scenario(false));

test('the same over delta xDS: secrets subscribed by name on DeltaAggregatedResources', () => scenario(true));
