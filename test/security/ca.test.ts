// The CA through its real protocol: IstioCertificateService over TLS on loopback, callers
// authenticated by TokenReview against the project's apiserver, the root kept in a Secret.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { R, type ConfigMap, type Secret } from '../../api/kube/index.js';
import { spiffeId, spiffeIdOf, uriSans } from '../../api/security/index.js';
import { CertificateAuthority, MemorySecretStore, RootCertPublisher, ROOT_CERT_CONFIGMAP, SELF_SIGNED_SECRET, startMeshCA } from '../../pilot/ca/index.js';
import { CAClient, WorkloadCertManager, certManagerFromEnv, createCsr, generateWorkloadKey } from '../../proxy/security/index.js';
import { secretTtlSeconds } from '../../proxy/security/from-env.js';
import type { WorkloadCert } from '../../proxy/security/cert-manager.js';
import { CA_NAMESPACE, makeCACert, startCA, startCluster, type RunningCA, type TestCluster } from './helpers.js';

let cluster: TestCluster;
let ca: RunningCA;
const cleanups: (() => Promise<void> | void)[] = [];

before(async () => {
  cluster = await startCluster();
  ca = await startCA(cluster);
});
after(async () => {
  for (const c of cleanups.reverse()) { try { await c(); } catch { /* best effort */ } }
  await ca?.stop();
  await cluster?.stop();
});

function caClient(token: string | undefined, address = ca.address, root = ca.ca.rootBundle()): CAClient {
  const c = new CAClient({ address, rootCertPem: root, serverName: `istiod.${CA_NAMESPACE}.svc`, token: () => token ?? '' });
  cleanups.push(() => c.close());
  return c;
}

function verifiesTo(chain: string[], root: string): boolean {
  let child = new X509Certificate(chain[0]);
  for (const pem of [...chain.slice(1, -1), root]) {
    const parent = new X509Certificate(pem);
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) return false;
    child = parent;
  }
  return true;
}

