// The ADS server through a real gRPC stream: subscription and push order, ACKs, a pushed
// change without reconnecting, and a NACK visible in /debug/syncz and the metrics.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL } from '../../api/xds/protos.js';
import { PushContext } from '../../pilot/model/push-context.js';
import { XdsServer } from '../../pilot/xds/server.js';
import { DebugServer } from '../../pilot/debug.js';
import { AdsClient, type Response } from './ads-client.js';
import { REVIEWS, V1_NODE_ID, bookinfo, reviewsVs, service, endpoints } from './fixtures.js';

const TYPES: Record<string, string> = {
  [TYPE_URL.cluster]: 'cds', [TYPE_URL.clusterLoadAssignment]: 'eds', [TYPE_URL.listener]: 'lds', [TYPE_URL.routeConfiguration]: 'rds',
};

const servers: { stop(): Promise<void> }[] = [];
after(async () => { for (const s of servers) await s.stop(); });

async function start() {
  const xds = new XdsServer({ host: '127.0.0.1', port: 0 });
  const port = await xds.start();
  let push = PushContext.build(bookinfo(), { version: '1' });
  xds.update(push);
  const debug = new DebugServer({ ready: () => true, snapshot: () => push, syncz: () => xds.syncz(), metrics: xds.metrics }, { host: '127.0.0.1', port: 0 });
  const debugPort = await debug.start();
  servers.push(xds, debug);
  const setPush = (p: PushContext) => { push = p; xds.update(p); };
  return { xds, port, debugPort, setPush };
}

function names(r: Response): string[] { return r.resources.map((x) => String(x.name ?? x.clusterName)); }

/** Subscribes like Envoy: CDS, then EDS for the clusters, LDS, then RDS for the route names. */
async function subscribe(c: AdsClient) {
  const order: string[] = [];
  c.request(TYPE_URL.cluster);
  const cds = await c.next(); order.push(TYPES[cds.typeUrl]);
  const edsNames = cds.resources.filter((r) => r.type === 'EDS').map((r) => String(r.name));
  c.ack(cds);
  c.request(TYPE_URL.clusterLoadAssignment, { names: edsNames });
  const eds = await c.next(); order.push(TYPES[eds.typeUrl]);
  c.ack(eds, edsNames);
  c.request(TYPE_URL.listener);
  const lds = await c.next(); order.push(TYPES[lds.typeUrl]);
  c.ack(lds);
  const routeNames = ['8080', '9080'];
  c.request(TYPE_URL.routeConfiguration, { names: routeNames });
  const rds = await c.next(); order.push(TYPES[rds.typeUrl]);
  c.ack(rds, routeNames);
  return { order, cds, eds, lds, rds, edsNames, routeNames };
}

function weights(rds: Response): { name: string; weight: number }[] {
  const rc = rds.resources.find((r) => r.name === '9080') as { virtualHosts: { routes: { route: { weightedClusters: { clusters: { name: string; weight: { value: number } }[] } } }[] }[] };
  return rc.virtualHosts[0].routes[0].route.weightedClusters.clusters.map((c) => ({ name: c.name, weight: c.weight.value }));
}

async function getJson(port: number, path: string): Promise<unknown> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  assert.equal(res.status, 200, path);
  return res.json();
}

