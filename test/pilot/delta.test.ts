// Delta ADS (DeltaAggregatedResources) through a real gRPC stream: the initial full set in
// CDS, EDS, LDS, RDS order, a VirtualService change sending only the changed route
// configuration, a deleted Service as removed_resources, a reconnect declaring
// initial_resource_versions getting nothing already current, and a NACK in /debug/syncz.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL } from '../../api/xds/protos.js';
import { PushContext } from '../../pilot/model/push-context.js';
import { XdsServer } from '../../pilot/xds/server.js';
import { DebugServer } from '../../pilot/debug.js';
import { DeltaClient, type DeltaResponse } from './delta-client.js';
import { RATINGS, REVIEWS, V1_NODE_ID, bookinfo, reviewsVs } from './fixtures.js';

const servers: { stop(): Promise<void> }[] = [];
after(async () => { for (const s of servers) await s.stop(); });

const NODE = {
  id: V1_NODE_ID,
  metadata: { fields: { NAMESPACE: { stringValue: 'default' }, LABELS: { structValue: { fields: { app: { stringValue: 'reviews' }, version: { stringValue: 'v1' } } } } } },
};

async function start() {
  const xds = new XdsServer({ host: '127.0.0.1', port: 0 });
  const port = await xds.start();
  let push = PushContext.build(bookinfo(), { version: '1' });
  xds.update(push);
  const debug = new DebugServer({ ready: () => true, snapshot: () => push, syncz: () => xds.syncz(), metrics: xds.metrics }, { host: '127.0.0.1', port: 0 });
  const debugPort = await debug.start();
  servers.push(xds, debug);
  const setPush = (p: PushContext) => { push = p; xds.update(p); };
  return { port, debugPort, setPush };
}

const names = (r: DeltaResponse): string[] => r.resources.map((x) => x.name).sort();
const versions = (rs: DeltaResponse[]): Record<string, string> => Object.fromEntries(rs.flatMap((r) => r.resources.map((x) => [x.name, x.version])));

/** Subscribes like Envoy in delta mode: CDS and LDS wildcard (empty first request), EDS and RDS by name. */
async function subscribeAll(c: DeltaClient, initial: Record<string, Record<string, string>> = {}, expectResponses = true) {
  const got: DeltaResponse[] = [];
  const step = async (typeUrl: string, subscribe: string[]) => {
    c.request(typeUrl, { subscribe, initial: initial[typeUrl] });
    if (!expectResponses) return undefined;
    const r = await c.next();
    assert.equal(r.typeUrl, typeUrl);
    c.ack(r);
    got.push(r);
    return r;
  };
  const cds = await step(TYPE_URL.cluster, []);
  const edsNames = Object.keys(initial[TYPE_URL.clusterLoadAssignment] ?? {}).length
    ? Object.keys(initial[TYPE_URL.clusterLoadAssignment]) : (cds?.resources ?? []).filter((r) => r.resource.type === 'EDS').map((r) => r.name);
  await step(TYPE_URL.clusterLoadAssignment, edsNames);
  await step(TYPE_URL.listener, []);
  await step(TYPE_URL.routeConfiguration, ['8080', '9080']);
  return got;
}

async function syncz(debugPort: number) {
  const res = await fetch(`http://127.0.0.1:${debugPort}/debug/syncz`);
  return await res.json() as { mode: string; nodeId: string; types: Record<string, { status: string; lastNack?: { message: string } }> }[];
}

