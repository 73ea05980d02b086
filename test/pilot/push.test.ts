// Pushes through real ADS clients (SotW and delta): only what a change affects is sent
// (an endpoint change -> EDS of that cluster only; a VirtualService change -> RDS, and
// nothing to a proxy that cannot see it), and pilot explains its state: config_dump of
// what a proxy was sent, push_status of the last push, and the xDS metrics.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL } from '../../api/xds/protos.js';
import type { ConfigInputs } from '../../pilot/model/inputs.js';
import { PushContext } from '../../pilot/model/push-context.js';
import { XdsServer } from '../../pilot/xds/server.js';
import { DebugServer } from '../../pilot/debug.js';
import { AdsClient, type Response } from './ads-client.js';
import { DeltaClient, type DeltaResponse } from './delta-client.js';
import { RATINGS, REVIEWS, V1_NODE_ID, bookinfo, endpoints, reviewsVs } from './fixtures.js';

const OTHER_NODE_ID = 'sidecar~10.244.0.40~client-xyz.other~other.svc.cluster.local';
const RATINGS_CLUSTER = `outbound|8080||${RATINGS}`;

const servers: { stop(): Promise<void> }[] = [];
const clients: { close(): void }[] = [];
after(async () => { for (const c of clients) c.close(); for (const s of servers) await s.stop(); });

let version = 0;
async function start() {
  const xds = new XdsServer({ host: '127.0.0.1', port: 0 });
  const port = await xds.start();
  xds.update(PushContext.build(world(), { version: String(++version) }));
  const debug = new DebugServer({
    ready: () => true, snapshot: () => xds.snapshot, syncz: () => xds.syncz(), metrics: xds.metrics,
    configDump: (id) => xds.configDump(id), pushStatus: () => xds.pushStatus(),
  }, { host: '127.0.0.1', port: 0 });
  const debugPort = await debug.start();
  servers.push(xds, debug);
  const setInputs = (inputs: ConfigInputs) => xds.update(PushContext.build(inputs, { version: String(++version) }), { firstEventAt: Date.now(), events: 1 });
  return { xds, port, debugPort, setInputs };
}

/** The bookinfo world plus a namespace `other`; the reviews VirtualService exported to its own namespace only. */
function world(opts: { w1?: number; ratingsIps?: string[] } = {}): ConfigInputs {
  const vs = reviewsVs(opts.w1 ?? 80, 100 - (opts.w1 ?? 80));
  vs.spec.exportTo = ['.'];
  const w = bookinfo([vs]);
  w.namespaces.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'other' } });
  if (opts.ratingsIps) w.endpoints[1] = endpoints('ratings', 8080, opts.ratingsIps.map((ip, i) => ({ ip, pod: `ratings-${i}` })));
  return w;
}

const names = (r: Response): string[] => r.resources.map((x) => String(x.name ?? x.clusterName));

async function getJson(port: number, path: string, status = 200): Promise<unknown> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  assert.equal(res.status, status, path);
  return status === 200 ? res.json() : res.text();
}