test('ADS: subscribe, ACK, push of a changed VirtualService as a new RDS version only, NACK in syncz', async () => {
  const { port, debugPort, setPush } = await start();
  const c = new AdsClient(`127.0.0.1:${port}`, {
    id: V1_NODE_ID,
    metadata: { fields: { NAMESPACE: { stringValue: 'default' }, LABELS: { structValue: { fields: { app: { stringValue: 'reviews' }, version: { stringValue: 'v1' } } } } } },
  });
  try {
    const s = await subscribe(c);
    assert.deepEqual(s.order, ['cds', 'eds', 'lds', 'rds']);
    assert.ok(names(s.cds).includes('inbound|9080||'));
    assert.deepEqual(names(s.eds), s.edsNames.slice().sort());
    assert.deepEqual(names(s.lds), ['virtualOutbound', '0.0.0.0_8080', '0.0.0.0_9080', 'virtualInbound']);
    assert.deepEqual(weights(s.rds), [{ name: `outbound|9080|v1|${REVIEWS}`, weight: 80 }, { name: `outbound|9080|v2|${REVIEWS}`, weight: 20 }]);

    let syncz = await getJson(debugPort, '/debug/syncz') as { nodeId: string; pod: string; types: Record<string, { status: string; ackedVersion: string; sentVersion: string }> }[];
    assert.equal(syncz.length, 1);
    assert.equal(syncz[0].nodeId, V1_NODE_ID);
    assert.equal(syncz[0].pod, 'default/reviews-v1-abc');
    for (const t of ['cds', 'eds', 'lds', 'rds']) assert.equal(syncz[0].types[t].status, 'ACKED', t);

    // 80/20 -> 50/50: only RDS changes, pushed on the same stream with a new version.
    setPush(PushContext.build(bookinfo([reviewsVs(50, 50)]), { version: '2' }));
    const rds2 = await c.next();
    assert.equal(TYPES[rds2.typeUrl], 'rds');
    assert.notEqual(rds2.versionInfo, s.rds.versionInfo);
    assert.deepEqual(weights(rds2), [{ name: `outbound|9080|v1|${REVIEWS}`, weight: 50 }, { name: `outbound|9080|v2|${REVIEWS}`, weight: 50 }]);
    assert.ok(await c.quiet(300), 'nothing but RDS is pushed');

    // The proxy rejects it: the NACK is recorded and shown, the acked version stays.
    const message = "RouteConfiguration 9080: virtualHosts[0].routes[0].route.weightedClusters: rejected for the test";
    c.nack(rds2, s.rds.versionInfo, message, s.routeNames);
    await new Promise((r) => setTimeout(r, 200));
    syncz = await getJson(debugPort, '/debug/syncz') as typeof syncz;
    const rdsStatus = syncz[0].types.rds as unknown as { status: string; ackedVersion: string; sentVersion: string; lastNack: { message: string; version: string } };
    assert.equal(rdsStatus.status, 'NACKED');
    assert.equal(rdsStatus.lastNack.message, message);
    assert.equal(rdsStatus.ackedVersion, s.rds.versionInfo);
    assert.equal(rdsStatus.sentVersion, rds2.versionInfo);
    const metrics = await (await fetch(`http://127.0.0.1:${debugPort}/metrics`)).text();
    assert.match(metrics, /pilot_total_xds_rejects\{type="rds"\} 1/);
    assert.match(metrics, /pilot_xds\{version="0.1.0"\} 1/);
    assert.match(metrics, /pilot_xds_pushes\{type="rds"\} 2/);

    // A change touching every subscribed type arrives in order CDS, EDS, LDS, RDS: a new
    // service (cluster, listener), a new ratings endpoint, new weights.
    const inputs = bookinfo([reviewsVs(30, 70)]);
    inputs.services.push(service('details', '10.96.0.70', 7070, 7070, { app: 'details' }));
    inputs.endpoints.push(endpoints('details', 7070, [{ ip: '10.244.0.31', pod: 'details-v1' }]));
    inputs.endpoints[1] = endpoints('ratings', 8080, [{ ip: '10.244.0.21', pod: 'ratings-v1-ghi' }, { ip: '10.244.0.22', pod: 'ratings-v1-jkl' }]);
    setPush(PushContext.build(inputs, { version: '3' }));
    const pushed: Response[] = [];
    for (let i = 0; i < 4; i++) pushed.push(await c.next());
    assert.deepEqual(pushed.map((r) => TYPES[r.typeUrl]), ['cds', 'eds', 'lds', 'rds']);
    assert.ok(names(pushed[0]).includes('outbound|7070||details.default.svc.cluster.local'));
    // EDS carries only the changed assignment (SotW clients keep the named resources a
    // response leaves out); the proxy asks for the new cluster itself.
    assert.deepEqual(names(pushed[1]), ['outbound|8080||ratings.default.svc.cluster.local']);
    c.ack(pushed[1], s.edsNames);
    const newEds = [...s.edsNames, 'outbound|7070||details.default.svc.cluster.local'];
    c.request(TYPE_URL.clusterLoadAssignment, { names: newEds, version: pushed[1].versionInfo, nonce: pushed[1].nonce });
    const eds3 = await c.next();
    assert.equal(TYPES[eds3.typeUrl], 'eds');
    assert.ok(names(eds3).includes('outbound|7070||details.default.svc.cluster.local'));
  } finally {
    c.close();
  }
});

test('ADS: a stream without node id is refused with a message naming the field', async () => {
  const { port } = await start();
  const c = new AdsClient(`127.0.0.1:${port}`, { id: '' });
  try {
    c.request(TYPE_URL.cluster);
    // Poll for the stream's error rather than wait a fixed time: the machine may be loaded.
    for (let i = 0; i < 200 && !c.error; i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(String(c.error?.message), /node\.id is required/);
  } finally {
    c.close();
  }
});
