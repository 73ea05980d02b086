// The admin API's /logging (Envoy's: list loggers, change one or all levels at run time, bad
// names rejected) and the expiry of idle metric series in /stats/prometheus, through a real
// sidecar fed by the test ADS server and real HTTP.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Sidecar } from '../../proxy/sidecar.js';
import { TestAdsServer } from './ads-server.js';
import { assignment, closeServer, edsCluster, freePort, routeConfiguration, serviceListener, startApp, virtualOutbound, waitFor } from './fixtures.js';

function get(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', headers: { host, connection: 'close' } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); }).on('error', reject);
  });
}

describe('admin: /logging and metric series expiry', () => {
  const ads = new TestAdsServer();
  const lines: string[] = [];
  let sidecar: Sidecar;
  let app: Awaited<ReturnType<typeof startApp>>;
  let outPort = 0;
  let admin = '';

  before(async () => {
    app = await startApp('web');
    outPort = await freePort();
    const vh = (name: string) => ({ name, domains: [name], routes: [{ match: { prefix: '/' }, route: { cluster: name } }] });
    ads.setAll('1', {
      [TYPE_URL.cluster]: [edsCluster('alpha'), edsCluster('beta')],
      [TYPE_URL.clusterLoadAssignment]: [assignment('alpha', [['127.0.0.1', app.port]]), assignment('beta', [['127.0.0.1', app.port]])],
      [TYPE_URL.listener]: [virtualOutbound('127.0.0.1', outPort), serviceListener(9080)],
      [TYPE_URL.routeConfiguration]: [routeConfiguration(9080, [vh('alpha'), vh('beta')])],
    });
    await ads.listen();
    sidecar = new Sidecar({
      pilotAddress: `127.0.0.1:${ads.port}`,
      identity: { podName: 'a-1', namespace: 'test', instanceIp: '127.0.0.93', serviceAccount: 'a', workloadName: 'a', labels: { app: 'a' }, domain: 'cluster.local' },
      ports: { admin: 0, prometheus: 0, readiness: 0 },
      accessLog: () => undefined,
      log: (m) => lines.push(m),
      metricExpiryMs: 400,
      originalDst: () => ({ address: '127.0.0.202', port: 9080 }),
    });
    await sidecar.start();
    await waitFor('config acked', () => ads.acked(TYPE_URL.routeConfiguration, '1'));
    await sidecar.settled();
    admin = `http://127.0.0.1:${sidecar.ports!.admin}`;
  });

  after(async () => {
    await sidecar?.stop();
    await ads.close();
    await closeServer(app.server);
  });

  it('lists loggers and their levels', async () => {
    const text = await (await fetch(`${admin}/logging`)).text();
    assert.match(text, /^active loggers:\n/);
    assert.match(text, /  http: info\n/);
    assert.match(text, /  config: info\n/);
  });

  it('turns per-request debug lines on and off for one logger', async () => {
    const debugLines = () => lines.filter((l) => l.startsWith('http: GET alpha/'));
    assert.equal(await get(outPort, 'alpha'), 200);
    assert.equal(debugLines().length, 0, 'info level: no per-request lines');
    const set = await fetch(`${admin}/logging?http=debug`, { method: 'POST' });
    assert.equal(set.status, 200);
    assert.match(await set.text(), /  http: debug\n/);
    assert.equal(await get(outPort, 'alpha'), 200);
    await waitFor('debug line', () => debugLines().length === 1);
    assert.match(debugLines()[0], /-> alpha 200 - /);
    await fetch(`${admin}/logging?level=info`, { method: 'POST' });
    assert.equal(await get(outPort, 'alpha'), 200);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(debugLines().length, 1, 'back to info for all loggers');
  });

  it('silences a logger set to error and rejects unknown loggers or levels naming them', async () => {
    await fetch(`${admin}/logging?config=error`, { method: 'POST' });
    const before = lines.length;
    ads.dropStreams(); // the proxy logs the stream end on the config logger (info)
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(lines.slice(before).filter((l) => l.startsWith('xds')).length, 0);
    await fetch(`${admin}/logging?paths=config:info`, { method: 'POST' });
    assert.match(await (await fetch(`${admin}/logging`)).text(), /  config: info\n/);
    const bad = await fetch(`${admin}/logging?nosuch=debug`, { method: 'POST' });
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /unknown logger "nosuch"/);
    const badLevel = await fetch(`${admin}/logging?http=loud`, { method: 'POST' });
    assert.equal(badLevel.status, 400);
    assert.match(await badLevel.text(), /unknown level "loud" for logger "http"/);
    assert.equal((await fetch(`${admin}/logging?http=debug`)).status, 405, 'changes need POST');
  });

  it('drops metric series not updated within the expiry and keeps live ones', async () => {
    const prom = async () => (await fetch(`http://127.0.0.1:${sidecar.ports!.prometheus}/stats/prometheus`)).text();
    assert.equal(await get(outPort, 'beta'), 200);
    assert.match(await prom(), /istio_requests_total\{[^}]*destination_service="beta"[^}]*\} 1/);
    assert.match(await prom(), /envoy_cluster_upstream_rq_total\{envoy_cluster_name="beta"\} 1/);
    // Keep alpha's series fresh while beta's ages past 400 ms.
    for (let i = 0; i < 6; i++) { assert.equal(await get(outPort, 'alpha'), 200); await new Promise((r) => setTimeout(r, 150)); }
    await waitFor('beta expired', async () => !/destination_service="beta"/.test(await prom()), 3000);
    const text = await prom();
    assert.match(text, /destination_service="alpha"/);
    assert.doesNotMatch(text, /envoy_cluster_name="beta"/);
    // A new request for beta starts its series again from 1.
    assert.equal(await get(outPort, 'beta'), 200);
    assert.match(await prom(), /istio_requests_total\{[^}]*destination_service="beta"[^}]*\} 1/);
  });
});
