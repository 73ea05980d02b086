// Connections reset at every stage must never take the proxy down: before and during the
// listener inspectors, during the downstream TLS handshake, mid-request, mid-response (from
// either side), during the upstream mTLS handshake, and mid-stream through TcpProxy. Both
// proxies must still serve afterwards and the process must not see an uncaught error.
// Then the drain: idle keep-alive connections are ended after the drain timeout (the peer is
// told while the network is certainly up), a request in flight completes with Connection: close.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Sidecar } from '../../proxy/sidecar.js';
import { TestAdsServer } from './ads-server.js';
import { closeServer, freePort, staticCluster, tcpProxy, waitFor } from './fixtures.js';
import { makeTestCA, TestCertSource, type TestCA } from './test-ca.js';
import { autoMtlsCluster, CLIENT_ID, DOWNSTREAM_MTLS, endpoints, SERVER_ID } from './mtls-resources.js';

const ROUTER = [{ name: 'envoy.filters.http.router', typedConfig: { '@type': TYPE_URL.router } }];

function hcm(name: string, cluster: string): object {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typedConfig: {
      '@type': TYPE_URL.httpConnectionManager, statPrefix: name,
      routeConfig: { name, virtualHosts: [{ name, domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] }] },
      httpFilters: ROUTER,
    },
  };
}

/** An inbound listener with a PERMISSIVE port (tls + raw chains) in front of the app. */
function inboundListener(port: number): object {
  return {
    name: 'inbound', address: { socketAddress: { address: '127.0.0.1', portValue: port } }, trafficDirection: 'INBOUND',
    listenerFilters: [{ name: 'envoy.filters.listener.tls_inspector' }, { name: 'envoy.filters.listener.http_inspector' }],
    filterChains: [
      { name: 'tls', filterChainMatch: { transportProtocol: 'tls' }, transportSocket: DOWNSTREAM_MTLS, filters: [hcm('in-tls', 'inbound|app')] },
      { name: 'plain', filterChainMatch: { transportProtocol: 'raw_buffer' }, filters: [hcm('in-plain', 'inbound|app')] },
    ],
  };
}

function tcpListener(name: string, port: number, cluster: string, direction: 'INBOUND' | 'OUTBOUND'): object {
  return { name, address: { socketAddress: { address: '127.0.0.1', portValue: port } }, trafficDirection: direction, filterChains: [{ filters: [tcpProxy(cluster)] }] };
}

/** Connects, lets `act` drive the socket, and resolves when it is closed (never rejects). */
function rawSession(port: number, act: (s: net.Socket) => void): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.on('close', () => resolve());
    s.once('connect', () => act(s));
    setTimeout(() => s.destroy(), 3_000);
  });
}

const settle = (ms = 50): Promise<void> => new Promise((r) => setTimeout(r, ms));

