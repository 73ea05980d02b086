// A retry keeps the weighted cluster chosen for the request, as Envoy does: the weighted
// cluster is selected once per request, and retries re-pick only the host inside that
// cluster (previous-host avoidance works within it). An 80/20 route whose 80 % side resets
// every connection must not leak retries over to the 20 % side.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Sidecar } from '../../proxy/sidecar.js';
import { TestAdsServer } from './ads-server.js';
import { closeServer, freePort, startApp, waitFor } from './fixtures.js';

const ROUTER = { name: 'envoy.filters.http.router', typedConfig: { '@type': TYPE_URL.router } };
const RETRY = {
  retryOn: 'reset,connect-failure', numRetries: { value: 3 }, hostSelectionRetryMaxAttempts: '5',
  retryHostPredicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }],
  // A short back-off keeps the test quick; the cluster choice does not depend on it.
  retryBackOff: { baseInterval: { nanos: 1_000_000 }, maxInterval: { nanos: 5_000_000 } },
};

function cluster(name: string, hosts: number[]): object {
  return {
    name, type: 'STATIC', connectTimeout: { seconds: 1 },
    loadAssignment: { clusterName: name, endpoints: [{ lbEndpoints: hosts.map((port) => ({ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } } })) }] },
  };
}

function listener(port: number): object {
  const route = (prefix: string, v1: string): object => ({
    match: { prefix },
    route: { retryPolicy: RETRY, weightedClusters: { clusters: [{ name: v1, weight: { value: 80 } }, { name: 'v2', weight: { value: 20 } }] } },
  });
  return {
    name: 'front', address: { socketAddress: { address: '127.0.0.1', portValue: port } },
    filterChains: [{ filters: [{
      name: 'envoy.filters.network.http_connection_manager',
      typedConfig: {
        '@type': TYPE_URL.httpConnectionManager, statPrefix: 'front', httpFilters: [ROUTER],
        routeConfig: { name: 'front', virtualHosts: [{ name: 'front', domains: ['*'], routes: [route('/broken', 'v1-broken'), route('/mixed', 'v1-mixed')] }] },
      },
    }] }],
  };
}

describe('retries and weighted clusters', () => {
  const ads = new TestAdsServer();
  let proxy: Sidecar;
  let resetter: net.Server;
  let v1: Awaited<ReturnType<typeof startApp>>;
  let v2: Awaited<ReturnType<typeof startApp>>;
  let port = 0;
  /** Requests the resetting v1 host received (each one an attempt, reset at once). */
  let resets = 0;

  before(async () => {
    resetter = net.createServer((s) => s.once('data', () => { resets++; s.resetAndDestroy(); }));
    await new Promise<void>((r) => resetter.listen(0, '127.0.0.1', () => r()));
    v1 = await startApp('v1');
    v2 = await startApp('v2');
    port = await freePort();
    const resetPort = (resetter.address() as net.AddressInfo).port;
    const adsPort = await ads.listen();
    ads.setAll('1', {
      [TYPE_URL.cluster]: [cluster('v1-broken', [resetPort]), cluster('v1-mixed', [resetPort, v1.port]), cluster('v2', [v2.port])],
      [TYPE_URL.listener]: [listener(port)],
    });
    proxy = new Sidecar({
      pilotAddress: `127.0.0.1:${adsPort}`, ports: { admin: 0, prometheus: 0, readiness: 0 }, accessLog: () => undefined, log: () => undefined,
      identity: { podName: 'gw-1', namespace: 'test', instanceIp: '127.0.0.1', serviceAccount: 'gw', workloadName: 'gw', labels: { app: 'gw' }, domain: 'cluster.local' },
    });
    await proxy.start();
    await waitFor('LDS ACK', () => ads.acked(TYPE_URL.listener, '1'));
    await proxy.settled();
  });

  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

  after(async () => {
    agent.destroy();
    await proxy?.stop();
    await ads.close();
    for (const s of [v1?.server, v2?.server]) if (s) await closeServer(s);
    if (resetter) await new Promise((r) => resetter.close(r));
  });

  function get(path: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => { body += c.toString(); });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('a request that drew the resetting 80 % cluster stays there through all its retries (503), never moving to the 20 % one', async () => {
    const n = 100;
    const v2Before = v2.seen.length;
    resets = 0;
    let failed = 0;
    let served = 0;
    for (let i = 0; i < n; i++) {
      const r = await get('/broken');
      if (r.status === 503) failed++;
      else {
        assert.equal(r.status, 200, r.body);
        assert.equal(r.body, 'v2 GET /broken', 'only v2 can answer');
        served++;
      }
    }
    assert.equal(failed + served, n);
    assert.equal(v2.seen.length - v2Before, served, 'v2 saw each of its requests once: no retry came over from v1');
    assert.equal(resets, failed * 4, `each failed request made 1 + 3 attempts, all on v1 (${resets} attempts for ${failed} failures)`);
    // The split itself: 80 % of the requests drew v1 (binomial, n = 100: ± 4 sd is ± 0.16).
    assert.ok(Math.abs(failed / n - 0.8) <= 0.16, `v1 drawn ${failed} times of ${n}`);
  });

  it('with a healthy host beside the resetting one, a retry goes to that host of the same cluster (previous-host avoidance inside it)', async () => {
    const n = 200;
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const r = await get('/mixed');
      assert.equal(r.status, 200, r.body);
      const who = r.body.split(' ')[0];
      counts[who] = (counts[who] ?? 0) + 1;
    }
    const share = (counts.v1 ?? 0) / n;
    // n = 200: one sd is 0.028; ± 0.12 is over 4 sd.
    assert.ok(Math.abs(share - 0.8) <= 0.12, `v1 share ${share} stays 0.80 with retries inside v1 (${JSON.stringify(counts)})`);
  });
});
