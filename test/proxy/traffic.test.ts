// Traffic features of the router and clusters through real HTTP, configured by the test ADS
// server: route timeouts, retries, safe retries, fault injection, circuit breakers, outlier
// detection, ring hash, header mutations, rewrites and redirects.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Sidecar } from '../../proxy/sidecar.js';
import { TestAdsServer } from './ads-server.js';
import { assignment, closeServer, edsCluster, freePort, startApp, virtualOutbound, waitFor } from './fixtures.js';

const ADS = { ads: {}, resourceApiVersion: 'V3' };
const FAULT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: string }

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
function request(port: number, host: string, path = '/', headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host, ...headers }, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('traffic features (retries, timeouts, faults, circuit breakers, outlier detection, LB, headers)', () => {
  const ads = new TestAdsServer();
  const apps: Array<Awaited<ReturnType<typeof startApp>>> = [];
  const failures = new Map<string, number>();
  let held: Array<() => void> = [];
  let sidecar: Sidecar;
  let outPort = 0;
  let closer: net.Server;
  let closerPort = 0;
  let closerConnections = 0;

  // One behaviour for every app: fail the first N requests of a key, hang, or hold.
  const behave = (name: string) => (req: http.IncomingMessage, res: http.ServerResponse): boolean => {
    const key = String(req.headers['x-key'] ?? '');
    const fail = Number(req.headers['x-fail-times'] ?? 0);
    if (req.url?.startsWith('/hang')) return true;
    if (req.url?.startsWith('/hold')) { held.push(() => { res.writeHead(200, { 'x-app': name }); res.end('released'); }); return true; }
    if (req.url?.startsWith('/bad') && name.startsWith('bad')) { res.writeHead(500, { 'x-app': name }); res.end(); return true; }
    const seen = failures.get(key) ?? 0;
    if (key && seen < fail) {
      failures.set(key, seen + 1);
      res.writeHead(Number(req.headers['x-fail-status'] ?? 503), { 'x-app': name });
      res.end('failing');
      return true;
    }
    if (req.url?.startsWith('/hang-first') ) return true;
    return false;
  };

  const c = (n: string): string => `outbound|80||${n}.test.svc.cluster.local`;
  const route = (prefix: string, action: object, extra: object = {}): object => ({ match: { prefix }, route: action, ...extra });

  before(async () => {
    for (const n of ['a1', 'a2', 'a3', 'bad1', 'bad2', 'ok3']) apps.push(await startApp(n, '127.0.0.1', behave(n)));
    const port = (n: string): number => apps[['a1', 'a2', 'a3', 'bad1', 'bad2', 'ok3'].indexOf(n)].port;
    // Answers one request per connection with keep-alive, then drops the connection when the
    // next request arrives without answering: a server closing a reused idle connection.
    closer = net.createServer((s) => {
      closerConnections++;
      let served = false;
      s.on('data', () => {
        if (served) { s.destroy(); return; }
        served = true;
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok');
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => closer.listen(0, '127.0.0.1', () => r()));
    closerPort = (closer.address() as net.AddressInfo).port;
    outPort = await freePort();
    await ads.listen();

    const faultFilter = { name: 'envoy.filters.http.fault', typedConfig: { '@type': FAULT_TYPE } };
    const listener = {
      name: '0.0.0.0_80', address: { socketAddress: { address: '0.0.0.0', portValue: 80 } }, bindToPort: { value: false },
      filterChains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typedConfig: {
        '@type': TYPE_URL.httpConnectionManager, statPrefix: 'outbound_80', rds: { routeConfigName: '80', configSource: ADS },
        httpFilters: [faultFilter, { name: 'envoy.filters.http.router', typedConfig: { '@type': TYPE_URL.router } }],
      } }] }],
    };
    const retry5xx = { retryOn: '5xx', numRetries: { value: 2 }, retryHostPredicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }], hostSelectionRetryMaxAttempts: '3' };
    const routes = {
      name: '80',
      requestHeadersToAdd: [{ header: { key: 'x-level', value: 'config' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
      virtualHosts: [
        {
          name: 'retry', domains: ['retry'], includeRequestAttemptCount: true, includeAttemptCountInResponse: true,
          routes: [
            route('/r5xx', { cluster: c('a'), retryPolicy: retry5xx }),
            route('/exhaust', { cluster: c('a'), retryPolicy: { retryOn: 'gateway-error', numRetries: { value: 1 } } }),
            route('/codes', { cluster: c('a'), retryPolicy: { retryOn: 'retriable-status-codes', retriableStatusCodes: [418], numRetries: { value: 3 } } }),
            route('/hang-first', { cluster: c('a1'), retryPolicy: { retryOn: 'reset', numRetries: { value: 1 }, perTryTimeout: { nanos: 150_000_000 } } }),
            route('/hang', { cluster: c('a'), timeout: { nanos: 150_000_000 } }),
            route('/', { cluster: c('a') }),
          ],
        },
        { name: 'keepalive', domains: ['keepalive'], routes: [route('/', { cluster: c('closer') })] },
        {
          name: 'fault', domains: ['fault'], routes: [
            route('/abort', { cluster: c('a') }, { typedPerFilterConfig: { 'envoy.filters.http.fault': { '@type': FAULT_TYPE, abort: { httpStatus: 418, percentage: { numerator: 100, denominator: 'HUNDRED' } } } } }),
            route('/delay', { cluster: c('a') }, { typedPerFilterConfig: { 'envoy.filters.http.fault': { '@type': FAULT_TYPE, delay: { fixedDelay: { nanos: 300_000_000 }, percentage: { numerator: 1_000_000, denominator: 'MILLION' } } } } }),
            route('/never', { cluster: c('a') }, { typedPerFilterConfig: { 'envoy.filters.http.fault': { '@type': FAULT_TYPE, abort: { httpStatus: 500, percentage: { numerator: 0 } } } } }),
          ],
        },
        { name: 'cb', domains: ['cb'], routes: [route('/', { cluster: c('cb') })] },
        { name: 'pending', domains: ['pending'], routes: [route('/', { cluster: c('pending') })] },
        { name: 'od', domains: ['od'], routes: [route('/', { cluster: c('od') })] },
        { name: 'panic', domains: ['panic'], routes: [route('/', { cluster: c('panic') })] },
        { name: 'ring', domains: ['ring'], routes: [route('/', { cluster: c('ring'), hashPolicy: [{ header: { headerName: 'x-user' } }] })] },
        {
          name: 'hdr', domains: ['hdr'],
          requestHeadersToAdd: [{ header: { key: 'x-vh', value: 'vh' } }, { header: { key: 'x-level', value: 'vh' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
          responseHeadersToAdd: [{ header: { key: 'x-served-by', value: 'trellis' } }],
          routes: [
            { match: { prefix: '/old' }, redirect: { hostRedirect: 'new.example', prefixRewrite: '/new', responseCode: 'PERMANENT_REDIRECT' } },
            { match: { prefix: '/secure' }, redirect: { httpsRedirect: true } },
            route('/regex', { cluster: c('a1'), regexRewrite: { pattern: { regex: '^/regex/([a-z]+)/(\\d+)$' }, substitution: '/items/\\2/\\1' } }),
            route('/', { cluster: c('a1') }, {
              requestHeadersToAdd: [{ header: { key: 'x-route', value: 'r' } }, { header: { key: 'x-level', value: 'route' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
              requestHeadersToRemove: ['x-secret'],
              responseHeadersToRemove: ['x-remote'],
            }),
          ],
        },
      ],
    };
    const clusters = [
      edsCluster(c('a')), edsCluster(c('a1')), edsCluster(c('closer')),
      { ...(edsCluster(c('cb')) as object), circuitBreakers: { thresholds: [{ maxRequests: { value: 1 } }] } },
      { ...(edsCluster(c('pending')) as object), circuitBreakers: { thresholds: [{ priority: 'DEFAULT', maxConnections: { value: 1 }, maxPendingRequests: { value: 1 } }] } },
      { ...(edsCluster(c('od')) as object), outlierDetection: { consecutive_5xx: { value: 2 }, interval: { nanos: 50_000_000 }, baseEjectionTime: { seconds: 30 }, maxEjectionPercent: { value: 100 } } },
      { ...(edsCluster(c('panic')) as object), outlierDetection: { consecutive_5xx: { value: 1 }, baseEjectionTime: { seconds: 30 }, maxEjectionPercent: { value: 100 } } },
      { ...(edsCluster(c('ring')) as object), lbPolicy: 'RING_HASH', ringHashLbConfig: { minimumRingSize: { value: '64' } } },
    ];
    ads.setAll('1', {
      [TYPE_URL.cluster]: clusters,
      [TYPE_URL.clusterLoadAssignment]: [
        assignment(c('a'), [['127.0.0.1', port('a1')], ['127.0.0.1', port('a2')], ['127.0.0.1', port('a3')]]),
        assignment(c('a1'), [['127.0.0.1', port('a1')]]),
        assignment(c('closer'), [['127.0.0.1', closerPort]]),
        assignment(c('cb'), [['127.0.0.1', port('a1')]]),
        assignment(c('pending'), [['127.0.0.1', port('a2')]]),
        assignment(c('od'), [['127.0.0.1', port('bad1')], ['127.0.0.1', port('a2')], ['127.0.0.1', port('ok3')]]),
        assignment(c('panic'), [['127.0.0.1', port('bad1')], ['127.0.0.1', port('bad2')]]),
        assignment(c('ring'), [['127.0.0.1', port('a1')], ['127.0.0.1', port('a2')], ['127.0.0.1', port('a3')]]),
      ],
      [TYPE_URL.listener]: [virtualOutbound('127.0.0.1', outPort), listener],
      [TYPE_URL.routeConfiguration]: [routes],
    });
    sidecar = new Sidecar({
      pilotAddress: `127.0.0.1:${ads.port}`,
      identity: { podName: 'client-1', namespace: 'test', instanceIp: '127.0.0.71', serviceAccount: 'client', workloadName: 'client', labels: { app: 'client' }, domain: 'cluster.local' },
      ports: { admin: 0, prometheus: 0, readiness: 0 },
      accessLog: () => undefined,
      log: () => undefined,
      originalDst: () => ({ address: '127.0.0.90', port: 80 }),
    });
    await sidecar.start();
    await waitFor('config applied', () => ads.acked(TYPE_URL.routeConfiguration, '1'));
    assert.deepEqual(ads.nacks(TYPE_URL.routeConfiguration).map((n) => n.errorDetail?.message), []);
    await sidecar.settled();
  });

  after(async () => {
    for (const h of held) h();
    agent.destroy();
    await sidecar?.stop();
    await ads.close();
    for (const a of apps) await closeServer(a.server);
    if (closer) await closeServer(closer);
  });

  const stat = (name: string): number => sidecar.stats.get(name);

  it('retries 5xx on other hosts and reports x-envoy-attempt-count', async () => {
    const before = stat(`cluster.${c('a')}.upstream_rq_retry`);
    const r = await request(outPort, 'retry', '/r5xx', { 'x-key': 'k1', 'x-fail-times': '2' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-envoy-attempt-count'], '3');
    assert.equal(stat(`cluster.${c('a')}.upstream_rq_retry`) - before, 2);
    // previous_hosts: the three attempts went to three different hosts.
    const hosts = apps.slice(0, 3).filter((a) => a.seen.some((h) => h['x-key'] === 'k1'));
    assert.equal(hosts.length, 3);
    const attempts = apps.slice(0, 3).flatMap((a) => a.seen.filter((h) => h['x-key'] === 'k1').map((h) => h['x-envoy-attempt-count'])).sort();
    assert.deepEqual(attempts, ['1', '2', '3']);
  });

  it('forwards the last response with URX when retries are exhausted', async () => {
    const r = await request(outPort, 'retry', '/exhaust', { 'x-key': 'k2', 'x-fail-times': '5', 'x-fail-status': '502' });
    assert.equal(r.status, 502);
    assert.equal(r.headers['x-envoy-attempt-count'], '2');
    assert.equal(failures.get('k2'), 2);
    assert.ok(stat(`cluster.${c('a')}.upstream_rq_retry_limit_exceeded`) >= 1);
    // 5xx is not in gateway-error: no retry.
    const r500 = await request(outPort, 'retry', '/exhaust', { 'x-key': 'k3', 'x-fail-times': '5', 'x-fail-status': '500' });
    assert.equal(r500.status, 500);
    assert.equal(failures.get('k3'), 1);
  });

  it('retries retriable status codes', async () => {
    const r = await request(outPort, 'retry', '/codes', { 'x-key': 'k4', 'x-fail-times': '2', 'x-fail-status': '418' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-envoy-attempt-count'], '3');
  });

  it('answers 504 UT on route timeout and retries after a per-try timeout', async () => {
    const t0 = Date.now();
    const r = await request(outPort, 'retry', '/hang');
    assert.equal(r.status, 504);
    assert.match(String(r.headers['x-trellis-reason']), /^UT upstream request timeout/);
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(stat(`cluster.${c('a')}.upstream_rq_timeout`), 1);
    // Both attempts hang: per-try timeout, one retry, then 504 UT with URX.
    const p = await request(outPort, 'retry', '/hang-first');
    assert.equal(p.status, 504);
    assert.match(String(p.headers['x-trellis-reason']), /^UT,URX /);
    assert.equal(stat(`cluster.${c('a1')}.upstream_rq_per_try_timeout`), 2);
  });

  it('retries transparently when a reused keep-alive connection was closed by the server', async () => {
    const a = await request(outPort, 'keepalive', '/one');
    assert.equal(a.status, 200);
    const b = await request(outPort, 'keepalive', '/two');
    assert.equal(b.status, 200, String(b.headers['x-trellis-reason']));
    assert.equal(closerConnections, 2, 'the retry used a new connection');
  });

  it('injects aborts and delays per route (FI, DI)', async () => {
    const a = await request(outPort, 'fault', '/abort');
    assert.equal(a.status, 418);
    assert.match(String(a.headers['x-trellis-reason']), /^FI /);
    const t0 = Date.now();
    const d = await request(outPort, 'fault', '/delay');
    assert.equal(d.status, 200);
    assert.ok(Date.now() - t0 >= 290, 'delayed');
    assert.equal((await request(outPort, 'fault', '/never')).status, 200);
    assert.equal(stat('http.outbound_80.fault.aborts_injected'), 1);
    assert.equal(stat('http.outbound_80.fault.delays_injected'), 1);
  });

  it('rejects over max_requests and max_pending_requests with 503 UO naming the limit', async () => {
    const first = request(outPort, 'cb', '/hold');
    await waitFor('held', () => held.length === 1);
    const r = await request(outPort, 'cb', '/x');
    assert.equal(r.status, 503);
    assert.equal(r.headers['x-trellis-reason'], `UO max_requests (limit 1) reached for cluster ${c('cb')}`);
    held.shift()?.();
    assert.equal((await first).status, 200);

    const p1 = request(outPort, 'pending', '/hold');
    await waitFor('held', () => held.length === 1);
    const p2 = request(outPort, 'pending', '/queued'); // waits for the one connection
    await waitFor('pending', () => stat(`cluster.${c('pending')}.upstream_cx_overflow`) === 1);
    const p3 = await request(outPort, 'pending', '/x');
    assert.equal(p3.status, 503);
    assert.equal(p3.headers['x-trellis-reason'], `UO max_pending_requests (limit 1) reached for cluster ${c('pending')}`);
    held.shift()?.();
    assert.equal((await p1).status, 200);
    assert.equal((await p2).status, 200);
    assert.ok(stat(`cluster.${c('pending')}.upstream_rq_pending_overflow`) >= 1);
  });

  it('ejects a host after consecutive 5xx and enters panic mode when too few are healthy', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 9; i++) codes.push((await request(outPort, 'od', '/bad')).status);
    assert.equal(codes.filter((s) => s === 500).length, 2, `two 500s then ejected: ${codes.join(',')}`);
    const clusters = await (await fetch(`http://127.0.0.1:${sidecar.ports!.admin}/clusters`)).text();
    assert.match(clusters, new RegExp(`${c('od').replace(/\|/g, '\\|')}::127.0.0.1:${apps[3].port}::health_flags::/failed_outlier_check`));
    assert.equal(stat(`cluster.${c('od')}.outlier_detection.ejections_enforced_total`), 1);
    // Both hosts of "panic" fail: the second ejection leaves 0% healthy, below the 50% threshold.
    for (let i = 0; i < 4; i++) await request(outPort, 'panic', '/bad');
    const r = await request(outPort, 'panic', '/bad');
    assert.equal(r.status, 500, 'panic mode still sends traffic');
    const text = await (await fetch(`http://127.0.0.1:${sidecar.ports!.admin}/clusters`)).text();
    assert.match(text, /panic\.test\.svc\.cluster\.local::panic_mode::true/);
    assert.ok(stat(`cluster.${c('panic')}.lb_healthy_panic`) > 0);
  });

  it('RING_HASH keeps a header hash on one host', async () => {
    const hostsFor = async (user: string): Promise<Set<string>> => {
      const s = new Set<string>();
      for (let i = 0; i < 3; i++) s.add(String((await request(outPort, 'ring', '/', { 'x-user': user })).headers['x-app']));
      return s;
    };
    const all = new Set<string>();
    // The ring depends on the hosts' random ports: enough users that all landing on one host
    // is vanishingly unlikely (20 users, 2 hosts: about 2^-19 for an even ring).
    for (let n = 0; n < 20; n++) {
      const u = `user-${n}`;
      const s = await hostsFor(u);
      assert.equal(s.size, 1, `${u} sticks to one host`);
      all.add([...s][0]);
    }
    assert.ok(all.size >= 2, 'users spread over hosts');
  });

  it('adds and removes headers at route, virtual host and config level; rewrites; redirects', async () => {
    const r = await request(outPort, 'hdr', '/p', { 'x-secret': 's', 'x-level': 'client' });
    assert.equal(r.status, 200);
    const seen = apps[0].seen.at(-1)!;
    assert.equal(seen['x-secret'], undefined);
    assert.equal(seen['x-route'], 'r');
    assert.equal(seen['x-vh'], 'vh');
    assert.equal(seen['x-level'], 'config', 'route, then virtual host, then config: the config level is applied last');
    assert.equal(r.headers['x-served-by'], 'trellis');
    assert.equal(r.headers['x-remote'], undefined);
    const rw = await request(outPort, 'hdr', '/regex/abc/42?q=1');
    assert.equal(rw.body, 'a1 GET /items/42/abc?q=1');
    const red = await request(outPort, 'hdr', '/old/x?y=1');
    assert.equal(red.status, 308);
    assert.equal(red.headers.location, 'http://new.example/new/x?y=1');
    const sec = await request(outPort, 'hdr:8080', '/secure/a');
    assert.equal(sec.status, 301);
    assert.equal(sec.headers.location, 'https://hdr/secure/a');
  });
});
