// Envoy's RBAC filters in a sidecar, through real mTLS on loopback: clients with SPIFFE
// certificates for service accounts a and b (and a plaintext client) call an inbound
// listener whose HCM carries AuthorizationPolicy-shaped DENY and ALLOW filters, and a TCP
// port guarded by the network RBAC filter. A bad rule is NACKed and the old rules stay.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Sidecar } from '../../proxy/sidecar.js';
import type { AccessLogEntry } from '../../proxy/stats/access-log.js';
import { TestAdsServer } from './ads-server.js';
import { closeServer, freePort, startApp, staticCluster, waitFor } from './fixtures.js';
import { makeTestCA, TestCertSource, type TestCA } from './test-ca.js';
import { DOWNSTREAM_MTLS, SERVER_ID } from './mtls-resources.js';

const A_ID = 'spiffe://cluster.local/ns/test/sa/a';
const B_ID = 'spiffe://cluster.local/ns/test/sa/b';
const orIds = (...ids: object[]): object => ({ orIds: { ids } });
const orRules = (...rules: object[]): object => ({ orRules: { rules } });
// Istio's shape: one andIds of orIds per `from`, one andRules of orRules per `to`.
const RBAC_DENY = {
  name: 'envoy.filters.http.rbac',
  typedConfig: { '@type': TYPE_URL.httpRbac, rules: { action: 'DENY', policies: {
    'ns[test]-policy[deny-admin]-rule[0]': { principals: [{ any: true }], permissions: [{ andRules: { rules: [orRules({ urlPath: { path: { prefix: '/admin' } } })] } }] },
  } } },
};
function rbacAllow(allowA: object): object {
  return {
    name: 'envoy.filters.http.rbac',
    typedConfig: { '@type': TYPE_URL.httpRbac, rules: { action: 'ALLOW', policies: {
      'ns[test]-policy[allow]-rule[0]': { principals: [{ andIds: { ids: [orIds(allowA)] } }], permissions: [{ any: true }] },
      'ns[test]-policy[allow]-rule[1]': {
        principals: [{ any: true }],
        permissions: [{ andRules: { rules: [
          orRules({ header: { name: ':method', stringMatch: { exact: 'GET' } } }),
          orRules({ urlPath: { path: { prefix: '/public/' } } }, { urlPath: { path: { exact: '/public' } } }),
        ] } }],
      },
    } } },
  };
}
const A_MATCHER = { authenticated: { principalName: { exact: A_ID } } };

function hcm(name: string, allow: object): object {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typedConfig: {
      '@type': TYPE_URL.httpConnectionManager, statPrefix: name,
      routeConfig: { name, virtualHosts: [{ name, domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'inbound|app' } }] }] },
      httpFilters: [RBAC_DENY, rbacAllow(allow), { name: 'envoy.filters.http.router', typedConfig: { '@type': TYPE_URL.router } }],
    },
  };
}

function listeners(webPort: number, tcpPort: number, allow: object): object[] {
  const listenerFilters = [{ name: 'envoy.filters.listener.original_dst' }, { name: 'envoy.filters.listener.tls_inspector' }];
  return [{
    name: 'web', address: { socketAddress: { address: '127.0.0.1', portValue: webPort } }, trafficDirection: 'INBOUND', listenerFilters,
    filterChains: [
      { name: 'web-tls', filterChainMatch: { destinationPort: { value: webPort }, transportProtocol: 'tls' }, transportSocket: DOWNSTREAM_MTLS, filters: [hcm('web_tls', allow)] },
      { name: 'web-plain', filterChainMatch: { destinationPort: { value: webPort }, transportProtocol: 'raw_buffer' }, filters: [hcm('web_plain', allow)] },
    ],
  }, {
    name: 'tcp', address: { socketAddress: { address: '127.0.0.1', portValue: tcpPort } }, trafficDirection: 'INBOUND', listenerFilters,
    filterChains: [{
      name: 'tcp-tls', filterChainMatch: { destinationPort: { value: tcpPort }, transportProtocol: 'tls' }, transportSocket: DOWNSTREAM_MTLS,
      filters: [
        { name: 'envoy.filters.network.rbac', typedConfig: { '@type': TYPE_URL.networkRbac, statPrefix: 'tcp.', rules: { action: 'ALLOW', policies: {
          'ns[test]-policy[tcp]-rule[0]': { principals: [{ andIds: { ids: [orIds(allow)] } }], permissions: [{ andRules: { rules: [orRules({ destinationPort: tcpPort })] } }] },
        } } } },
        { name: 'envoy.filters.network.tcp_proxy', typedConfig: { '@type': TYPE_URL.tcpProxy, statPrefix: 'tcp_in', cluster: 'inbound|echo' } },
      ],
    }],
  }];
}

