// The sidecar on the delta ADS stream (ISTIO_DELTA_XDS), fed by a real delta server over
// gRPC and serving real HTTP: wildcard CDS/LDS and named EDS/RDS subscriptions, per-resource
// versions, only changed resources sent, removals, unsubscribe of a removed cluster's EDS,
// NACK with error_detail keeping the last good config, and a reconnect that declares
// initial_resource_versions and keeps serving meanwhile.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Sidecar } from '../../proxy/sidecar.js';
import { parseDeltaXds } from '../../proxy/config/bootstrap.js';
import { TestDeltaAdsServer } from './delta-ads-server.js';
import {
  assignment, closeServer, edsCluster, freePort, outboundCluster, routeConfiguration, serviceListener, startApp, virtualHost,
  virtualOutbound, waitFor,
} from './fixtures.js';

const A = { fqdn: 'a.default.svc.cluster.local', port: 9080, clusterIP: '127.0.0.80' };
const B = { fqdn: 'b.default.svc.cluster.local', port: 9080, clusterIP: '127.0.0.81' };
const CA = outboundCluster(9080, A.fqdn);
const CB = outboundCluster(9080, B.fqdn);

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
function get(port: number, host: string): Promise<{ status: number; app: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', headers: { host }, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, app: String(res.headers['x-app'] ?? '') }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('delta xDS client (DeltaAggregatedResources)', () => {
  const ads = new TestDeltaAdsServer();
  const apps: Array<Awaited<ReturnType<typeof startApp>>> = [];
  let sidecar: Sidecar;
  let outPort = 0;

  const config = (endpointOfA: number, withB = true): Partial<Record<string, object[]>> => ({
    [TYPE_URL.cluster]: [edsCluster(CA), ...(withB ? [edsCluster(CB)] : [])],
    [TYPE_URL.clusterLoadAssignment]: [assignment(CA, [['127.0.0.1', endpointOfA]]), ...(withB ? [assignment(CB, [['127.0.0.1', apps[2].port]])] : [])],
    [TYPE_URL.listener]: [virtualOutbound('127.0.0.1', outPort), serviceListener(9080)],
    [TYPE_URL.routeConfiguration]: [routeConfiguration(9080, [virtualHost(A, { cluster: CA }), ...(withB ? [virtualHost(B, { cluster: CB })] : [])])],
  });

  before(async () => {
    apps.push(await startApp('a1'), await startApp('a2'), await startApp('b1'));
    outPort = await freePort();
    await ads.listen();
    ads.setAll(config(apps[0].port));
    sidecar = new Sidecar({
      pilotAddress: `127.0.0.1:${ads.port}`,
      deltaXds: true,
      identity: { podName: 'client-1', namespace: 'default', instanceIp: '127.0.0.90', serviceAccount: 'client', workloadName: 'client', labels: { app: 'client' }, domain: 'cluster.local' },
      ports: { admin: 0, prometheus: 0, readiness: 0 },
      accessLog: () => undefined,
      log: process.env.TPX_DEBUG ? (m) => console.error(m) : () => undefined,
      originalDst: () => ({ address: A.clusterIP, port: 9080 }),
    });
    await sidecar.start();
    await waitFor('routes applied', () => sidecar.config.current.routes.has('9080'));
    await sidecar.settled();
  });

  after(async () => {
    agent.destroy();
    await sidecar?.stop();
    await ads.close();
    for (const a of apps) await closeServer(a.server);
  });

  it('subscribes CDS/LDS as wildcards and EDS/RDS by name, ACKs every response and serves traffic', async () => {
    const first = (t: string) => ads.requests.find((r) => r.typeUrl === t);
    assert.equal(ads.requests[0].node?.id, 'sidecar~127.0.0.90~client-1.default~default.svc.cluster.local');
    assert.deepEqual(first(TYPE_URL.cluster)?.resourceNamesSubscribe, []);
    assert.deepEqual(first(TYPE_URL.listener)?.resourceNamesSubscribe, []);
    assert.deepEqual([...(first(TYPE_URL.clusterLoadAssignment)?.resourceNamesSubscribe ?? [])].sort(), [CA, CB].sort());
    assert.deepEqual(first(TYPE_URL.routeConfiguration)?.resourceNamesSubscribe, ['9080']);
    for (const s of ads.sent) {
      await waitFor(`reply to nonce ${s.nonce}`, () => ads.reply(s.nonce) !== undefined);
      assert.equal(ads.reply(s.nonce)?.errorDetail ?? undefined, undefined, `ACK of ${s.typeUrl}`);
    }
    assert.equal((await get(outPort, A.fqdn)).app, 'a1');
    assert.equal((await get(outPort, B.fqdn)).app, 'b1');
    // Each resource keeps the version the server gave it.
    const cluster = sidecar.config.current.clusters.get(CA);
    assert.match(cluster?.version ?? '', /^[0-9a-f]{12}$/);
    assert.notEqual(cluster?.version, sidecar.config.current.clusters.get(CB)?.version);
  });

  it('applies a response carrying only the changed resource', async () => {
    const before = ads.sent.length;
    ads.setAll(config(apps[1].port));
    await waitFor('A moved to a2', async () => (await get(outPort, A.fqdn)).app === 'a2');
    const sent = ads.sent.slice(before);
    assert.deepEqual(sent.map((s) => [s.typeUrl, s.names]), [[TYPE_URL.clusterLoadAssignment, [CA]]]);
    assert.equal((await get(outPort, B.fqdn)).app, 'b1', 'B untouched');
  });

  it('removes what the server removes and unsubscribes the removed cluster\'s assignment', async () => {
    ads.setAll(config(apps[1].port, false));
    await waitFor('cluster B removed', () => !sidecar.config.current.clusters.has(CB));
    assert.deepEqual(ads.lastSent(TYPE_URL.cluster)?.removed, [CB]);
    await waitFor('EDS unsubscribe', () => ads.requests.some((r) => r.typeUrl === TYPE_URL.clusterLoadAssignment && r.resourceNamesUnsubscribe.includes(CB)));
    await waitFor('route to B removed', () => sidecar.config.current.routes.get('9080')?.value.virtualHosts.length === 1);
    assert.equal(sidecar.config.current.assignments.has(CB), false);
    assert.equal((await get(outPort, B.fqdn)).status, 404, 'no virtual host for B any more');
    assert.equal((await get(outPort, A.fqdn)).app, 'a2');
  });

  it('NACKs an invalid resource with error_detail naming it and keeps the last good config', async () => {
    const bad = { name: '9080', virtualHosts: [{ name: 'x', domains: ['*'], routes: [{ match: { prefix: '/' } }] }] };
    ads.setAll({ [TYPE_URL.routeConfiguration]: [bad] });
    const sent = ads.lastSent(TYPE_URL.routeConfiguration)!;
    await waitFor('NACK', () => ads.reply(sent.nonce) !== undefined);
    const nack = ads.reply(sent.nonce)!;
    assert.equal(nack.errorDetail?.code, 3);
    assert.match(nack.errorDetail?.message ?? '', /RouteConfiguration "9080": virtualHosts\[0\]\.routes\[0\]: no action/);
    assert.equal((await get(outPort, A.fqdn)).app, 'a2', 'old routes still serve');
    ads.setAll(config(apps[1].port, false));
    await waitFor('good routes ACKed', () => { const s = ads.lastSent(TYPE_URL.routeConfiguration)!; const r = ads.reply(s.nonce); return s.nonce !== sent.nonce && r !== undefined && !r.errorDetail; });
  });

  it('keeps serving while the server is gone and reconnects declaring initial_resource_versions', async () => {
    const held = (t: string) => Object.fromEntries([...(t === TYPE_URL.cluster ? sidecar.config.current.clusters : sidecar.config.current.assignments)].map(([n, v]) => [n, v.version]));
    const clustersHeld = held(TYPE_URL.cluster);
    const requestsBefore = ads.requests.length;
    const sentBefore = ads.sent.length;
    // Changed while the proxy is disconnected: only this must come after the reconnect.
    ads.dropStreams();
    ads.setAll({ [TYPE_URL.clusterLoadAssignment]: [assignment(CA, [['127.0.0.1', apps[0].port]])] });
    assert.equal((await get(outPort, A.fqdn)).app, 'a2', 'last good config serves during the outage');
    await waitFor('reconnected', () => ads.streamCount > 0, 15_000);
    await waitFor('A back on a1', async () => (await get(outPort, A.fqdn)).app === 'a1', 15_000);
    const again = ads.requests.slice(requestsBefore);
    const cds = again.find((r) => r.typeUrl === TYPE_URL.cluster && r.responseNonce === '');
    assert.deepEqual(cds?.initialResourceVersions, clustersHeld);
    const eds = again.find((r) => r.typeUrl === TYPE_URL.clusterLoadAssignment && r.responseNonce === '');
    assert.deepEqual(Object.keys(eds?.initialResourceVersions ?? {}), [CA]);
    const resent = ads.sent.slice(sentBefore);
    assert.deepEqual(resent.map((s) => [s.typeUrl, s.names]), [[TYPE_URL.clusterLoadAssignment, [CA]]], 'only the changed assignment is resent');
  });

  it('reads ISTIO_DELTA_XDS like Istio and rejects other values naming the variable', () => {
    assert.equal(parseDeltaXds('true'), true);
    assert.equal(parseDeltaXds(undefined), false);
    assert.equal(parseDeltaXds('false'), false);
    assert.throws(() => parseDeltaXds('yes please'), /ISTIO_DELTA_XDS must be true or false/);
  });
});