/** Subscribes every type like Envoy and ACKs; returns the EDS/RDS names asked for. */
async function syncSotw(c: AdsClient): Promise<{ edsNames: string[]; rds: Response }> {
  c.request(TYPE_URL.cluster);
  const cds = await c.next();
  c.ack(cds);
  const edsNames = cds.resources.filter((r) => r.type === 'EDS').map((r) => String(r.name));
  c.request(TYPE_URL.clusterLoadAssignment, { names: edsNames });
  c.ack(await c.next(), edsNames);
  c.request(TYPE_URL.listener);
  c.ack(await c.next());
  c.request(TYPE_URL.routeConfiguration, { names: ['8080', '9080'] });
  const rds = await c.next();
  c.ack(rds, ['8080', '9080']);
  return { edsNames, rds };
}

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 5_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('push: an endpoint change sends EDS of that cluster only; a VirtualService change only RDS, to proxies that see it; explained by push_status, config_dump and metrics', async () => {
  const { port, debugPort, setInputs } = await start();
  const c = new AdsClient(`127.0.0.1:${port}`, { id: V1_NODE_ID });
  const other = new AdsClient(`127.0.0.1:${port}`, { id: OTHER_NODE_ID });
  clients.push(c, other);
  const { edsNames } = await syncSotw(c);
  await syncSotw(other);

  // config_dump: what pilot last sent, in Envoy's shape.
  await getJson(debugPort, '/debug/config_dump', 400);
  assert.match(String(await getJson(debugPort, '/debug/config_dump?proxyID=nobody.default', 404)), /no connected proxy 'nobody.default'/);
  const dump = await getJson(debugPort, '/debug/config_dump?proxyID=reviews-v1-abc.default') as { configs: Record<string, unknown>[] };
  assert.deepEqual(dump.configs.map((x) => String(x['@type']).split('.').pop()), ['ListenersConfigDump', 'ClustersConfigDump', 'RoutesConfigDump', 'EndpointsConfigDump', 'SecretsConfigDump']);
  const dumped = (dump.configs[1].dynamicActiveClusters as { cluster: { name: string; '@type': string } }[]);
  assert.ok(dumped.some((x) => x.cluster.name === `outbound|9080|v1|${REVIEWS}` && x.cluster['@type'] === TYPE_URL.cluster));
  assert.deepEqual((dump.configs[3].dynamicEndpointConfigs as { endpointConfig: { clusterName: string } }[]).map((e) => e.endpointConfig.clusterName).sort(), edsNames.slice().sort());
  const byNodeId = await getJson(debugPort, `/debug/config_dump?proxyID=${encodeURIComponent(V1_NODE_ID)}`);
  assert.deepEqual(byNodeId, dump);

  // An endpoint of ratings is added: both proxies get EDS with that one assignment, nothing else.
  setInputs(world({ ratingsIps: ['10.244.0.21', '10.244.0.22'] }));
  for (const client of [c, other]) {
    const eds = await client.next();
    assert.equal(eds.typeUrl, TYPE_URL.clusterLoadAssignment);
    assert.deepEqual(names(eds), [RATINGS_CLUSTER]);
    const lb = (eds.resources[0] as { endpoints: { lbEndpoints: unknown[] }[] }).endpoints[0].lbEndpoints;
    assert.equal(lb.length, 2);
    client.ack(eds, edsNames);
  }
  assert.ok(await c.quiet(300), 'only EDS is pushed for an endpoint change');
  let status = await until('the endpoint push to converge', async () => {
    const s = await getJson(debugPort, '/debug/push_status') as { pendingAcks: number; acked: number; trigger: { kinds: string[] }; responses: Record<string, number>; resources: Record<string, number>; durations: { convergenceMs?: number }; proxies: number };
    return s.acked === 2 && s.durations.convergenceMs !== undefined ? s : undefined;
  });
  assert.deepEqual(status.trigger.kinds, ['endpoints']);
  assert.deepEqual(status.responses, { eds: 2 });
  assert.deepEqual(status.resources, { eds: 2 });
  assert.equal(status.proxies, 2);
  assert.equal(status.pendingAcks, 0);

  // The VirtualService (exported to `default` only) goes 80/20 -> 50/50: RDS to the proxy in
  // default, nothing to the one in `other`.
  setInputs({ ...world({ w1: 50, ratingsIps: ['10.244.0.21', '10.244.0.22'] }) });
  const rds = await c.next();
  assert.equal(rds.typeUrl, TYPE_URL.routeConfiguration);
  assert.ok(await other.quiet(500), 'a proxy that cannot see the VirtualService gets nothing');
  // The proxy rejects it: counted per type, and the push records the NACK.
  c.nack(rds, '', 'RouteConfiguration 9080: rejected for the test', ['8080', '9080']);
  status = await until('the NACK to be recorded', async () => {
    const s = await getJson(debugPort, '/debug/push_status') as typeof status & { nacked: number };
    return s.nacked === 1 ? s : undefined;
  });
  assert.deepEqual(status.trigger.kinds, ['virtualServices']);
  assert.deepEqual(status.responses, { rds: 1 });

  const metrics = await (await fetch(`http://127.0.0.1:${debugPort}/metrics`)).text();
  assert.match(metrics, /pilot_xds\{version="0.1.0"\} 2/);
  assert.match(metrics, /pilot_xds_pushes\{type="eds"\} 4/); // 2 initial + 2 for the endpoint change
  assert.match(metrics, /pilot_xds_pushes\{type="rds"\} 3/);
  assert.match(metrics, /pilot_total_xds_rejects\{type="rds"\} 1/);
  // One observation per proxy that ACKed a push (the two EDS pushes), none for the NACK.
  assert.match(metrics, /pilot_proxy_convergence_time_count 2/);
});

