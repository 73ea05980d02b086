// Two proxies in sidecar shape talking mTLS: the client proxy's outbound clusters carry
// Istio's transportSocketMatches (tlsMode-istio / tlsMode-disabled) and EDS endpoints with
// `envoy.transport_socket_match` metadata; the server proxy's inbound has PERMISSIVE (tls +
// raw_buffer chains) and STRICT (tls chain only) ports in front of a loopback app.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import tls from 'node:tls';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Sidecar } from '../../proxy/sidecar.js';
import { TestAdsServer } from './ads-server.js';
import { closeServer, freePort, startApp, staticCluster, waitFor } from './fixtures.js';
import { makeTestCA, TestCertSource, type TestCA } from './test-ca.js';
import { autoMtlsCluster, CLIENT_ID, DOWNSTREAM_MTLS, endpoints, SERVER_ID } from './mtls-resources.js';

const ROUTER = [{ name: 'envoy.filters.http.router', typedConfig: { '@type': TYPE_URL.router } }];

function inboundHcm(name: string, xfcc: string): object {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typedConfig: {
      '@type': TYPE_URL.httpConnectionManager, statPrefix: name, forwardClientCertDetails: xfcc,
      setCurrentClientCertDetails: { subject: { value: true }, dns: true, uri: true },
      routeConfig: { name, virtualHosts: [{ name, domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'inbound|app' } }] }] },
      httpFilters: ROUTER,
    },
  };
}

function inboundListener(name: string, port: number, strict: boolean): object {
  return {
    name, address: { socketAddress: { address: '127.0.0.1', portValue: port } }, trafficDirection: 'INBOUND',
    listenerFilters: [{ name: 'envoy.filters.listener.original_dst' }, { name: 'envoy.filters.listener.tls_inspector' }],
    filterChains: [
      { name: `${name}-tls`, filterChainMatch: { destinationPort: { value: port }, transportProtocol: 'tls' }, transportSocket: DOWNSTREAM_MTLS, filters: [inboundHcm(`${name}-tls`, 'APPEND_FORWARD')] },
      ...(strict ? [] : [{ name: `${name}-plain`, filterChainMatch: { destinationPort: { value: port }, transportProtocol: 'raw_buffer' }, filters: [inboundHcm(`${name}-plain`, 'SANITIZE')] }]),
      // A port-less chain: STRICT plaintext must not fall back to it.
      { name: 'passthrough', filters: [inboundHcm('passthrough', 'SANITIZE')] },
    ],
  };
}

interface Reply { status: number; body: string; headers: http.IncomingHttpHeaders }

/** A fresh mTLS handshake with a request over it: 'ok', or what failed. */
function handshake(port: number, cert: { certPem: string; keyPem: string }, rootPem: string): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, cert: cert.certPem, key: cert.keyPem, ca: rootPem, ALPNProtocols: ['istio'], checkServerIdentity: () => undefined }, () => {
      s.write('GET / HTTP/1.1\r\nhost: strict\r\nconnection: close\r\n\r\n');
    });
    let got = '';
    s.on('data', (c: Buffer) => { got += c.toString(); });
    s.on('end', () => resolve(got.startsWith('HTTP/1.1 200') ? 'ok' : `answered ${got.slice(0, 40)}`));
    s.on('error', (e) => resolve(e.message));
    s.setTimeout(5000, () => { s.destroy(); resolve('timeout'); });
  });
}
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

