// Listener updates reach existing connections, as in Envoy: a filter chain whose content a
// push changed or removed drains (HTTP/1.1: idle connections closed, the response in flight
// carries `connection: close`; HTTP/2: GOAWAY, streams in flight finish; TCP: closed after
// the drain period), so the next request is governed by the new chain (here an RBAC ALLOW
// policy). A push that changes nothing changes nothing: a listener re-sent with the same
// content under a new version, or a change to another chain of the same listener, leaves
// the connections alone.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Sidecar } from '../../proxy/sidecar.js';
import { TestAdsServer } from './ads-server.js';
import { closeServer, freePort, staticCluster, waitFor } from './fixtures.js';

const ROUTER = { name: 'envoy.filters.http.router', typedConfig: { '@type': TYPE_URL.router } };
const DRAIN_MS = 1500;

/** An HCM whose RBAC filter allows only requests with `x-caller: <caller>`. */
function hcm(name: string, caller: string): object {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typedConfig: {
      '@type': TYPE_URL.httpConnectionManager, statPrefix: name,
      routeConfig: { name, virtualHosts: [{ name, domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] },
      httpFilters: [{
        name: 'envoy.filters.http.rbac',
        typedConfig: { '@type': TYPE_URL.httpRbac, rules: { action: 'ALLOW', policies: {
          'ns[test]-policy[allow]-rule[0]': { principals: [{ header: { name: 'x-caller', stringMatch: { exact: caller } } }], permissions: [{ any: true }] },
        } } },
      }, ROUTER],
    },
  };
}

/**
 * One listener, two chains: `other` for connections from 127.0.0.2, `main` for the rest;
 * plus a TCP listener to an echo server whose stat prefix stands for its config.
 */
function resources(port: number, tcpPort: number, mainCaller: string, otherCaller: string, tcpPrefix = 'tcp_a'): object[] {
  return [{
    name: 'web', address: { socketAddress: { address: '0.0.0.0', portValue: port } }, trafficDirection: 'INBOUND',
    filterChains: [
      { name: 'other', filterChainMatch: { sourcePrefixRanges: [{ addressPrefix: '127.0.0.2', prefixLen: { value: 32 } }] }, filters: [hcm('other', otherCaller)] },
      { name: 'main', filters: [hcm('main', mainCaller)] },
    ],
  }, {
    name: 'tcp', address: { socketAddress: { address: '127.0.0.1', portValue: tcpPort } }, trafficDirection: 'INBOUND',
    filterChains: [{ name: 'tcp', filters: [{ name: 'envoy.filters.network.tcp_proxy', typedConfig: { '@type': TYPE_URL.tcpProxy, statPrefix: tcpPrefix, cluster: 'echo' } }] }],
  }];
}

interface Got { status: number; body: string; connection?: string; socket: net.Socket }