function get(port: number, path = '/', agent?: http.Agent, host = 'app'): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host }, agent: agent ?? false }, (res) => {
      let body = '';
      const socket = res.socket as net.Socket;
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, socket }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('connection resets at every stage, and the drain of idle keep-alive connections', () => {
  const serverAds = new TestAdsServer();
  const clientAds = new TestAdsServer();
  const uncaught: string[] = [];
  const onUncaught = (e: unknown): void => { uncaught.push(e instanceof Error ? e.stack ?? e.message : String(e)); };
  let ca: TestCA;
  let clientCerts: TestCertSource;
  let server: Sidecar;
  let client: Sidecar;
  let app: http.Server;
  let resetter: net.Server;
  let tcpEcho: net.Server;
  const ports = { app: 0, inbound: 0, outbound: 0, tcpIn: 0, tcpOut: 0, resetter: 0, echo: 0 };

  before(async () => {
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    ca = await makeTestCA();
    const serverCerts = new TestCertSource(SERVER_ID, ca);
    clientCerts = new TestCertSource(CLIENT_ID, ca);
    await Promise.all([serverCerts.rotate(), clientCerts.rotate()]);
    // The app: /slow streams its answer over 400 ms, /reset sends headers then resets, /hold waits 300 ms.
    app = http.createServer((req, res) => {
      if (req.url === '/slow') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        let n = 0;
        const t = setInterval(() => { res.write('x'.repeat(1024)); if (++n === 8) { clearInterval(t); res.end(); } }, 50);
        res.on('close', () => clearInterval(t));
        return;
      }
      if (req.url === '/reset') { res.writeHead(200, { 'content-length': '100' }); res.write('partial'); setTimeout(() => (req.socket as net.Socket).resetAndDestroy(), 20); return; }
      if (req.url === '/hold') { setTimeout(() => res.end('held'), 300); return; }
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    ports.app = (app.address() as net.AddressInfo).port;
    // An "upstream" that resets every connection on its first bytes (mid TLS handshake).
    resetter = net.createServer((s) => { s.on('error', () => undefined); s.once('data', () => s.resetAndDestroy()); });
    await new Promise<void>((r) => resetter.listen(0, '127.0.0.1', r));
    ports.resetter = (resetter.address() as net.AddressInfo).port;
    tcpEcho = net.createServer((s) => { s.on('error', () => undefined); s.on('data', (d: Buffer) => { if (d.toString().includes('RST')) s.resetAndDestroy(); else s.write(d); }); });
    await new Promise<void>((r) => tcpEcho.listen(0, '127.0.0.1', r));
    ports.echo = (tcpEcho.address() as net.AddressInfo).port;
    [ports.inbound, ports.outbound, ports.tcpIn, ports.tcpOut] = [await freePort(), await freePort(), await freePort(), await freePort()];

    const [sPort, cPort] = [await serverAds.listen(), await clientAds.listen()];
    serverAds.setAll('1', {
      [TYPE_URL.cluster]: [staticCluster('inbound|app', '127.0.0.1', ports.app), staticCluster('echo', '127.0.0.1', ports.echo)],
      [TYPE_URL.listener]: [inboundListener(ports.inbound), tcpListener('tcp-in', ports.tcpIn, 'echo', 'INBOUND')],
    });
    clientAds.setAll('1', {
      [TYPE_URL.cluster]: [autoMtlsCluster('server', [SERVER_ID]), autoMtlsCluster('resetter', [SERVER_ID]), autoMtlsCluster('server-tcp', [SERVER_ID])],
      [TYPE_URL.clusterLoadAssignment]: [endpoints('server', ports.inbound, true), endpoints('resetter', ports.resetter, true), endpoints('server-tcp', ports.resetter, true)],
      [TYPE_URL.listener]: [{
        name: 'outbound', address: { socketAddress: { address: '127.0.0.1', portValue: ports.outbound } }, trafficDirection: 'OUTBOUND',
        filterChains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typedConfig: {
          '@type': TYPE_URL.httpConnectionManager, statPrefix: 'outbound',
          routeConfig: { name: 'out', virtualHosts: ['server', 'resetter'].map((n) => ({ name: n, domains: [n], routes: [{ match: { prefix: '/' }, route: { cluster: n } }] })) },
          httpFilters: ROUTER,
        } }] }],
      }, tcpListener('tcp-out', ports.tcpOut, 'server-tcp', 'OUTBOUND')],
    });
    const identity = (name: string): ConstructorParameters<typeof Sidecar>[0]['identity'] => ({
      podName: `${name}-1`, namespace: 'test', instanceIp: '127.0.0.1', serviceAccount: name, workloadName: name, labels: { app: name }, domain: 'cluster.local',
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
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
    await client?.stop();
    await server?.stop();
    await serverAds.close();
    await clientAds.close();
    for (const s of [app, resetter, tcpEcho]) if (s) await closeServer(s);
  });

  it('survives resets before and during inspection, during the TLS handshake, mid-request and mid-response', async () => {
    const port = ports.inbound;
    // Before any byte, and after a few bytes of a ClientHello / a request line (inspectors waiting).
    await rawSession(port, (s) => s.resetAndDestroy());
    await rawSession(port, (s) => { s.write(Buffer.from([0x16, 0x03, 0x01])); setTimeout(() => s.resetAndDestroy(), 30); });
    await rawSession(port, (s) => { s.write('GET / HT'); setTimeout(() => s.resetAndDestroy(), 30); });
    // A real ClientHello, reset once the server answers (mid handshake).
    await rawSession(port, (s) => {
      const t = tls.connect({ socket: s, rejectUnauthorized: false, ALPNProtocols: ['istio'] });
      t.on('error', () => undefined);
      s.once('data', () => s.resetAndDestroy());
    });
    // mTLS established, then reset with half a request written.
    const leaf = await ca.issue([CLIENT_ID]);
    await rawSession(port, (s) => {
      const t = tls.connect({ socket: s, ca: ca.rootPem, cert: leaf.certPem, key: leaf.keyPem, checkServerIdentity: () => undefined, ALPNProtocols: ['istio'] });
      t.on('error', () => undefined);
      t.once('secureConnect', () => { t.write('POST / HTTP/1.1\r\nhost: app\r\ncontent-length: 100\r\n\r\nabc'); setTimeout(() => s.resetAndDestroy(), 30); });
    });
    // Plaintext: half a body, then reset; and a reset while the response streams.
    await rawSession(port, (s) => { s.write('POST / HTTP/1.1\r\nhost: app\r\ncontent-length: 100\r\n\r\nabc'); setTimeout(() => s.resetAndDestroy(), 30); });
    await rawSession(port, (s) => { s.write('GET /slow HTTP/1.1\r\nhost: app\r\n\r\n'); s.once('data', () => setTimeout(() => s.resetAndDestroy(), 60)); });
    // The app resets mid-response: the client sees its connection end, the proxy stays up.
    await get(port, '/reset').catch(() => undefined);
    await settle(200);
    assert.deepEqual(uncaught, []);
    assert.equal((await get(port, '/')).body, 'ok', 'the inbound side still serves');
  });

  it('survives upstream resets: during the upstream mTLS handshake (503 UF), and mid-stream through TcpProxy both ways', async () => {
    const r = await get(ports.outbound, '/', undefined, 'resetter');
    assert.equal(r.status, 503, 'a reset during the upstream handshake is a local 503');
    // TcpProxy over mTLS to an upstream that resets mid-handshake; then plain TCP resets from either side.
    await rawSession(ports.tcpOut, (s) => { s.write('hello'); });
    await rawSession(ports.tcpIn, (s) => { s.write('ping'); s.once('data', () => s.resetAndDestroy()); });
    await rawSession(ports.tcpIn, (s) => { s.write('RST please'); });
    await settle(200);
    assert.deepEqual(uncaught, []);
    assert.equal((await get(ports.outbound, '/', undefined, 'server')).body, 'ok', 'the outbound side still serves, over mTLS');
    const echo = await new Promise<string>((resolve) => {
      const s = net.connect(ports.tcpIn, '127.0.0.1', () => s.write('still there'));
      s.on('data', (d: Buffer) => { resolve(d.toString()); s.destroy(); });
      s.on('error', () => resolve('error'));
    });
    assert.equal(echo, 'still there');
  });

  it('a drain ends idle keep-alive connections after its drain timeout; a request in flight completes with Connection: close', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const busyAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const idle = await get(ports.inbound, '/', agent);
    assert.equal(idle.status, 200);
    assert.ok(!idle.socket.destroyed, 'kept alive before the drain');
    const closed = new Promise<void>((r) => idle.socket.once('close', () => r()));
    const inFlight = get(ports.inbound, '/hold', busyAgent);
    await settle(100);
    const started = Date.now();
    await server.drain(['inbound']);
    await closed;
    assert.ok(Date.now() - started < 5_000, `the idle connection was ended by the drain (after its 1 s drain timeout), not by the 60 s keep-alive timeout (${Date.now() - started} ms)`);
    const held = await inFlight;
    assert.equal(held.body, 'held');
    assert.equal(held.headers.connection, 'close');
    agent.destroy();
    busyAgent.destroy();
    assert.deepEqual(uncaught, []);
  });
});