test('a workload gets a 24 h certificate for exactly its SPIFFE identity, chaining to the root', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-sec-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'token'), await cluster.tokenFor('shop', 'cart'));
  fs.writeFileSync(path.join(dir, 'root-cert.pem'), ca.ca.rootBundle());
  const mgr = new WorkloadCertManager({
    caAddress: ca.address, caServerName: `istiod.${CA_NAMESPACE}.svc`, caRootCertFile: path.join(dir, 'root-cert.pem'),
    tokenFile: path.join(dir, 'token'), namespace: 'shop', serviceAccount: 'cart',
  });
  cleanups.push(() => mgr.stop());
  const cert = await mgr.start();
  const leaf = new X509Certificate(cert.certChainPem);
  assert.deepEqual(uriSans(leaf), ['spiffe://cluster.local/ns/shop/sa/cart']);
  assert.equal(spiffeIdOf(leaf), spiffeId('cluster.local', 'shop', 'cart'));
  const lifetimeAfterNow = cert.notAfter.getTime() - Date.now();
  assert.ok(Math.abs(lifetimeAfterNow - 24 * 3600_000) < 60_000, `24 h validity, got ${lifetimeAfterNow} ms left`);
  const backdate = Date.now() - cert.notBefore.getTime();
  assert.ok(backdate > 4 * 60_000 && backdate < 6 * 60_000, `NotBefore backdated ~5 min, got ${backdate} ms`);
  assert.deepEqual([...(leaf.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  assert.equal(leaf.ca, false);
  assert.ok(verifiesTo([cert.certChainPem, ca.ca.rootPem], ca.ca.rootPem));
  // The same check a user would make: openssl verify against the published root.
  fs.writeFileSync(path.join(dir, 'leaf.pem'), cert.certChainPem);
  const out = execFileSync('openssl', ['verify', '-CAfile', path.join(dir, 'root-cert.pem'), path.join(dir, 'leaf.pem')], { encoding: 'utf8' });
  assert.match(out, /leaf\.pem: OK/);
  const text = execFileSync('openssl', ['x509', '-in', path.join(dir, 'leaf.pem'), '-noout', '-text'], { encoding: 'utf8' });
  assert.match(text, /Digital Signature, Key Encipherment/);
});

test('a CSR for another identity is refused with PERMISSION_DENIED', async () => {
  const c = caClient(await cluster.tokenFor('shop', 'cart'));
  const csr = createCsr(await generateWorkloadKey(), ['spiffe://cluster.local/ns/bank/sa/vault']);
  await assert.rejects(c.createCertificate(csr), (e: grpc.ServiceError) => {
    assert.equal(e.code, grpc.status.PERMISSION_DENIED);
    assert.match(e.details, /system:serviceaccount:shop:cart/);
    assert.match(e.details, /spiffe:\/\/cluster\.local\/ns\/bank\/sa\/vault/);
    assert.match(e.details, /may only obtain "spiffe:\/\/cluster\.local\/ns\/shop\/sa\/cart"/);
    return true;
  });
});

test('unauthenticated and wrong-audience calls are refused with UNAUTHENTICATED', async () => {
  const csr = createCsr(await generateWorkloadKey(), ['spiffe://cluster.local/ns/shop/sa/cart']);
  await assert.rejects(caClient(undefined).createCertificate(csr), (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED && /authorization/.test(e.details));
  await assert.rejects(caClient('not-a-token').createCertificate(csr), (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED);
  // A token for the API server's audience is not a token for the CA.
  const apiToken = await cluster.tokenFor('shop', 'cart', ['https://kubernetes.default.svc.cluster.local']);
  await assert.rejects(caClient(apiToken).createCertificate(csr), (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED);
  const m = await ca.server.metrics.registry.getSingleMetricAsString('citadel_server_authentication_failure_count');
  assert.match(m, /citadel_server_authentication_failure_count \d+/);
});

test('the root is kept in Secret istio-ca-secret and survives a CA restart', async () => {
  const secret = await cluster.client.get<Secret>(R.secrets, SELF_SIGNED_SECRET, CA_NAMESPACE);
  assert.equal(secret.type, 'istio.io/ca-root');
  assert.equal(Buffer.from(secret.data?.['ca-cert.pem'] ?? '', 'base64').toString(), ca.ca.rootPem);
  const before = new X509Certificate(ca.ca.rootPem).fingerprint256;
  await ca.stop();
  ca = await startCA(cluster);
  assert.equal(new X509Certificate(ca.ca.rootPem).fingerprint256, before);
  // And the restarted CA still issues certificates under that root.
  const keyPem = await generateWorkloadKey();
  const chain = await caClient(await cluster.tokenFor('shop', 'cart')).createCertificate(createCsr(keyPem, []));
  assert.equal(new X509Certificate(chain[chain.length - 1]).fingerprint256, before);
  assert.equal(spiffeIdOf(chain[0]), 'spiffe://cluster.local/ns/shop/sa/cart');
});

test('root expiry is a metric, and a root close to expiry is warned about', async () => {
  const gauge = await ca.server.metrics.registry.getSingleMetricAsString('citadel_server_root_cert_expiry_timestamp');
  const ts = Number(/citadel_server_root_cert_expiry_timestamp (\d+)/.exec(gauge)?.[1]);
  assert.equal(ts, Math.floor(ca.ca.rootExpiry().getTime() / 1000));
  assert.ok(ts * 1000 > Date.now() + 9 * 365 * 86_400_000);
  const warnings: string[] = [];
  const shortLived = await startCA(cluster, { store: new MemorySecretStore(), rootValidityDays: 10, warnings });
  cleanups.push(() => shortLived.stop());
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /expires at .* \(in (9|10)\.\d days\)/);
  assert.equal(warnings.filter((w) => /BEGIN|PRIVATE/.test(w)).length, 0);
});

test('a user-supplied cacerts intermediate signs, and the trust bundle holds several roots', async () => {
  const root1 = await makeCACert('root-1');
  const root2 = await makeCACert('root-2');
  const intermediate = await makeCACert('intermediate', root1);
  const store = new MemorySecretStore();
  await store.create('cacerts', {
    'ca-cert.pem': intermediate.certPem, 'ca-key.pem': intermediate.keyPem,
    'cert-chain.pem': intermediate.certPem + root1.certPem, 'root-cert.pem': root2.certPem + root1.certPem,
  });
  const plugged = await CertificateAuthority.load({ store });
  assert.equal(plugged.source, 'cacerts');
  assert.equal(plugged.rootPem, root1.certPem);
  assert.equal(plugged.trustBundlePem.length, 2);
  const chain = plugged.signWorkloadCsr(createCsr(await generateWorkloadKey(), []), 'spiffe://cluster.local/ns/a/sa/b');
  assert.equal(chain.length, 3);
  assert.equal(chain[1], intermediate.certPem);
  assert.ok(verifiesTo(chain, root1.certPem));
  // A mismatched key is named precisely.
  const bad = new MemorySecretStore();
  await bad.create('cacerts', { 'ca-cert.pem': intermediate.certPem, 'ca-key.pem': root2.keyPem, 'root-cert.pem': root1.certPem });
  await assert.rejects(CertificateAuthority.load({ store: bad }), /secret cacerts: data\[ca-key\.pem\] does not match/);
});

test('ConfigMap istio-ca-root-cert is published to every namespace and repaired', async () => {
  const publisher = new RootCertPublisher(cluster.client, ca.ca.rootBundle());
  cleanups.push(() => publisher.stop());
  await publisher.start();
  await cluster.client.create(R.namespaces, { metadata: { name: 'late-ns' } });
  const read = async (ns: string): Promise<string | undefined> => (await cluster.client.find<ConfigMap>(R.configMaps, ROOT_CERT_CONFIGMAP, ns))?.data?.['root-cert.pem'];
  const eventually = async (ns: string, want: string | undefined): Promise<void> => {
    for (let i = 0; i < 100; i++) { if ((await read(ns)) === want) return; await new Promise((r) => setTimeout(r, 50)); }
    assert.equal(await read(ns), want, `configmap ${ns}/${ROOT_CERT_CONFIGMAP}`);
  };
  for (const ns of ['default', CA_NAMESPACE, 'shop', 'late-ns']) await eventually(ns, ca.ca.rootBundle());
  await cluster.client.delete(R.configMaps, ROOT_CERT_CONFIGMAP, 'late-ns');
  await eventually('late-ns', ca.ca.rootBundle());
  const next = ca.ca.rootBundle() + (await makeCACert('next-root')).certPem;
  publisher.setRootBundle(next);
  await eventually('shop', next);
  publisher.stop();
});

test('startMeshCA + certManagerFromEnv: a sidecar set up as the injector would set it up gets its certificate', async () => {
  await cluster.tokenFor('trellis-system', 'istiod'); // the namespace and pilot's ServiceAccount
  const mesh = await startMeshCA(cluster.client, { namespace: 'trellis-system', host: '127.0.0.1', port: 0 });
  cleanups.push(() => mesh.stop());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-sec-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  // What the kubelet would mount: the projected istio-ca token and the published ConfigMap.
  fs.writeFileSync(path.join(dir, 'istio-token'), await cluster.tokenFor('shop', 'web'));
  let published: string | undefined;
  for (let i = 0; i < 100 && published !== mesh.ca.rootBundle(); i++) {
    published = (await cluster.client.find<ConfigMap>(R.configMaps, ROOT_CERT_CONFIGMAP, 'shop'))?.data?.['root-cert.pem'];
    if (published !== mesh.ca.rootBundle()) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(published, mesh.ca.rootBundle());
  fs.writeFileSync(path.join(dir, 'root-cert.pem'), published);
  const mgr = certManagerFromEnv({
    CA_ADDR: `127.0.0.1:${mesh.port}`, CA_SERVER_NAME: 'istiod.trellis-system.svc', POD_NAMESPACE: 'shop', SERVICE_ACCOUNT: 'web',
    ISTIO_TOKEN_FILE: path.join(dir, 'istio-token'), CA_ROOT_CERT_FILE: path.join(dir, 'root-cert.pem'),
    // Istio's agent setting (a pod sets it through proxy.istio.io/config proxyMetadata).
    SECRET_TTL: '2m',
  });
  assert.ok(mgr);
  cleanups.push(() => mgr.stop());
  const cert = await mgr.start();
  assert.equal(spiffeIdOf(cert.certChainPem), 'spiffe://cluster.local/ns/shop/sa/web');
  const left = cert.notAfter.getTime() - Date.now();
  assert.ok(left > 90_000 && left <= 120_000, `SECRET_TTL=2m gives a certificate ending in 2 minutes (${left} ms left)`);
  assert.ok(verifiesTo([cert.certChainPem, mesh.ca.rootPem], mesh.ca.rootPem));
  assert.equal(certManagerFromEnv({}), undefined);
});

test('SECRET_TTL takes Go durations; a bad value is refused naming the variable', () => {
  assert.equal(secretTtlSeconds({ SECRET_TTL: '24h' }), 86_400);
  assert.equal(secretTtlSeconds({ SECRET_TTL: '1h30m' }), 5_400);
  assert.equal(secretTtlSeconds({ SECRET_TTL: '12s' }), 12);
  assert.equal(secretTtlSeconds({ SECRET_TTL_SECONDS: '30' }), 30);
  assert.equal(secretTtlSeconds({}), undefined);
  assert.throws(() => secretTtlSeconds({ SECRET_TTL: '10' }), /env SECRET_TTL: "10" is not a positive duration/);
  assert.throws(() => secretTtlSeconds({ SECRET_TTL: '5x' }), /SECRET_TTL/);
  assert.throws(() => secretTtlSeconds({ SECRET_TTL_SECONDS: 'soon' }), /SECRET_TTL_SECONDS: "soon"/);
});

test('a new root published in the mounted bundle reaches a proxy at once: it renews and trusts both roots, without waiting for half-life', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-sec-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'token'), await cluster.tokenFor('shop', 'roots'));
  const rootFile = path.join(dir, 'root-cert.pem');
  fs.writeFileSync(rootFile, ca.ca.rootBundle());
  const mgr = new WorkloadCertManager({
    caAddress: ca.address, caServerName: `istiod.${CA_NAMESPACE}.svc`, caRootCertFile: rootFile,
    tokenFile: path.join(dir, 'token'), namespace: 'shop', serviceAccount: 'roots', rootWatchMs: 100,
  });
  cleanups.push(() => mgr.stop());
  const first = await mgr.start();
  const next = await makeCACert('next root');
  const rotated = new Promise<WorkloadCert>((resolve) => mgr.once('rotated', resolve));
  // What the kubelet does when the ConfigMap changes: a new file swapped in.
  fs.writeFileSync(`${rootFile}.new`, `${ca.ca.rootBundle()}${next.certPem}`);
  fs.renameSync(`${rootFile}.new`, rootFile);
  const cert = await Promise.race([rotated, new Promise<never>((_r, reject) => setTimeout(() => reject(new Error('no renewal within 10 s of the root change')), 10_000))]);
  assert.notEqual(cert.serialNumber, first.serialNumber, 'renewed');
  const fingerprints = cert.rootsPem.map((p) => new X509Certificate(p).fingerprint256);
  assert.ok(fingerprints.includes(new X509Certificate(next.certPem).fingerprint256), 'the new root is trusted');
  assert.ok(fingerprints.includes(new X509Certificate(ca.ca.rootPem).fingerprint256), 'and the old one still');
  // Unchanged file: no further renewal.
  let again = false;
  mgr.once('rotated', () => { again = true; });
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(again, false, 'an unchanged bundle does not renew');
});
