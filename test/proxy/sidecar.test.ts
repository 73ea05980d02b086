// The sidecar in-process, fed by a real ADS server over gRPC, serving real HTTP on
// loopback. Only SO_ORIGINAL_DST is simulated (there is no iptables redirect here);
// interception.test.ts covers that part for real inside network namespaces.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatAccessLog } from '../../proxy/stats/access-log.js';
import http from 'node:http';
import net from 'node:net';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Sidecar } from '../../proxy/sidecar.js';
import type { SocketAddress } from '../../proxy/interception/original-dst.js';
import { TestAdsServer } from './ads-server.js';
import {
  assignment, closeServer, edsCluster, freePort, originalDstCluster, outboundCluster, routeConfiguration, serviceListener,
  startApp, staticCluster, virtualHost, virtualInbound, virtualOutbound, waitFor,
} from './fixtures.js';

const REVIEWS = { fqdn: 'reviews.default.svc.cluster.local', port: 9080, clusterIP: '127.0.0.50' };
const RATINGS = { fqdn: 'ratings.default.svc.cluster.local', port: 9080, clusterIP: '127.0.0.51' };
const BROKEN = { fqdn: 'broken.default.svc.cluster.local', port: 9080, clusterIP: '127.0.0.52' };
const EMPTY = { fqdn: 'empty.default.svc.cluster.local', port: 9080, clusterIP: '127.0.0.53' };
const WARMING = { fqdn: 'warming.default.svc.cluster.local', port: 9080, clusterIP: '127.0.0.54' };

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function request(port: number, host: string, path = '/', method = 'GET', body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers: { host }, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('sidecar (in-process, loopback)', () => {
  const ads = new TestAdsServer();
  const apps: Array<Awaited<ReturnType<typeof startApp>>> = [];
  const logLines: string[] = [];
  let sidecar: Sidecar;
  let outPort = 0;
  let inPort = 0;
  let deadPort = 0;
  let echo: net.Server;
  let echoPort = 0;
  // What SO_ORIGINAL_DST would report for connections to each capture port.
  let outboundTarget: SocketAddress = { address: REVIEWS.clusterIP, port: REVIEWS.port };
  let inboundTarget: SocketAddress = { address: '127.0.0.60', port: 0 };
  let slowGate: Promise<void> | undefined;
  let v1: { a1: number; a2: number; b1: number; b2: number; inbound: number };

  function baseConfig(version: string, reviewsRoute: object = { cluster: outboundCluster(9080, REVIEWS.fqdn) }, routes?: object): void {
    const c = (s: { fqdn: string }, subset = ''): string => outboundCluster(9080, s.fqdn, subset);
    ads.setAll(version, {
      [TYPE_URL.cluster]: [
        edsCluster(c(REVIEWS)), edsCluster(c(RATINGS, 'v1')), edsCluster(c(RATINGS, 'v2')), edsCluster(c(BROKEN)),
        edsCluster(c(EMPTY)), edsCluster(c(WARMING)),
        originalDstCluster('PassthroughCluster'), originalDstCluster('InboundPassthroughCluster'),
        staticCluster(`inbound|${v1.inbound}||`, '127.0.0.1', v1.inbound),
      ],
      [TYPE_URL.clusterLoadAssignment]: [
        assignment(c(REVIEWS), [['127.0.0.1', v1.a1], ['127.0.0.1', v1.a2]]),
        assignment(c(RATINGS, 'v1'), [['127.0.0.1', v1.b1]]),
        assignment(c(RATINGS, 'v2'), [['127.0.0.1', v1.b2]]),
        assignment(c(BROKEN), [['127.0.0.1', deadPort]]),
        assignment(c(EMPTY), []),
        // no assignment for WARMING: that cluster stays warming
      ],
      [TYPE_URL.listener]: [
        virtualOutbound('127.0.0.1', outPort), serviceListener(9080), virtualInbound('127.0.0.1', inPort, [v1.inbound]),
      ],
      [TYPE_URL.routeConfiguration]: [routes ?? routeConfiguration(9080, [
        virtualHost(REVIEWS, reviewsRoute, [
          { match: { prefix: '/slow' }, route: { cluster: c(RATINGS, 'v1') } },
          { match: { prefix: '/hang' }, route: { cluster: c(RATINGS, 'v1'), timeout: { nanos: 200_000_000 } } },
          { match: { prefix: '/api/' }, route: { cluster: c(RATINGS, 'v2'), prefixRewrite: '/v2/', hostRewriteLiteral: 'ratings.internal' } },
          { match: { path: '/teapot', headers: [{ name: 'x-tea', presentMatch: true }] }, directResponse: { status: 418, body: { inlineString: 'short and stout' } } },
        ]),
        virtualHost(RATINGS, { weightedClusters: { clusters: [{ name: c(RATINGS, 'v1'), weight: { value: 3 } }, { name: c(RATINGS, 'v2'), weight: { value: 1 } }] } }),
        virtualHost(BROKEN, { cluster: c(BROKEN) }),
        virtualHost(EMPTY, { cluster: c(EMPTY) }),
        virtualHost(WARMING, { cluster: c(WARMING) }),
      ])],
    });
  }

  before(async () => {
    apps.push(await startApp('reviews-1'), await startApp('reviews-2'));
    apps.push(await startApp('ratings-v1', '127.0.0.1', (req, res) => {
      if (req.url === '/hang') return true; // never answers: the route timeout fires
      if (req.url !== '/slow' || !slowGate) return false;
      // Held until the test opens the gate, so a config push happens mid-request.
      void slowGate.then(() => {
        res.writeHead(200, { 'x-app': 'ratings-v1' });
        res.end('slow done');
      });
      return true;
    }));
    apps.push(await startApp('ratings-v2'), await startApp('inbound-app'));
    v1 = { a1: apps[0].port, a2: apps[1].port, b1: apps[2].port, b2: apps[3].port, inbound: apps[4].port };
    deadPort = await freePort();
    outPort = await freePort();
    inPort = await freePort();
    inboundTarget = { address: '127.0.0.60', port: v1.inbound };
    echo = net.createServer({ allowHalfOpen: true }, (s) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('end', () => s.end(`echo:${Buffer.concat(chunks).toString()}`));
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    echoPort = (echo.address() as net.AddressInfo).port;

    await ads.listen();
    baseConfig('1');
    sidecar = new Sidecar({
      pilotAddress: `127.0.0.1:${ads.port}`,
      identity: { podName: 'productpage-1', namespace: 'default', instanceIp: '127.0.0.70', serviceAccount: 'bookinfo', workloadName: 'productpage-v1', labels: { app: 'productpage', version: 'v1' }, domain: 'cluster.local' },
      ports: { admin: 0, prometheus: 0, readiness: 0 },
      accessLog: (entry) => logLines.push(formatAccessLog(entry)),
      log: process.env.TPX_DEBUG ? (m) => console.error(m) : () => undefined,
      originalDst: (socket) => (socket.localPort === inPort ? inboundTarget : outboundTarget),
    });
    await sidecar.start();
    await waitFor('first config applied', () => ads.acked(TYPE_URL.routeConfiguration, '1'));
    await sidecar.settled();
  });

  after(async () => {
    agent.destroy();
    await sidecar?.stop();
    await ads.close();
    for (const a of apps) await closeServer(a.server);
    if (echo) await closeServer(echo);
  });

  it('ACKs every type after applying it and reports ready', async () => {
    for (const t of [TYPE_URL.cluster, TYPE_URL.clusterLoadAssignment, TYPE_URL.listener, TYPE_URL.routeConfiguration]) {
      assert.ok(ads.acked(t, '1'), `ACK for ${t}`);
    }
    const first = ads.requests[0];
    assert.equal(first.node?.id, 'sidecar~127.0.0.70~productpage-1.default~default.svc.cluster.local');
    const eds = ads.requests.filter((r) => r.typeUrl === TYPE_URL.clusterLoadAssignment).at(-1);
    assert.ok(eds?.resourceNames.includes(outboundCluster(9080, REVIEWS.fqdn)));
    const rds = ads.requests.filter((r) => r.typeUrl === TYPE_URL.routeConfiguration).at(-1);
    assert.deepEqual(rds?.resourceNames, ['9080']);
    const ports = sidecar.ports!;
    const ready = await fetch(`http://127.0.0.1:${ports.readiness}/healthz/ready`);
    assert.equal(ready.status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${ports.admin}/ready`)).status, 200);
    const dump = await (await fetch(`http://127.0.0.1:${ports.admin}/config_dump`)).json() as { configs: Array<Record<string, unknown>> };
    const listeners = dump.configs[0] as { versionInfo: string; dynamicListeners: Array<{ name: string }> };
    assert.equal(listeners.versionInfo, '1');
    assert.deepEqual(listeners.dynamicListeners.map((l) => l.name).sort(), ['0.0.0.0_9080', 'virtualInbound', 'virtualOutbound']);
    const clustersText = await (await fetch(`http://127.0.0.1:${ports.admin}/clusters`)).text();
    assert.match(clustersText, new RegExp(`outbound\\|9080\\|\\|reviews.default.svc.cluster.local::127.0.0.1:${v1.a1}::health_flags::healthy`));
    assert.match(clustersText, /warming.default.svc.cluster.local::warming::true/);
    const info = await (await fetch(`http://127.0.0.1:${ports.admin}/server_info`)).json() as { state: string };
    assert.equal(info.state, 'LIVE');
  });

  it('routes by Host header and round-robins over the endpoints', async () => {
    outboundTarget = { address: REVIEWS.clusterIP, port: 9080 };
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await request(outPort, `reviews:9080`, `/r${i}`);
      assert.equal(r.status, 200);
      seen.push(String(r.headers['x-app']));
    }
    assert.deepEqual(seen.filter((s) => s === 'reviews-1').length, 3);
    assert.deepEqual(seen.filter((s) => s === 'reviews-2').length, 3);
    for (let i = 1; i < seen.length; i++) assert.notEqual(seen[i], seen[i - 1], 'alternates');
    // Host kept, mesh headers added.
    const h = apps[0].seen.at(-1)!;
    assert.equal(h.host, 'reviews:9080');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.match(String(h['x-request-id']), /^[0-9a-f-]{36}$/);
    // Domains match with and without port, by short and full names and the cluster IP.
    for (const host of [REVIEWS.fqdn, `${REVIEWS.fqdn}:9080`, 'reviews.default', `${REVIEWS.clusterIP}:9080`]) {
      assert.equal((await request(outPort, host)).status, 200, host);
    }
  });

  it('applies prefixRewrite, hostRewriteLiteral, direct responses and route timeouts', async () => {
    const r = await request(outPort, 'reviews', '/api/items?x=1');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ratings-v2 GET /v2/items?x=1');
    assert.equal(apps[3].seen.at(-1)?.host, 'ratings.internal');
    const tea = await new Promise<Reply>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: outPort, path: '/teapot', headers: { host: 'reviews', 'x-tea': '1' }, agent }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => { body += c.toString(); });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      }).on('error', reject);
    });
    assert.equal(tea.status, 418);
    assert.equal(tea.body, 'short and stout');
    assert.equal((await request(outPort, 'reviews', '/teapot')).status, 200, 'header match required');
    const t = await request(outPort, 'reviews', '/hang');
    assert.equal(t.status, 504);
    assert.match(String(t.headers['x-trellis-reason']), /^UT upstream request timeout/);
  });

  it('streams request bodies to the upstream', async () => {
    const r = await request(outPort, 'reviews', '/post', 'POST', 'x'.repeat(100_000));
    assert.equal(r.status, 200);
    assert.ok(r.body.endsWith('x'.repeat(100_000)));
  });

  it('splits traffic over weighted clusters close to the weights', async () => {
    const counts: Record<string, number> = {};
    const N = 1000;
    for (let i = 0; i < N; i++) {
      const r = await request(outPort, 'ratings.default.svc.cluster.local');
      counts[String(r.headers['x-app'])] = (counts[String(r.headers['x-app'])] ?? 0) + 1;
    }
    const v1share = (counts['ratings-v1'] ?? 0) / N;
    assert.equal((counts['ratings-v1'] ?? 0) + (counts['ratings-v2'] ?? 0), N);
    // 3:1 weights -> 75%; 5 standard deviations of a binomial(1000, .75) is ~6.8%.
    assert.ok(Math.abs(v1share - 0.75) < 0.068, `v1 share ${v1share}`);
  });

  it('answers 404 NR when no route matches', async () => {
    const r = await request(outPort, 'nope.example');
    assert.equal(r.status, 404);
    assert.match(String(r.headers['x-trellis-reason']), /^NR /);
  });

  it('answers 503 UF when the endpoint refuses connections', async () => {
    const r = await request(outPort, 'broken');
    assert.equal(r.status, 503);
    assert.match(String(r.headers['x-trellis-reason']), /^UF upstream connect error/);
  });

  it('answers 503 UH for a cluster without endpoints and for a warming cluster', async () => {
    const empty = await request(outPort, 'empty');
    assert.equal(empty.status, 503);
    assert.match(String(empty.headers['x-trellis-reason']), /^UH no healthy upstream/);
    const warming = await request(outPort, 'warming');
    assert.equal(warming.status, 503);
    assert.match(String(warming.headers['x-trellis-reason']), /^UH .*warming/);
  });

  it('NACKs an invalid RouteConfiguration naming resource and field, and keeps serving the last good one', async () => {
    ads.set(TYPE_URL.routeConfiguration, '2-bad', [{ name: '9080', virtualHosts: [{ name: 'x', domains: ['*'], routes: [{ match: { prefix: '/' } }] }] }]);
    await waitFor('RDS NACK', () => ads.nacks(TYPE_URL.routeConfiguration).length > 0);
    const nack = ads.nacks(TYPE_URL.routeConfiguration)[0];
    assert.equal(nack.versionInfo, '1', 'NACK carries the last accepted version');
    assert.match(nack.errorDetail?.message ?? '', /RouteConfiguration "9080": virtualHosts\[0\]\.routes\[0\]: no action/);
    const r = await request(outPort, 'reviews');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['x-app']), /^reviews-/);
  });

  it('NACKs a listener with a bad address and keeps the old listeners', async () => {
    ads.set(TYPE_URL.listener, '3-bad', [
      virtualOutbound('127.0.0.1', outPort), serviceListener(9080),
      { ...(serviceListener(9081) as Record<string, unknown>), address: { socketAddress: { address: '999.1.2.3', portValue: 9081 } } },
    ]);
    await waitFor('LDS NACK', () => ads.nacks(TYPE_URL.listener).length > 0);
    const nack = ads.nacks(TYPE_URL.listener)[0];
    assert.equal(nack.versionInfo, '1');
    assert.match(nack.errorDetail?.message ?? '', /Listener "0.0.0.0_9081": address.socketAddress.address: "999.1.2.3" is not an IP address/);
    assert.equal((await request(outPort, 'reviews')).status, 200);
    const stats = await (await fetch(`http://127.0.0.1:${sidecar.ports!.admin}/stats`)).text();
    assert.match(stats, /listener_manager.lds.update_rejected: 1/);
  });

  it('applies a route change without dropping an in-flight request', async () => {
    let release!: () => void;
    slowGate = new Promise<void>((r) => { release = r; });
    const inflight = request(outPort, 'reviews', '/slow');
    await waitFor('slow request reached the app', () => apps[2].seen.some((h) => h.host === 'reviews'));
    // New version: reviews now goes to ratings-v2 for everything.
    baseConfig('4', { cluster: outboundCluster(9080, RATINGS.fqdn, 'v2') });
    await waitFor('RDS v4 ACK', () => ads.acked(TYPE_URL.routeConfiguration, '4'));
    const fresh = await request(outPort, 'reviews', '/after');
    assert.equal(fresh.headers['x-app'], 'ratings-v2', 'new requests use the new route');
    release();
    const old = await inflight;
    assert.equal(old.status, 200);
    assert.equal(old.headers['x-app'], 'ratings-v1', 'in-flight request finished on the old route');
    assert.equal(old.body, 'slow done');
    slowGate = undefined;
    baseConfig('5');
    await waitFor('RDS v5 ACK', () => ads.acked(TYPE_URL.routeConfiguration, '5'));
  });

  it('routes inbound connections by original destination port to the app on loopback', async () => {
    const r = await request(inPort, 'productpage.default.svc.cluster.local:9080', '/in');
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-app'], 'inbound-app');
  });

  it('passes unknown destinations through as TCP, half-close included', async () => {
    outboundTarget = { address: '127.0.0.1', port: echoPort };
    const reply = await new Promise<string>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: outPort, allowHalfOpen: true }, () => s.end('ping'));
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('end', () => { resolve(Buffer.concat(chunks).toString()); s.end(); });
      s.on('error', reject);
    });
    assert.equal(reply, 'echo:ping');
    outboundTarget = { address: REVIEWS.clusterIP, port: 9080 };
  });

  it('exposes Istio and Envoy metrics on /stats/prometheus and logs every request', async () => {
    const text = await (await fetch(`http://127.0.0.1:${sidecar.ports!.prometheus}/stats/prometheus`)).text();
    const outbound = text.split('\n').find((l) => l.startsWith('istio_requests_total{') && l.includes('reporter="source"')
      && l.includes('destination_service="ratings.default.svc.cluster.local"') && l.includes('destination_version="v2"') && l.includes('response_code="200"'));
    assert.ok(outbound, 'outbound istio_requests_total for ratings v2');
    assert.match(outbound, /source_workload="productpage-v1"/);
    assert.match(outbound, /destination_service_name="ratings"/);
    assert.match(outbound, /destination_service_namespace="default"/);
    assert.match(outbound, /connection_security_policy="unknown"/, 'Istio: the source reporter cannot know the policy');
    assert.ok(Number(outbound.split(' ').at(-1)) > 100);
    assert.match(text, /istio_requests_total\{[^}]*reporter="destination"[^}]*destination_version="v1"[^}]*response_code="200"/);
    assert.match(text, /istio_requests_total\{[^}]*response_code="404",response_flags="NR"/);
    assert.match(text, /istio_requests_total\{[^}]*response_code="503",response_flags="UF"/);
    assert.match(text, /istio_request_duration_milliseconds_bucket\{/);
    assert.match(text, /envoy_cluster_upstream_rq_total\{envoy_cluster_name="outbound\|9080\|\|reviews.default.svc.cluster.local"\} \d+/);
    assert.match(text, /envoy_cluster_upstream_rq\{envoy_response_code_class="2xx",envoy_cluster_name="outbound\|9080\|v1\|ratings.default.svc.cluster.local"\} \d+/);
    assert.match(text, /istio_tcp_connections_opened_total\{/);
    const line = logLines.find((l) => l.includes('"GET /r0 HTTP/1.1" 200'));
    assert.ok(line, 'access log line');
    assert.match(line, /outbound\|9080\|\|reviews.default.svc.cluster.local/);
    assert.ok(logLines.some((l) => / 404 NR /.test(l)));
  });

  it('reconnects to the control plane after the stream drops', async () => {
    const before = ads.requests.length;
    ads.dropStreams();
    await waitFor('reconnect', () => ads.requests.length > before && ads.requests.slice(before).some((r) => r.node?.id !== undefined), 15_000);
    assert.equal((await request(outPort, 'reviews')).status, 200);
  });
});
