// Workload certificates in use: two sidecar identities talk mTLS over node:tls with SPIFFE
// SAN verification, and a rotation (4 s certificates) leaves established connections open.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { MemorySecretStore } from '../../pilot/ca/index.js';
import { ISTIO_ALPN, WorkloadCertManager, clientTlsOptions, followRotation, peerSpiffeId, serverTlsOptions, type WorkloadCert } from '../../proxy/security/index.js';
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

async function manager(ns: string, sa: string, opts: { ttlSeconds?: number; via?: RunningCA; roots?: string } = {}): Promise<WorkloadCertManager> {
  const via = opts.via ?? ca;
  const mgr = new WorkloadCertManager({
    caAddress: via.address, caServerName: `istiod.${CA_NAMESPACE}.svc`, caRootCertPem: opts.roots ?? via.ca.rootBundle(),
    token: await cluster.tokenFor(ns, sa), namespace: ns, serviceAccount: sa, ttlSeconds: opts.ttlSeconds,
  });
  cleanups.push(() => mgr.stop());
  await mgr.start();
  return mgr;
}

/** An mTLS echo server that records the client identity of each connection. */
async function echoServer(mgr: WorkloadCertManager): Promise<{ port: number; peers: (string | undefined)[]; server: tls.Server }> {
  const peers: (string | undefined)[] = [];
  const server = tls.createServer(serverTlsOptions(mgr), (s) => {
    peers.push(peerSpiffeId(s));
    s.on('error', () => undefined);
    s.pipe(s);
  });
  server.on('tlsClientError', () => undefined);
  const stop = followRotation(server, mgr);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => { stop(); server.close(); });
  return { port: (server.address() as net.AddressInfo).port, peers, server };
}

function connect(port: number, opts: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ...opts }, () => resolve(s));
    s.once('error', reject);
    cleanups.push(() => { s.destroy(); });
  });
}

/** Writes and waits for the echo; rejects when the peer closes or errors instead. */
function roundTrip(s: tls.TLSSocket, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const done = (): void => { s.off('data', onData); s.off('error', onError); s.off('close', onClose); };
    const onData = (c: Buffer): void => { done(); resolve(c.toString()); };
    const onError = (e: Error): void => { done(); reject(e); };
    const onClose = (): void => { done(); reject(new Error('connection closed by peer')); };
    s.on('data', onData); s.on('error', onError); s.on('close', onClose);
    s.write(msg);
  });
}

test('two identities talk mTLS; the client checks the server SAN, the server sees the client SAN', async () => {
  const a = await manager('alpha', 'a');
  const b = await manager('beta', 'b');
  const srv = await echoServer(a);
  const s = await connect(srv.port, clientTlsOptions(b, ['spiffe://cluster.local/ns/alpha/sa/a']));
  assert.equal(s.authorized, true);
  assert.equal(s.alpnProtocol, ISTIO_ALPN[0]);
  assert.equal(peerSpiffeId(s), a.spiffeId);
  assert.equal(await roundTrip(s, 'ping'), 'ping');
  assert.deepEqual(srv.peers, ['spiffe://cluster.local/ns/beta/sa/b']);
  s.end();

  // Wrong expected identity: the handshake fails on the client and names both identities.
  await assert.rejects(connect(srv.port, clientTlsOptions(b, ['spiffe://cluster.local/ns/alpha/sa/other'])), (e: Error) => {
    assert.match(e.message, /peer identity spiffe:\/\/cluster\.local\/ns\/alpha\/sa\/a is not one of the expected spiffe:\/\/cluster\.local\/ns\/alpha\/sa\/other/);
    return true;
  });
  // A client without a mesh certificate is refused by the server.
  await assert.rejects(async () => {
    const c = await connect(srv.port, { ca: a.current().rootsPem, checkServerIdentity: () => undefined, ALPNProtocols: ISTIO_ALPN });
    await roundTrip(c, 'x');
  });
  // A certificate from a foreign CA is refused too (chain does not verify to the mesh roots).
  const foreign = await makeCACert('foreign');
  await assert.rejects(async () => {
    const c = await connect(srv.port, { cert: foreign.certPem, key: foreign.keyPem, ca: a.current().rootsPem, checkServerIdentity: () => undefined });
    await roundTrip(c, 'x');
  });
});

test('rotation at half-life issues a new certificate while an existing mTLS connection stays open', async () => {
  const server = await manager('alpha', 'rot-server', { ttlSeconds: 4 });
  const client = await manager('beta', 'rot-client', { ttlSeconds: 4 });
  const srv = await echoServer(server);
  const first = server.current();
  const old = await connect(srv.port, clientTlsOptions(client, [server.spiffeId]));
  assert.equal(old.getPeerX509Certificate()?.serialNumber, first.serialNumber);

  const rotated = await new Promise<WorkloadCert>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no rotation within 6 s')), 6000);
    server.once('rotated', (c) => { clearTimeout(t); resolve(c); });
  });
  assert.notEqual(rotated.serialNumber, first.serialNumber);
  assert.equal(server.current().serialNumber, rotated.serialNumber);
  assert.equal(new X509Certificate(rotated.certChainPem).subjectAltName, `URI:${server.spiffeId}`);

  // Wait until the first certificate has expired: the old connection still carries data.
  const wait = first.notAfter.getTime() - Date.now() + 300;
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  assert.equal(await roundTrip(old, 'still here'), 'still here');
  assert.equal(old.destroyed, false);

  // A new connection is served with the current certificate (and the client's own new one).
  const before = server.current().serialNumber;
  const fresh = await connect(srv.port, clientTlsOptions(client, [server.spiffeId]));
  const presented = fresh.getPeerX509Certificate();
  assert.ok(presented, 'the server presented a certificate');
  assert.equal(await roundTrip(fresh, 'new'), 'new');
  // Rotations keep coming every ~2 s: the handshake used the current one at its start or end.
  assert.ok([before, server.current().serialNumber].includes(presented.serialNumber));
  assert.notEqual(presented.serialNumber, first.serialNumber);
});

test('with two roots in the bundle, workloads under either root trust each other (root rotation)', async () => {
  const next = await makeCACert('next-root');
  const store = new MemorySecretStore();
  const bundle = ca.ca.rootBundle() + next.certPem;
  await store.create('cacerts', { 'ca-cert.pem': next.certPem, 'ca-key.pem': next.keyPem, 'cert-chain.pem': '', 'root-cert.pem': bundle });
  const nextCA = await startCA(cluster, { store });
  cleanups.push(() => nextCA.stop());
  const oldSide = await manager('alpha', 'old', { roots: bundle });
  const newSide = await manager('beta', 'new', { via: nextCA, roots: bundle });
  assert.equal(oldSide.current().rootsPem.length, 2);
  assert.equal(newSide.current().rootsPem.length, 2);
  const srv = await echoServer(oldSide);
  const s = await connect(srv.port, clientTlsOptions(newSide, [oldSide.spiffeId]));
  assert.equal(await roundTrip(s, 'across roots'), 'across roots');
  assert.deepEqual(srv.peers, [newSide.spiffeId]);
});