test('delta ADS: initial set, only changed resources, removals, reconnect with versions, NACK in syncz', async () => {
  const { port, debugPort, setPush } = await start();
  const c = new DeltaClient(`127.0.0.1:${port}`, NODE);
  let held: Record<string, Record<string, string>> = {};
  try {
    const initial = await subscribeAll(c);
    assert.deepEqual(initial.map((r) => r.typeUrl), [TYPE_URL.cluster, TYPE_URL.clusterLoadAssignment, TYPE_URL.listener, TYPE_URL.routeConfiguration]);
    const [cds, eds, lds, rds] = initial;
    assert.ok(names(cds).includes(`outbound|8080||${RATINGS}`));
    assert.ok(names(cds).includes('inbound|9080||'));
    assert.ok(names(eds).includes(`outbound|9080|v2|${REVIEWS}`));
    assert.deepEqual(names(lds), ['0.0.0.0_8080', '0.0.0.0_9080', 'virtualInbound', 'virtualOutbound']);
    assert.deepEqual(names(rds), ['8080', '9080']);
    for (const r of initial) for (const x of r.resources) assert.match(x.version, /^[0-9a-f]{16}$/);
    assert.ok(await c.quiet(200));
    let status = await syncz(debugPort);
    assert.equal(status[0].mode, 'delta');
    for (const t of ['cds', 'eds', 'lds', 'rds']) assert.equal(status[0].types[t].status, 'ACKED', t);

    // 80/20 -> 50/50: only RouteConfiguration 9080 is sent, with a new version.
    setPush(PushContext.build(bookinfo([reviewsVs(50, 50)]), { version: '2' }));
    const rds2 = await c.next();
    assert.equal(rds2.typeUrl, TYPE_URL.routeConfiguration);
    assert.deepEqual(names(rds2), ['9080']);
    assert.deepEqual(rds2.removedResources, []);
    assert.notEqual(rds2.resources[0].version, versions([rds])['9080']);
    assert.ok(await c.quiet(300), 'nothing else is sent');
    c.ack(rds2);

    // The ratings Service goes away: its cluster and endpoints are removed, RDS 8080 too.
    const inputs = bookinfo([reviewsVs(50, 50)]);
    inputs.services = inputs.services.filter((s) => s.metadata.name !== 'ratings');
    inputs.endpoints = inputs.endpoints.filter((e) => e.metadata.name !== 'ratings');
    setPush(PushContext.build(inputs, { version: '3' }));
    const pushed: DeltaResponse[] = [];
    for (;;) { try { pushed.push(await c.next(500)); } catch { break; } }
    for (const r of pushed) c.ack(r);
    const byType = new Map(pushed.map((r) => [r.typeUrl, r]));
    assert.deepEqual(pushed.map((r) => r.typeUrl), [TYPE_URL.cluster, TYPE_URL.clusterLoadAssignment, TYPE_URL.listener, TYPE_URL.routeConfiguration]);
    assert.deepEqual(byType.get(TYPE_URL.cluster)?.removedResources, [`outbound|8080||${RATINGS}`]);
    assert.deepEqual(byType.get(TYPE_URL.cluster)?.resources, []);
    assert.deepEqual(byType.get(TYPE_URL.clusterLoadAssignment)?.removedResources, [`outbound|8080||${RATINGS}`]);
    assert.deepEqual(byType.get(TYPE_URL.listener)?.removedResources, ['0.0.0.0_8080']);
    assert.deepEqual(byType.get(TYPE_URL.routeConfiguration)?.removedResources, ['8080']);

    // What the client holds now, per type, to declare on reconnect.
    const all = [...initial, rds2, ...pushed];
    held = {};
    for (const r of all) {
      const m = (held[r.typeUrl] ??= {});
      for (const x of r.resources) m[x.name] = x.version;
      for (const n of r.removedResources) delete m[n];
    }
  } finally {
    c.close();
  }

  // Reconnect declaring everything it has: nothing is resent.
  const c2 = new DeltaClient(`127.0.0.1:${port}`, NODE);
  try {
    await subscribeAll(c2, held, false);
    assert.ok(await c2.quiet(400), 'a reconnect with current versions gets nothing');
    // One stale version (an older RouteConfiguration 9080) is refreshed, alone.
    const c3 = new DeltaClient(`127.0.0.1:${port}`, NODE);
    try {
      const stale = { ...held, [TYPE_URL.routeConfiguration]: { ...held[TYPE_URL.routeConfiguration], '9080': 'old' } };
      c3.request(TYPE_URL.routeConfiguration, { subscribe: ['9080'], initial: stale[TYPE_URL.routeConfiguration] });
      const r = await c3.next();
      assert.deepEqual(names(r), ['9080']);
      assert.equal(r.resources[0].version, held[TYPE_URL.routeConfiguration]['9080']);

      // The client rejects the next change: the NACK's message is kept and shown.
      setPush(PushContext.build(bookinfo([reviewsVs(10, 90)]), { version: '4' }));
      const r2 = await c3.next();
      const message = 'RouteConfiguration 9080: virtualHosts[0].routes[0]: rejected for the test';
      c3.nack(r2, message);
      await new Promise((res) => setTimeout(res, 200));
      const status = await syncz(debugPort);
      const mine = status.find((s) => s.mode === 'delta' && s.types.rds?.status === 'NACKED');
      assert.ok(mine, JSON.stringify(status));
      assert.equal(mine.types.rds.lastNack?.message, message);
      const metrics = await (await fetch(`http://127.0.0.1:${debugPort}/metrics`)).text();
      assert.match(metrics, /pilot_total_xds_rejects\{type="rds"\} 1/);
    } finally {
      c3.close();
    }
  } finally {
    c2.close();
  }
});
