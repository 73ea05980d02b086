// Cluster features through real HTTP and a real xDS stream: STRICT_DNS resolved through a
// real DNS server (and the system resolver for localhost) and re-resolved when the answer
// changes, LOGICAL_DNS (first address only, new connections follow it, open ones stay), priority failover with Envoy's overprovisioning factor, locality weights, the
// upstream idle timeout, max requests per connection, a server's Keep-Alive: timeout
// honoured, and the retry budget bounding retries.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Sidecar } from '../../proxy/sidecar.js';
import { priorityLoads } from '../../proxy/upstream/priority-load.js';
import { TestAdsServer } from './ads-server.js';
import { TestDnsServer } from './dns-server.js';
import { decodeCluster } from '../../proxy/xds/resources/cluster.js';
import { closeServer, edsCluster, freePort, startApp, virtualOutbound, waitFor } from './fixtures.js';

const ADS = { ads: {}, resourceApiVersion: 'V3' };
const HPO = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const HPO_TYPE = `type.googleapis.com/${HPO}`;

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
function get(port: number, host: string, path = '/', headers: Record<string, string> = {}): Promise<{ status: number; app: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host, ...headers }, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, app: String(res.headers['x-app'] ?? '') }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function tally(n: number, send: () => Promise<{ app: string }>): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i += 10) {
    for (const r of await Promise.all(Array.from({ length: Math.min(10, n - i) }, send))) out.set(r.app, (out.get(r.app) ?? 0) + 1);
  }
  return out;
}