function get(port: number, host: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', headers: { host }, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('two sidecars talking mTLS (automatic mTLS, PERMISSIVE and STRICT)', () => {
  const serverAds = new TestAdsServer();
  const clientAds = new TestAdsServer();
  let ca: TestCA;
  let serverCerts: TestCertSource;
  let clientCerts: TestCertSource;
  let server: Sidecar;
  let client: Sidecar;
  let app: Awaited<ReturnType<typeof startApp>>;
  let outPort = 0;
  let permPort = 0;
  let strictPort = 0;
  const identity = (name: string): ConstructorParameters<typeof Sidecar>[0]['identity'] => ({
    podName: `${name}-1`, namespace: 'test', instanceIp: '127.0.0.1', serviceAccount: name, workloadName: name, labels: { app: name }, domain: 'cluster.local',
  });

  before(async () => {
    ca = await makeTestCA();
    serverCerts = new TestCertSource(SERVER_ID, ca);
    clientCerts = new TestCertSource(CLIENT_ID, ca);
    await Promise.all([serverCerts.rotate(), clientCerts.rotate()]);
    app = await startApp('app');
    [permPort, strictPort] = [await freePort(), await freePort()];
    outPort = await freePort();
    const [sPort, cPort] = [await serverAds.listen(), await clientAds.listen()];
    serverAds.setAll('1', {
      [TYPE_URL.cluster]: [staticCluster('inbound|app', '127.0.0.1', app.port)],
      [TYPE_URL.listener]: [inboundListener('perm', permPort, false), inboundListener('strict', strictPort, true)],
    });
    const names = ['perm', 'strict', 'perm-plain', 'strict-plain', 'wrongsan'];
    const clusters = names.map((n) => autoMtlsCluster(n, n === 'wrongsan' ? ['spiffe://cluster.local/ns/test/sa/other'] : [SERVER_ID]));
    clientAds.setAll('1', {
      [TYPE_URL.cluster]: clusters,
      [TYPE_URL.clusterLoadAssignment]: [
        endpoints('perm', permPort, true), endpoints('strict', strictPort, true), endpoints('perm-plain', permPort, false),
        endpoints('strict-plain', strictPort, false), endpoints('wrongsan', strictPort, true),
      ],
      [TYPE_URL.listener]: [{
        name: 'outbound', address: { socketAddress: { address: '127.0.0.1', portValue: outPort } }, trafficDirection: 'OUTBOUND',
        filterChains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typedConfig: {
          '@type': TYPE_URL.httpConnectionManager, statPrefix: 'outbound',
          routeConfig: { name: 'out', virtualHosts: names.map((n) => ({ name: n, domains: [n], routes: [{ match: { prefix: '/' }, route: { cluster: n } }] })) },
          httpFilters: ROUTER,
        } }] }],
      }],
    });
    const local = (s: { localPort?: number }): { address: string; port: number } => ({ address: '127.0.0.1', port: s.localPort ?? 0 });
    server = new Sidecar({ pilotAddress: `127.0.0.1:${sPort}`, identity: identity('server'), ports: { admin: 0, prometheus: 0, readiness: 0 }, accessLog: () => undefined, log: () => undefined, tlsSecrets: serverCerts, originalDst: local });
    client = new Sidecar({ pilotAddress: `127.0.0.1:${cPort}`, identity: identity('client'), ports: { admin: 0, prometheus: 0, readiness: 0 }, accessLog: () => undefined, log: () => undefined, tlsSecrets: clientCerts, originalDst: local });
    await Promise.all([server.start(), client.start()]);
    await waitFor('server LDS ACK', () => serverAds.acked(TYPE_URL.listener, '1'));
    await waitFor('client LDS ACK', () => clientAds.acked(TYPE_URL.listener, '1'));
    await Promise.all([server.settled(), client.settled()]);
  });

  after(async () => {
    agent.destroy();
    await client?.stop();
    await server?.stop();
    await serverAds.close();
    await clientAds.close();
    if (app) await closeServer(app.server);
  });

  it('uses mTLS to a sidecar endpoint (tlsMode istio) and the app sees XFCC naming both identities', async () => {
    for (const host of ['perm', 'strict']) {
      const r = await get(outPort, host);
      assert.equal(r.status, 200, `${host}: ${r.body}`);
      const xfcc = String(app.seen.at(-1)?.['x-forwarded-client-cert'] ?? '');
      assert.match(xfcc, new RegExp(`^By=${SERVER_ID};Hash=[0-9a-f]{64};Subject="";URI=${CLIENT_ID}$`));
    }
    const text = await server.metrics.registry.metrics();
    const mtls = text.split('\n').find((l) => l.startsWith('istio_requests_total{') && l.includes('connection_security_policy="mutual_tls"'));
    assert.ok(mtls, 'the server reports mutual_tls requests');
    assert.match(mtls, new RegExp(`source_principal="${CLIENT_ID}"`));
    assert.match(mtls, new RegExp(`destination_principal="${SERVER_ID}"`));
    const out = (await client.metrics.registry.metrics()).split('\n').find((l) => l.startsWith('istio_requests_total{') && l.includes('reporter="source"'));
    assert.match(out ?? '', new RegExp(`destination_principal="${SERVER_ID}"`), 'outbound destination_principal is the verified upstream URI');
    assert.match(out ?? '', new RegExp(`source_principal="${CLIENT_ID}"`), 'outbound source_principal is the URI of the certificate the client proxy presents');
    assert.match(out ?? '', /connection_security_policy="unknown"/, 'Istio: the source reporter does not know the server\'s policy');
  });

  it('PERMISSIVE accepts plaintext (no XFCC); STRICT refuses it', async () => {
    const n = app.seen.length;
    const plain = await get(outPort, 'perm-plain');
    assert.equal(plain.status, 200);
    assert.equal(app.seen.length, n + 1);
    assert.equal(app.seen.at(-1)?.['x-forwarded-client-cert'], undefined);
    const refused = await get(outPort, 'strict-plain');
    assert.equal(refused.status, 503);
    assert.match(String(refused.headers['x-trellis-reason']), /^U[CF]/);
  });

  it('a server whose SAN is not the expected identity is refused with UF and an upstream_tls_error reason', async () => {
    const r = await get(outPort, 'wrongsan');
    assert.equal(r.status, 503);
    assert.match(String(r.headers['x-trellis-reason']), /^UF .*upstream_tls_error: SAN mismatch: server presented spiffe:\/\/cluster\.local\/ns\/test\/sa\/server/);
  });

  it('rotating both certificates under steady load loses no request', async () => {
    let stop = false;
    const statuses: number[] = [];
    const worker = async (): Promise<void> => {
      while (!stop) statuses.push((await get(outPort, statuses.length % 2 ? 'perm' : 'strict')).status);
    };
    const workers = Array.from({ length: 4 }, () => worker());
    const before = statuses.length;
    for (let i = 0; i < 2; i++) {
      await Promise.all([serverCerts.rotate(), clientCerts.rotate()]);
      await new Promise((r) => setTimeout(r, 150));
    }
    stop = true;
    await Promise.all(workers);
    assert.ok(statuses.length - before > 20, `enough requests ran during the rotations (${statuses.length})`);
    assert.deepEqual(statuses.filter((s) => s !== 200), []);
  });

  it('a root rotation with both roots in the bundle under steady load loses no request', async () => {
    // Istio's procedure: trust old+new, move each workload to the new root, then drop the old.
    const next = await makeTestCA();
    let stop = false;
    const statuses: number[] = [];
    const worker = async (): Promise<void> => {
      while (!stop) statuses.push((await get(outPort, statuses.length % 2 ? 'perm' : 'strict')).status);
    };
    const workers = Array.from({ length: 4 }, () => worker());
    const pause = () => new Promise((r) => setTimeout(r, 200));
    const both = [ca.rootPem, next.rootPem];
    await Promise.all([serverCerts.reissue(ca, both), clientCerts.reissue(ca, both)]);
    await pause();
    await serverCerts.reissue(next, both); // the server presents a new-root chain, the client trusts both
    await pause();
    await clientCerts.reissue(next, both);
    await pause();
    await Promise.all([serverCerts.reissue(next, [next.rootPem]), clientCerts.reissue(next, [next.rootPem])]);
    await pause();
    const during = statuses.length;
    stop = true;
    await Promise.all(workers);
    assert.ok(during > 20, `enough requests ran during the rotation (${during})`);
    assert.deepEqual(statuses.filter((s) => s !== 200), []);
    // New handshakes use the new root only: the server presents a new-root chain and refuses an
    // old-root client certificate (pooled connections may outlive the switch, as in Envoy).
    const oldClient = await ca.issue([CLIENT_ID]);
    const newClient = await next.issue([CLIENT_ID]);
    assert.equal(await handshake(strictPort, newClient, next.rootPem), 'ok');
    assert.notEqual(await handshake(strictPort, newClient, ca.rootPem), 'ok', 'the server chain no longer verifies against the old root');
    assert.notEqual(await handshake(strictPort, oldClient, next.rootPem), 'ok', 'an old-root client certificate is refused');
  });
});