test('push: a delta client gets only the changed assignment, and a removal when a service goes', async () => {
  const { port, setInputs } = await start();
  const c = new DeltaClient(`127.0.0.1:${port}`, { id: V1_NODE_ID });
  clients.push(c);
  c.request(TYPE_URL.cluster);
  const cds = await c.next();
  c.ack(cds);
  const edsNames = cds.resources.filter((r) => (r.resource as { type?: string }).type === 'EDS').map((r) => r.name);
  c.request(TYPE_URL.clusterLoadAssignment, { subscribe: edsNames });
  const eds = await c.next();
  assert.deepEqual(eds.resources.map((r) => r.name).sort(), edsNames.slice().sort());
  c.ack(eds);

  setInputs(world({ ratingsIps: ['10.244.0.21', '10.244.0.23'] }));
  const eds2: DeltaResponse = await c.next();
  assert.equal(eds2.typeUrl, TYPE_URL.clusterLoadAssignment);
  assert.deepEqual(eds2.resources.map((r) => r.name), [RATINGS_CLUSTER]);
  assert.deepEqual(eds2.removedResources, []);
  c.ack(eds2);
  assert.ok(await c.quiet(300));

  // ratings goes away: CDS tells the client to remove its cluster, EDS its assignment.
  const w = world();
  w.services = w.services.filter((s) => s.metadata.name !== 'ratings');
  w.endpoints = w.endpoints.filter((e) => e.metadata.name !== 'ratings');
  setInputs(w);
  const cds3 = await c.next();
  assert.equal(cds3.typeUrl, TYPE_URL.cluster);
  assert.deepEqual(cds3.removedResources, [RATINGS_CLUSTER]);
  c.ack(cds3);
  const eds3 = await c.next();
  assert.equal(eds3.typeUrl, TYPE_URL.clusterLoadAssignment);
  assert.deepEqual(eds3.removedResources, [RATINGS_CLUSTER]);
});

test('push: a routed subset losing its last ready endpoint re-sends routes without it (fallback), and with it once it is back', async () => {
  const { port, setInputs } = await start();
  const c = new AdsClient(`127.0.0.1:${port}`, { id: V1_NODE_ID });
  clients.push(c);
  const { edsNames } = await syncSotw(c);
  const routeOf = (rds: Response) => {
    const rc = rds.resources.find((r) => r.name === '9080') as { virtualHosts: { routes: { route: { cluster?: string; weightedClusters?: { clusters: { name: string }[] } } }[] }[] };
    const action = rc.virtualHosts[0].routes[0].route;
    return action.cluster ?? action.weightedClusters?.clusters.map((x) => x.name).join(',');
  };
  const v2Down = world();
  v2Down.endpoints[0] = endpoints('reviews', 9080, [{ ip: '10.244.0.11', pod: 'reviews-v1-abc' }]);
  setInputs(v2Down);
  // EDS of reviews, then the routes: v2's 20% goes to v1 while v2 has no ready endpoint.
  const seen: Response[] = [];
  const rds = await until('routes without v2', async () => {
    const r = await c.next();
    seen.push(r);
    c.ack(r, r.typeUrl === TYPE_URL.clusterLoadAssignment ? edsNames : r.typeUrl === TYPE_URL.routeConfiguration ? ['8080', '9080'] : undefined);
    return r.typeUrl === TYPE_URL.routeConfiguration ? r : undefined;
  });
  assert.equal(routeOf(rds), `outbound|9080|v1|${REVIEWS}`);
  assert.ok(seen.some((r) => r.typeUrl === TYPE_URL.clusterLoadAssignment), 'the endpoint change itself went out as EDS');
  setInputs(world());
  const back = await until('routes with v2 again', async () => {
    const r = await c.next();
    c.ack(r, r.typeUrl === TYPE_URL.clusterLoadAssignment ? edsNames : r.typeUrl === TYPE_URL.routeConfiguration ? ['8080', '9080'] : undefined);
    return r.typeUrl === TYPE_URL.routeConfiguration ? r : undefined;
  });
  assert.equal(routeOf(back), `outbound|9080|v1|${REVIEWS},outbound|9080|v2|${REVIEWS}`);
});