describe('listener updates and existing connections (filter chain drain)', () => {
  const ads = new TestAdsServer();
  let proxy: Sidecar;
  let app: http.Server;
  let echo: net.Server;
  let appPort = 0;
  let port = 0;
  let tcpPort = 0;
  let version = 0;
  /** Connections the app has accepted (the proxy's upstream pool). */
  let appConnections = 0;
  const pending: Array<() => void> = [];

  /** Pushes a listener set under a new version and waits until the proxy applied it. */
  async function push(mainCaller: string, otherCaller: string, tcpPrefix?: string): Promise<void> {
    const v = String(++version);
    ads.setAll(v, { [TYPE_URL.listener]: resources(port, tcpPort, mainCaller, otherCaller, tcpPrefix) });
    await waitFor(`LDS ACK ${v}`, () => ads.acked(TYPE_URL.listener, v));
    await proxy.settled();
  }

  const drained = (): number => proxy.stats.get('listener_manager.filter_chains_drained');

  function get(agent: http.Agent, caller: string, path = '/'): Promise<Got> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path, agent, headers: { 'x-caller': caller } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), connection: res.headers.connection, socket: req.socket as net.Socket }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  before(async () => {
    app = http.createServer((req, res) => {
      // /slow answers when the test says so: a request in flight across a push.
      const answer = (): void => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end(`app ${req.url}`); };
      if (req.url === '/slow') pending.push(answer);
      else answer();
    });
    app.on('connection', () => { appConnections++; });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
    appPort = (app.address() as net.AddressInfo).port;
    echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    [port, tcpPort] = [await freePort(), await freePort()];
    const adsPort = await ads.listen();
    ads.setAll('init', {
      [TYPE_URL.cluster]: [staticCluster('app', '127.0.0.1', appPort), staticCluster('echo', '127.0.0.1', (echo.address() as net.AddressInfo).port)],
      [TYPE_URL.listener]: resources(port, tcpPort, 'b', 'x'),
    });
    proxy = new Sidecar({
      pilotAddress: `127.0.0.1:${adsPort}`, ports: { admin: 0, prometheus: 0, readiness: 0 }, accessLog: () => undefined, log: () => undefined,
      identity: { podName: 'web-1', namespace: 'test', instanceIp: '127.0.0.1', serviceAccount: 'web', workloadName: 'web', labels: { app: 'web' }, domain: 'cluster.local' },
      originalDst: (s: { localPort?: number }) => ({ address: '127.0.0.1', port: s.localPort ?? 0 }),
      chainDrainMs: DRAIN_MS,
    });
    await proxy.start();
    await waitFor('LDS ACK init', () => ads.acked(TYPE_URL.listener, 'init')).catch((e: Error) => { throw new Error(`${e.message}: ${JSON.stringify(ads.nacks(TYPE_URL.listener).map((n) => n.errorDetail))}`); });
    await proxy.settled();
  });

  after(async () => {
    for (const answer of pending.splice(0)) answer();
    await proxy?.stop();
    await ads.close();
    if (app) await closeServer(app);
    if (echo) await closeServer(echo);
  });

  it('HTTP/1.1: the same content re-sent, or another chain changed, leaves a keep-alive connection alone; a changed chain drains it', async () => {
    await push('b', 'x');
    const main = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const idle = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const other = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress: '127.0.0.2' } as http.AgentOptions);
    try {
      const first = await get(main, 'b');
      assert.equal(first.status, 200, first.body);
      const idleSocket = (await get(idle, 'b')).socket;
      const otherFirst = await get(other, 'x');
      assert.equal(otherFirst.status, 200, `the other chain serves 127.0.0.2: ${otherFirst.body}`);
      const appBefore = appConnections;
      const drainedBefore = drained();

      // The identical listener under a new version: nothing drains, the connection serves on.
      await push('b', 'x');
      const again = await get(main, 'b');
      assert.equal(again.status, 200);
      assert.equal(again.socket, first.socket, 'the same downstream connection');
      assert.equal(again.connection, 'keep-alive');
      assert.equal(drained(), drainedBefore, 'no chain drained');

      // Only the other chain changes: main's connection is untouched, other's is drained.
      await push('b', 'y');
      await waitFor('the other chain drained', () => drained() > drainedBefore);
      const stillMain = await get(main, 'b');
      assert.equal(stillMain.socket, first.socket, 'main chain unchanged: same connection');
      assert.equal(stillMain.status, 200);
      const otherNow = await get(other, 'x');
      assert.equal(otherNow.status, 403, 'x is denied by the new other chain');
      assert.notEqual(otherNow.socket, otherFirst.socket, 'on a new connection');
      assert.equal(appConnections, appBefore, 'the app saw no new upstream connection');

      // Main changes (ALLOW a) while a request is in flight and another connection is idle.
      const idleClosed = new Promise<void>((r) => { if (idleSocket.destroyed) r(); else idleSocket.once('close', () => r()); });
      const slow = get(main, 'b', '/slow');
      await waitFor('the slow request reached the app', () => pending.length === 1);
      const drainedMid = drained();
      await push('a', 'y');
      await waitFor('main drained', () => drained() > drainedMid);
      await idleClosed; // the idle connection is closed by the proxy
      pending.shift()?.();
      const inFlight = await slow;
      assert.equal(inFlight.status, 200, 'the request in flight finishes on its old chain');
      assert.equal(inFlight.connection, 'close', 'and its response closes the connection');
      const after = await get(main, 'b');
      assert.equal(after.status, 403, 'b on the same agent is now governed by ALLOW a');
      assert.notEqual(after.socket, first.socket);
      assert.equal((await get(main, 'a')).status, 200);
    } finally {
      main.destroy();
      idle.destroy();
      other.destroy();
    }
  });

  it('HTTP/2: a re-sent chain keeps the session; a changed chain sends GOAWAY, the stream in flight finishes, the next session meets the new policy', async () => {
    await push('b', 'x');
    const request = (session: http2.ClientHttp2Session, caller: string, path = '/'): Promise<{ status: number; body: string }> => new Promise((resolve, reject) => {
      const s = session.request({ ':path': path, 'x-caller': caller });
      let body = '';
      let status = 0;
      s.on('response', (h) => { status = Number(h[':status']); });
      s.on('data', (c: Buffer) => { body += c.toString(); });
      s.on('end', () => resolve({ status, body }));
      s.on('error', reject);
      s.end();
    });
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const goaway = new Promise<void>((r) => session.once('goaway', () => r()));
    let goneAway = false;
    void goaway.then(() => { goneAway = true; });
    try {
      assert.equal((await request(session, 'b')).status, 200);
      const drainedBefore = drained();
      await push('b', 'x');
      assert.equal((await request(session, 'b')).status, 200, 'the same session serves on');
      assert.equal(goneAway, false, 'no GOAWAY for an unchanged chain');
      assert.equal(drained(), drainedBefore);

      const slow = request(session, 'b', '/slow');
      await waitFor('the slow stream reached the app', () => pending.length === 1);
      const closed = new Promise<void>((r) => session.once('close', () => r()));
      await push('a', 'x');
      await goaway;
      pending.shift()?.();
      assert.equal((await slow).status, 200, 'the stream in flight finishes');
      await closed;
      const next = http2.connect(`http://127.0.0.1:${port}`);
      try {
        const denied = await request(next, 'b');
        assert.equal(denied.status, 403, 'b on a new session is governed by ALLOW a');
        assert.equal(denied.body, 'RBAC: access denied');
      } finally {
        next.close();
      }
    } finally {
      session.destroy();
    }
  });

  it('TCP: a re-sent chain keeps the connection; a changed chain closes it after the drain period', async () => {
    await push('a', 'x', 'tcp_a');
    const conn = net.connect(tcpPort, '127.0.0.1');
    await new Promise<void>((r) => conn.once('connect', () => r()));
    const ping = (s: string): Promise<string> => new Promise((resolve) => {
      conn.once('data', (d: Buffer) => resolve(d.toString()));
      conn.write(s);
    });
    let closedAt = 0;
    conn.on('close', () => { closedAt = Date.now(); });
    conn.on('error', () => undefined);
    try {
      assert.equal(await ping('one'), 'one');
      await push('a', 'x', 'tcp_a');
      assert.equal(await ping('two'), 'two', 'identical chain: the connection carries on');
      const pushedAt = Date.now();
      await push('a', 'x', 'tcp_b');
      assert.equal(await ping('three'), 'three', 'a changed chain lets the connection finish for a while');
      await waitFor('the connection closed at the end of the drain period', () => closedAt > 0, DRAIN_MS + 10_000);
      assert.ok(closedAt - pushedAt >= DRAIN_MS - 100, `closed ${closedAt - pushedAt} ms after the push, not before the drain period`);
    } finally {
      conn.destroy();
    }
  });
});