interface Reply { status: number; body: string; headers: http.IncomingHttpHeaders }

describe('RBAC filters (AuthorizationPolicy shape) over mTLS', () => {
  const ads = new TestAdsServer();
  let ca: TestCA;
  let serverCerts: TestCertSource;
  let a: { certPem: string; keyPem: string };
  let b: { certPem: string; keyPem: string };
  let server: Sidecar;
  let app: Awaited<ReturnType<typeof startApp>>;
  let echo: net.Server;
  let webPort = 0;
  let tcpPort = 0;
  const logs: AccessLogEntry[] = [];

  function call(who: { certPem: string; keyPem: string } | undefined, path: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const common = { host: '127.0.0.1', port: webPort, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false as const };
      const onRes = (res: http.IncomingMessage): void => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
      };
      const req = who
        ? https.request({ ...common, cert: who.certPem, key: who.keyPem, ca: ca.rootPem, checkServerIdentity: () => undefined }, onRes)
        : http.request(common, onRes);
      req.on('error', reject);
      req.end();
    });
  }

  /** Sends "ping" over mTLS to the TCP port: the echo or null when the proxy closed the connection. */
  function tcpPing(who: { certPem: string; keyPem: string }): Promise<string | null> {
    return new Promise((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: tcpPort, cert: who.certPem, key: who.keyPem, ca: ca.rootPem, checkServerIdentity: () => undefined }, () => s.write('ping'));
      let got = '';
      s.on('data', (d: Buffer) => { got += d.toString(); if (got === 'ping') { s.end(); resolve(got); } });
      s.on('error', () => resolve(got || null));
      s.on('close', () => resolve(got || null));
    });
  }

  before(async () => {
    ca = await makeTestCA();
    serverCerts = new TestCertSource(SERVER_ID, ca);
    await serverCerts.rotate();
    [a, b] = await Promise.all([ca.issue([A_ID]), ca.issue([B_ID])]);
    app = await startApp('app');
    echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    [webPort, tcpPort] = [await freePort(), await freePort()];
    const port = await ads.listen();
    ads.setAll('1', {
      [TYPE_URL.cluster]: [staticCluster('inbound|app', '127.0.0.1', app.port), staticCluster('inbound|echo', '127.0.0.1', (echo.address() as net.AddressInfo).port)],
      [TYPE_URL.listener]: listeners(webPort, tcpPort, A_MATCHER),
    });
    server = new Sidecar({
      pilotAddress: `127.0.0.1:${port}`, ports: { admin: 0, prometheus: 0, readiness: 0 }, accessLog: (e) => logs.push(e), log: () => undefined,
      identity: { podName: 'server-1', namespace: 'test', instanceIp: '127.0.0.1', serviceAccount: 'server', workloadName: 'server', labels: { app: 'server' }, domain: 'cluster.local' },
      tlsSecrets: serverCerts, originalDst: (s: { localPort?: number }) => ({ address: '127.0.0.1', port: s.localPort ?? 0 }),
    });
    await server.start();
    await waitFor('LDS ACK', () => ads.acked(TYPE_URL.listener, '1'));
    await server.settled();
  });

  after(async () => {
    await server?.stop();
    await ads.close();
    if (app) await closeServer(app.server);
    if (echo) await closeServer(echo);
  });

  it('ALLOW for SA a: a gets through, b gets 403 RBAC: access denied with flag, reason and counters', async () => {
    const ok = await call(a, '/data');
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.body, 'app GET /data');
    // Envoy: a request that reached the proxy over TLS (and carried no x-forwarded-proto) is forwarded as https.
    assert.equal(app.seen.at(-1)?.['x-forwarded-proto'], 'https');
    const denied = await call(b, '/data');
    assert.equal(denied.status, 403);
    assert.equal(denied.body, 'RBAC: access denied');
    assert.match(String(denied.headers['x-trellis-reason']), /^RBAC /);
    assert.ok(!String(denied.headers['x-trellis-reason']).includes('policy['), 'the reason does not name the policy');
    await waitFor('access log', () => logs.some((l) => l.path === '/data' && l.responseCode === 403));
    assert.equal(logs.find((l) => l.path === '/data' && l.responseCode === 403)?.responseFlags, 'RBAC');
    assert.ok(server.stats.get('http.web_tls.rbac.denied') >= 1);
    assert.ok(server.stats.get('http.web_tls.rbac.allowed') >= 1);
  });

  it('plaintext has no principal: authenticated never matches it', async () => {
    const r = await call(undefined, '/data');
    assert.equal(r.status, 403);
    assert.equal(r.body, 'RBAC: access denied');
  });

  it('DENY beats ALLOW: a is denied /admin', async () => {
    const r = await call(a, '/admin/users');
    assert.equal(r.status, 403);
    assert.equal(r.body, 'RBAC: access denied');
  });

  it('methods and paths: anyone may GET /public (query ignored), not POST it', async () => {
    for (const who of [b, undefined]) {
      const r = await call(who, '/public/x?y=1');
      assert.equal(r.status, 200, r.body);
      assert.equal(app.seen.at(-1)?.['x-forwarded-proto'], who ? 'https' : 'http', 'x-forwarded-proto follows the downstream transport');
      assert.equal((await call(who, '/public')).status, 200);
      assert.equal((await call(who, '/publicity')).status, 403);
      assert.equal((await call(who, '/public/x', { method: 'POST' })).status, 403);
    }
  });

  it('a denied gRPC request gets PERMISSION_DENIED', async () => {
    const r = await call(b, '/pkg.Svc/Method', { method: 'POST', headers: { 'content-type': 'application/grpc' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['grpc-status'], '7');
  });

  it('an Upgrade request (WebSocket) from b is denied before it reaches the app', async () => {
    const seen = app.seen.length;
    const reply = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: webPort, cert: b.certPem, key: b.keyPem, ca: ca.rootPem, checkServerIdentity: () => undefined }, () => {
        s.write('GET /ws HTTP/1.1\r\nhost: web\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n');
      });
      let got = '';
      s.on('data', (d: Buffer) => { got += d.toString(); });
      s.on('close', () => resolve(got));
      s.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 403 /);
    assert.ok(reply.endsWith('\r\n\r\nRBAC: access denied'), reply);
    assert.equal(app.seen.length, seen);
  });

  it('a client resuming its TLS session (client certificate requested) gets a handshake, not an internal_error alert', async () => {
    // The agent caches the session of the first connection and offers it on the second.
    const agent = new https.Agent({ keepAlive: false, cert: a.certPem, key: a.keyPem, ca: ca.rootPem, checkServerIdentity: () => undefined });
    const get = (): Promise<number> => new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: webPort, path: '/data', agent }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
      req.on('error', reject);
      req.end();
    });
    try {
      assert.equal(await get(), 200);
      assert.equal(await get(), 200, 'the resumed session is accepted and still carries the peer identity');
    } finally {
      agent.destroy();
    }
  });

  it('network RBAC closes a TCP connection from b and passes a', async () => {
    assert.equal(await tcpPing(a), 'ping');
    assert.equal(await tcpPing(b), null);
    assert.ok(server.stats.get('tcp.rbac.denied') >= 1);
    assert.ok(server.stats.get('tcp.rbac.allowed') >= 1);
  });

  it('a bad rule is NACKed naming the field; the last good rules stay', async () => {
    ads.setAll('2', {
      [TYPE_URL.cluster]: [staticCluster('inbound|app', '127.0.0.1', app.port), staticCluster('inbound|echo', '127.0.0.1', (echo.address() as net.AddressInfo).port)],
      [TYPE_URL.listener]: listeners(webPort, tcpPort, { authenticated: { principalName: { bogus: 'x' } } }),
    });
    await waitFor('LDS NACK', () => ads.nacks(TYPE_URL.listener).length > 0);
    const msg = ads.nacks(TYPE_URL.listener)[0].errorDetail?.message ?? '';
    assert.match(msg, /rules\.policies\["ns\[test\]-policy\[allow\]-rule\[0\]"\]\.principals\[0\]\.andIds\.ids\[0\]\.orIds\.ids\[0\]\.authenticated\.principalName/);
    assert.equal((await call(a, '/data')).status, 200);
    assert.equal((await call(b, '/data')).status, 403);
  });
});