/** An HTTP/1.1 server that counts connections and says `Keep-Alive: timeout=<s>` but never closes idle ones itself. */
async function countingServer(name: string, keepAliveHeader?: string, dropIdleAfterMs?: number) {
  const st = { connections: 0, closed: 0, requests: 0 };
  const server = net.createServer((s) => {
    st.connections++;
    let last = Date.now();
    s.on('close', () => { st.closed++; });
    s.on('error', () => undefined);
    s.on('data', () => {
      // A connection reused after the server's advertised idle time is dropped unanswered.
      if (dropIdleAfterMs !== undefined && Date.now() - last > dropIdleAfterMs) { s.destroy(); return; }
      st.requests++;
      last = Date.now();
      s.write(`HTTP/1.1 200 OK\r\nx-app: ${name}\r\ncontent-length: 2\r\n${keepAliveHeader ? `keep-alive: ${keepAliveHeader}\r\n` : ''}\r\nok`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as net.AddressInfo).port, st };
}

describe('clusters: STRICT_DNS, priorities, localities, connection lifetime, retry budget', () => {
  const ads = new TestAdsServer();
  const dns = new TestDnsServer();
  let sidecar: Sidecar;
  let outPort = 0;
  const apps: Array<Awaited<ReturnType<typeof startApp>>> = [];
  let dnsA: http.Server;
  let dnsB: http.Server;
  let idle: Awaited<ReturnType<typeof countingServer>>;
  let maxReq: Awaited<ReturnType<typeof countingServer>>;
  let keepAlive: Awaited<ReturnType<typeof countingServer>>;
  let flaky: Awaited<ReturnType<typeof startApp>>;
  let flakyHits = 0;
  /** LOGICAL_DNS upstreams: one port on 127.0.0.1 ("la") and 127.0.0.2 ("lb"); /hold waits for `releaseHeld`. */
  const logical: http.Server[] = [];
  const held: string[] = [];
  let releaseHeld: () => void = () => undefined;
  const heldGate = new Promise<void>((r) => { releaseHeld = r; });
  const routes: object[] = [];
  const clusters: object[] = [];
  const assignments: object[] = [];

  const vh = (host: string, cluster: string, extra: object = {}) => ({ name: host, domains: [host], routes: [{ match: { prefix: '/' }, route: { cluster, ...extra } }] });
  const lbe = (port: number, health?: string) => ({ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } }, ...(health ? { healthStatus: health } : {}) });
  const push = (version: string): void => ads.setAll(version, {
    [TYPE_URL.cluster]: clusters,
    [TYPE_URL.clusterLoadAssignment]: assignments,
    [TYPE_URL.listener]: [{
      ...(virtualOutbound('127.0.0.1', outPort) as object),
      filterChains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typedConfig: {
        '@type': TYPE_URL.httpConnectionManager, statPrefix: 'out', rds: { routeConfigName: 'r', configSource: ADS },
        httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': TYPE_URL.router } }],
      } }] }],
    }],
    [TYPE_URL.routeConfiguration]: [{ name: 'r', virtualHosts: routes }],
  });
  let version = 1;
  const pri = (p0: Array<[number, string?]>, p1: number[]) => ({
    clusterName: 'pri',
    endpoints: [
      { priority: 0, lbEndpoints: p0.map(([port, h]) => lbe(port, h)) },
      { priority: 1, lbEndpoints: p1.map((port) => lbe(port)) },
    ],
  });

  before(async () => {
    for (const n of ['p0a', 'p0b', 'p0c', 'p1', 'east', 'west']) apps.push(await startApp(n));
    const port = (n: string) => apps[['p0a', 'p0b', 'p0c', 'p1', 'east', 'west'].indexOf(n)].port;
    // Two DNS answers for one name: the same port on two loopback addresses.
    const a = await startApp('dns-a', '127.0.0.1');
    dnsA = a.server;
    dnsB = http.createServer((_req, res) => { res.writeHead(200, { 'x-app': 'dns-b' }); res.end('b'); });
    await new Promise<void>((r) => dnsB.listen(a.port, '127.0.0.2', () => r()));
    await dns.listen();
    dns.records.set('web.dns.test', ['127.0.0.1']);
    idle = await countingServer('idle');
    maxReq = await countingServer('maxreq');
    keepAlive = await countingServer('keepalive', 'timeout=2', 1500);
    const logicalApp = (name: string) => http.createServer((req, res) => {
      const answer = (): void => { res.writeHead(200, { 'x-app': name }); res.end(name); };
      if (req.url === '/hold') { held.push(name); void heldGate.then(answer); } else answer();
    });
    logical.push(logicalApp('la'), logicalApp('lb'));
    await new Promise<void>((r) => logical[0].listen(0, '127.0.0.1', () => r()));
    const logicalPort = (logical[0].address() as net.AddressInfo).port;
    await new Promise<void>((r) => logical[1].listen(logicalPort, '127.0.0.2', () => r()));
    dns.records.set('logical.dns.test', ['127.0.0.1', '127.0.0.2']);
    flaky = await startApp('flaky', '127.0.0.1', (_req, res) => { flakyHits++; res.writeHead(503, { 'x-app': 'flaky' }); res.end(); return true; });
    outPort = await freePort();

    clusters.push(
      {
        name: 'dns', type: 'STRICT_DNS', connectTimeout: { seconds: 1 }, dnsRefreshRate: { nanos: 200_000_000 }, dnsLookupFamily: 'V4_ONLY',
        dnsResolvers: [{ socketAddress: { address: '127.0.0.1', portValue: dns.port } }],
        loadAssignment: { clusterName: 'dns', endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: 'web.dns.test', portValue: a.port } } } }] }] },
      },
      {
        name: 'logical', type: 'LOGICAL_DNS', connectTimeout: { seconds: 1 }, dnsRefreshRate: { nanos: 200_000_000 }, dnsLookupFamily: 'V4_ONLY',
        dnsResolvers: [{ socketAddress: { address: '127.0.0.1', portValue: dns.port } }],
        loadAssignment: { clusterName: 'logical', endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: 'logical.dns.test', portValue: logicalPort } } } }] }] },
      },
      {
        name: 'localhost', type: 'STRICT_DNS', connectTimeout: { seconds: 1 }, dnsLookupFamily: 'V4_ONLY',
        loadAssignment: { clusterName: 'localhost', endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: 'localhost', portValue: port('east') } } } }] }] },
      },
      edsCluster('pri'), edsCluster('loc'),
      { ...(edsCluster('idle') as object), typedExtensionProtocolOptions: { [HPO]: { '@type': HPO_TYPE, commonHttpProtocolOptions: { idleTimeout: { nanos: 300_000_000 } }, explicitHttpConfig: { httpProtocolOptions: {} } } } },
      { ...(edsCluster('maxreq') as object), typedExtensionProtocolOptions: { [HPO]: { '@type': HPO_TYPE, commonHttpProtocolOptions: { maxRequestsPerConnection: { value: 2 } }, explicitHttpConfig: { httpProtocolOptions: {} } } } },
      { ...(edsCluster('keepalive') as object), typedExtensionProtocolOptions: { [HPO]: { '@type': HPO_TYPE, commonHttpProtocolOptions: { idleTimeout: { seconds: 60 } }, explicitHttpConfig: { httpProtocolOptions: {} } } } },
      { ...(edsCluster('flaky') as object), circuitBreakers: { thresholds: [{ maxRetries: { value: 1000 }, retryBudget: { budgetPercent: { value: 25 }, minRetryConcurrency: { value: 2 } } }] } },
    );
    assignments.push(
      pri([[port('p0a')], [port('p0b')], [port('p0c')]], [port('p1')]),
      { clusterName: 'loc', endpoints: [
        { locality: { zone: 'east' }, loadBalancingWeight: { value: 1 }, lbEndpoints: [lbe(port('east'))] },
        { locality: { zone: 'west' }, loadBalancingWeight: { value: 3 }, lbEndpoints: [lbe(port('west'))] },
      ] },
      { clusterName: 'idle', endpoints: [{ lbEndpoints: [lbe(idle.port)] }] },
      { clusterName: 'maxreq', endpoints: [{ lbEndpoints: [lbe(maxReq.port)] }] },
      { clusterName: 'keepalive', endpoints: [{ lbEndpoints: [lbe(keepAlive.port)] }] },
      { clusterName: 'flaky', endpoints: [{ lbEndpoints: [lbe(flaky.port)] }] },
    );
    routes.push(
      vh('dns', 'dns'), vh('logical', 'logical'), vh('localhost', 'localhost'), vh('pri', 'pri'), vh('loc', 'loc'), vh('idle', 'idle'), vh('maxreq', 'maxreq'), vh('keepalive', 'keepalive'),
      vh('flaky', 'flaky', { retryPolicy: { retryOn: '5xx', numRetries: { value: 5 } } }),
    );
    await ads.listen();
    push(String(version));
    sidecar = new Sidecar({
      pilotAddress: `127.0.0.1:${ads.port}`,
      identity: { podName: 'c-1', namespace: 'test', instanceIp: '127.0.0.92', serviceAccount: 'c', workloadName: 'c', labels: { app: 'c' }, domain: 'cluster.local' },
      ports: { admin: 0, prometheus: 0, readiness: 0 },
      accessLog: () => undefined,
      log: process.env.TPX_DEBUG ? (m) => console.error(m) : () => undefined,
      originalDst: () => ({ address: '127.0.0.201', port: 80 }),
    });
    await sidecar.start();
    await waitFor('config acked', () => ads.acked(TYPE_URL.routeConfiguration, '1'));
    await sidecar.settled();
  });

  after(async () => {
    agent.destroy();
    await sidecar?.stop();
    await ads.close();
    await dns.close();
    for (const a of apps) await closeServer(a.server);
    releaseHeld();
    for (const s of [...logical, dnsA, dnsB, idle.server, maxReq.server, keepAlive.server, flaky.server]) if (s) await closeServer(s);
  });

  it('resolves a STRICT_DNS cluster through DNS and follows a changed answer', async () => {
    await waitFor('dns resolved', async () => (await get(outPort, 'dns')).app === 'dns-a');
    dns.records.set('web.dns.test', ['127.0.0.2']);
    await waitFor('re-resolved to the new address', async () => (await get(outPort, 'dns')).app === 'dns-b', 5000);
    dns.records.set('web.dns.test', ['127.0.0.1', '127.0.0.2']);
    await waitFor('both addresses', async () => { const t = await tally(20, () => get(outPort, 'dns')); return (t.get('dns-a') ?? 0) > 0 && (t.get('dns-b') ?? 0) > 0; }, 5000);
    // A failing resolution keeps the last hosts.
    dns.records.delete('web.dns.test');
    await new Promise((r) => setTimeout(r, 600));
    assert.equal((await get(outPort, 'dns')).status, 200);
    const stats = await (await fetch(`http://127.0.0.1:${sidecar.ports!.admin}/stats`)).text();
    assert.match(stats, /cluster\.dns\.membership_change: [3-9]/);
  });

  it('LOGICAL_DNS: uses only the first address, follows a changed answer for new connections, leaves an open one alone', async () => {
    await waitFor('logical resolved', async () => (await get(outPort, 'logical')).status === 200);
    // Two addresses in the answer: STRICT_DNS would balance over both, LOGICAL_DNS takes the first.
    assert.deepEqual([...(await tally(20, () => get(outPort, 'logical')))], [['la', 20]]);
    const open = get(outPort, 'logical', '/hold');
    await waitFor('a request held open at the first address', () => held.includes('la'));
    dns.records.set('logical.dns.test', ['127.0.0.2', '127.0.0.1']);
    await waitFor('new requests at the new first address', async () => (await get(outPort, 'logical')).app === 'lb', 5000);
    assert.deepEqual([...(await tally(10, () => get(outPort, 'logical')))], [['lb', 10]]);
    // The request opened before the change was not cut: it completes from the old address.
    releaseHeld();
    assert.deepEqual(await open, { status: 200, app: 'la' });
    // One logical host: a load assignment with two endpoints is rejected, naming the field.
    const lbe = (address: string) => ({ endpoint: { address: { socketAddress: { address, portValue: 80 } } } });
    const bad = decodeCluster({ name: 'two', type: 'LOGICAL_DNS', connectTimeout: { seconds: 1 }, loadAssignment: { clusterName: 'two', endpoints: [{ lbEndpoints: [lbe('a.test'), lbe('b.test')] }] } });
    assert.match(bad.errors.join('\n'), /loadAssignment\.endpoints: LOGICAL_DNS clusters must have a single locality_lb_endpoint and a single lb_endpoint/);
  });

  it('resolves through the system resolver when the cluster names no DNS server', async () => {
    await waitFor('localhost resolved', async () => (await get(outPort, 'localhost')).app === 'east');
  });

  it('keeps all traffic on priority 0 while it is healthy enough and fails over by Envoy\'s overprovisioned share', async () => {
    assert.deepEqual(priorityLoads([100, 100]), [100, 0]);
    assert.deepEqual(priorityLoads([140 / 3, 100]).map(Math.round), [47, 53]);
    assert.deepEqual(priorityLoads([0, 0]), [100, 0]);
    const p0 = await tally(60, () => get(outPort, 'pri'));
    assert.equal(p0.get('p1') ?? 0, 0, JSON.stringify([...p0]));
    // Two of three priority-0 hosts unhealthy: 1/3 * 1.4 = 47% stays, 53% spills to priority 1.
    const port = (n: string) => apps[['p0a', 'p0b', 'p0c'].indexOf(n)].port;
    assignments[0] = pri([[port('p0a')], [port('p0b'), 'UNHEALTHY'], [port('p0c'), 'UNHEALTHY']], [apps[3].port]);
    push(String(++version));
    await waitFor('EDS applied', () => ads.acked(TYPE_URL.clusterLoadAssignment, String(version)));
    const split = await tally(300, () => get(outPort, 'pri'));
    const p1 = split.get('p1') ?? 0;
    assert.ok(p1 > 110 && p1 < 210, `priority 1 got ${p1} of 300 (expected ~160)`);
    assert.equal((split.get('p0b') ?? 0) + (split.get('p0c') ?? 0), 0);
    // All of priority 0 unhealthy: everything to priority 1.
    assignments[0] = pri([[port('p0a'), 'UNHEALTHY'], [port('p0b'), 'UNHEALTHY'], [port('p0c'), 'DRAINING']], [apps[3].port]);
    push(String(++version));
    await waitFor('EDS applied', () => ads.acked(TYPE_URL.clusterLoadAssignment, String(version)));
    const all = await tally(40, () => get(outPort, 'pri'));
    assert.equal(all.get('p1'), 40);
  });

  it('splits a priority between localities by their weights', async () => {
    const t = await tally(400, () => get(outPort, 'loc'));
    const west = t.get('west') ?? 0;
    assert.ok(west > 250 && west < 350, `west got ${west} of 400 (weight 3 of 4)`);
  });

  it('closes upstream connections idle past the cluster\'s idle_timeout', async () => {
    assert.equal((await get(outPort, 'idle')).status, 200);
    assert.equal(idle.st.connections, 1);
    await waitFor('idle connection closed by the proxy', () => idle.st.closed === 1, 3000);
    assert.equal((await get(outPort, 'idle')).status, 200);
    assert.equal(idle.st.connections, 2);
  });

  it('opens a new connection after max_requests_per_connection', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await get(outPort, 'maxreq')).status, 200);
    assert.equal(maxReq.st.requests, 5);
    assert.equal(maxReq.st.connections, 3);
  });

  it('honours a server\'s Keep-Alive: timeout instead of reusing a connection it dropped', async () => {
    const retriesBefore = await (await fetch(`http://127.0.0.1:${sidecar.ports!.admin}/stats`)).text();
    assert.equal((await get(outPort, 'keepalive')).status, 200);
    await new Promise((r) => setTimeout(r, 1700));
    assert.equal((await get(outPort, 'keepalive')).status, 200);
    assert.equal(keepAlive.st.connections, 2, 'the second request used a fresh connection');
    const stats = await (await fetch(`http://127.0.0.1:${sidecar.ports!.admin}/stats`)).text();
    const retries = (s: string) => Number(/cluster\.keepalive\.upstream_rq_retry: (\d+)/.exec(s)?.[1] ?? 0);
    assert.equal(retries(stats), retries(retriesBefore), 'no request was sent into a dead connection');
  });

  it('bounds retries with the retry budget (min_retry_concurrency when idle)', async () => {
    // One request at a time: 25% of 1 active request is below the minimum, so 2 retries may run
    // concurrently; each request retries sequentially, up to numRetries.
    flakyHits = 0;
    const r = await get(outPort, 'flaky');
    assert.equal(r.status, 503);
    assert.equal(flakyHits, 6, 'numRetries 5 allowed when the budget has room');
    // 20 concurrent requests: the budget (max(2, 25% of active)) lets only some of them retry.
    flakyHits = 0;
    await Promise.all(Array.from({ length: 20 }, () => get(outPort, 'flaky')));
    const stats = await (await fetch(`http://127.0.0.1:${sidecar.ports!.admin}/stats`)).text();
    assert.match(stats, /cluster\.flaky\.upstream_rq_retry_overflow: [1-9]/);
    assert.ok(flakyHits < 20 * 6, `attempts ${flakyHits} bounded below 120`);
  });
});
