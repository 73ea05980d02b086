// Which proxies a change reaches, observed through real ADS streams: four proxies (a sidecar
// in `default`, one in `other`, the ingress gateway and a second gateway with other labels)
// count the responses each change brings. A Gateway change reaches only the gateway it
// selects; a Sidecar only the proxies it applies to; a ServiceEntry only the proxies that
// can see its host; a status-only or metadata-only update reaches no one and re-encodes
// nothing. Then the same through pilot's informers on the real API server: a status or
// annotation write builds no snapshot at all.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { KubeClient, R, type KubeObject, type Pod, type Service } from '../../api/kube/index.js';
import { TYPE_URL } from '../../api/xds/protos.js';
import type { Gateway, ServiceEntry, Sidecar, VirtualService } from '../../api/istio/index.js';
import type { ConfigInputs } from '../../pilot/model/inputs.js';
import { PushContext } from '../../pilot/model/push-context.js';
import { XdsServer } from '../../pilot/xds/server.js';
import { Pilot } from '../../pilot/pilot.js';
import { startTestServer } from '../apiserver/helpers.js';
import { AdsClient, type Response } from './ads-client.js';
import { REVIEWS, V1_NODE_ID, bookinfo, pod, reviewsVs } from './fixtures.js';
import { GW_NODE_ID, GW_NS, gateway, gatewayVs, httpServer, withGateway } from './gateway-fixtures.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) { try { await c(); } catch { /* best effort */ } } });

const OTHER_NODE_ID = 'sidecar~10.244.0.40~client-xyz.other~other.svc.cluster.local';
const EGRESS_IP = '10.244.0.91';
const EGRESS_NODE_ID = `router~${EGRESS_IP}~egress-xyz.${GW_NS}~${GW_NS}.svc.cluster.local`;
const SHORT = { [TYPE_URL.cluster]: 'cds', [TYPE_URL.clusterLoadAssignment]: 'eds', [TYPE_URL.listener]: 'lds', [TYPE_URL.routeConfiguration]: 'rds' } as Record<string, string>;

function sidecar(name: string, namespace: string, spec: Sidecar['spec']): Sidecar {
  return { apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name, namespace, creationTimestamp: '2025-01-03T00:00:00Z' }, spec };
}
function serviceEntry(name: string, namespace: string, host: string, exportTo: string[]): ServiceEntry {
  return {
    apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name, namespace, creationTimestamp: '2025-01-03T00:00:00Z' },
    spec: { hosts: [host], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'DNS', exportTo },
  };
}

/** Bookinfo with the ingress gateway, a second (egress) gateway workload, and a namespace `other`. */
function world(): ConfigInputs {
  const w = withGateway([gateway('bookinfo-gateway', [httpServer(['*'])])], [
    gatewayVs('reviews-ingress', ['*'], ['bookinfo-gateway'], [{ route: [{ destination: { host: REVIEWS, subset: 'v1' } }] }]),
  ]);
  const egress = pod('egress-xyz', EGRESS_IP, { istio: 'egressgateway' });
  w.pods.push({ ...egress, metadata: { ...egress.metadata, namespace: GW_NS } });
  w.namespaces.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'other' } });
  w.sidecars = [];
  w.serviceEntries = [];
  return w;
}

/** Subscribes like Envoy (CDS, EDS of every EDS cluster, LDS, RDS of the given routes) and ACKs everything. */
async function sync(c: AdsClient, routes: string[]): Promise<void> {
  c.request(TYPE_URL.cluster);
  const cds = await c.next();
  c.ack(cds);
  const eds = cds.resources.filter((r) => r.type === 'EDS').map((r) => String(r.name));
  c.request(TYPE_URL.clusterLoadAssignment, { names: eds });
  c.ack(await c.next(), eds);
  c.request(TYPE_URL.listener);
  c.ack(await c.next());
  c.request(TYPE_URL.routeConfiguration, { names: routes });
  c.ack(await c.next(), routes);
  await c.quiet(200);
}

/** What a client received until it was quiet for `quietMs` (each response ACKed): the types, in order. */
async function received(c: AdsClient, subscribed: Map<string, string[] | undefined>, quietMs = 400): Promise<string[]> {
  const types: string[] = [];
  for (;;) {
    let r: Response;
    try { r = await c.next(quietMs); } catch { return types; }
    types.push(SHORT[r.typeUrl] ?? r.typeUrl);
    // Newly named clusters are subscribed like Envoy does, so later EDS pushes are counted.
    if (r.typeUrl === TYPE_URL.cluster) subscribed.set(TYPE_URL.clusterLoadAssignment, r.resources.filter((x) => x.type === 'EDS').map((x) => String(x.name)));
    c.ack(r, subscribed.get(r.typeUrl));
    if (r.typeUrl === TYPE_URL.cluster) c.request(TYPE_URL.clusterLoadAssignment, { names: subscribed.get(TYPE_URL.clusterLoadAssignment) });
  }
}

test('a change reaches only the proxies it can affect: Gateway, Sidecar, ServiceEntry; status and metadata-only updates reach no one', async () => {
  const xds = new XdsServer({ host: '127.0.0.1', port: 0 });
  const port = await xds.start();
  cleanups.push(() => xds.stop());
  let inputs = world();
  let version = 0;
  const set = (next: ConfigInputs): void => { inputs = next; xds.update(PushContext.build(next, { version: String(++version) }), { firstEventAt: Date.now(), events: 1 }); };
  set(inputs);

  const proxies = [
    { name: 'sidecar default', id: V1_NODE_ID, routes: ['9080', '8080'] },
    { name: 'sidecar other', id: OTHER_NODE_ID, routes: ['9080', '8080'] },
    { name: 'ingress gateway', id: GW_NODE_ID, routes: ['http.8080'] },
    { name: 'egress gateway', id: EGRESS_NODE_ID, routes: ['http.8080'] },
  ].map((p) => {
    const c = new AdsClient(`127.0.0.1:${port}`, { id: p.id });
    cleanups.push(() => c.close());
    return { ...p, c, subscribed: new Map<string, string[] | undefined>([[TYPE_URL.routeConfiguration, p.routes]]) };
  });
  for (const p of proxies) await sync(p.c, p.routes);
  const pushesBefore = async (): Promise<number> => (await xds.metrics.pushes.get()).values.reduce((s, v) => s + v.value, 0);

  /** Applies a change and returns, per proxy, the xDS types it was sent. */
  const change = async (next: ConfigInputs): Promise<Record<string, string[]>> => {
    const before = await pushesBefore();
    set(next);
    await xds.pushed();
    const out: Record<string, string[]> = {};
    const got = await Promise.all(proxies.map((p) => received(p.c, p.subscribed)));
    proxies.forEach((p, i) => { if (got[i].length) out[p.name] = got[i]; });
    // pilot_xds_pushes counts exactly the responses the proxies received.
    assert.equal(await pushesBefore() - before, got.flat().length, 'pilot_xds_pushes counts the responses sent');
    encoded = xds.pushStatus()?.encodedResources ?? -1;
    return out;
  };
  const clone = (): ConfigInputs => structuredClone(inputs);
  let encoded = -1; // resources the last change re-encoded (push_status): unaffected classes reuse theirs

  // Gateway: its servers' hosts narrow -> only the ingress gateway it selects gets new routes.
  let next = clone();
  next.gateways = [gateway('bookinfo-gateway', [httpServer(['bookinfo.example.com'])])];
  assert.deepEqual(await change(next), { 'ingress gateway': ['rds'] });
  assert.ok(encoded <= 2, `only that gateway's listener and route were re-encoded, no sidecar's (${encoded})`);

  // A Gateway selecting the egress gateway's labels reaches only that one.
  next = clone();
  next.gateways = [...(next.gateways ?? []), gateway('egress', [httpServer(['*'])], 'default', { istio: 'egressgateway' })];
  next.virtualServices.push(gatewayVs('ratings-egress', ['*'], ['egress'], [{ route: [{ destination: { host: 'ratings' } }] }], 'default', '2025-01-04T00:00:00Z'));
  const egress = await change(next);
  assert.deepEqual(Object.keys(egress), ['egress gateway'], JSON.stringify(egress));

  // A Sidecar in `other` (no selector) scopes the proxies of `other` only.
  next = clone();
  next.sidecars = [sidecar('default', 'other', { egress: [{ hosts: ['./*'] }] })];
  const scoped = await change(next);
  assert.deepEqual(Object.keys(scoped), ['sidecar other'], JSON.stringify(scoped));
  assert.ok(scoped['sidecar other'].includes('cds'), 'its clusters shrink to its own namespace');
  assert.ok(encoded <= 10, `only the proxies of other were regenerated (${encoded} resources)`);

  // A Sidecar in `default` selecting other workloads (ratings) reaches no one connected...
  next = clone();
  next.sidecars = [...(next.sidecars ?? []), { ...sidecar('ratings', 'default', { egress: [{ hosts: ['./ratings.default.svc.cluster.local'] }] }), spec: { workloadSelector: { labels: { app: 'ratings' } }, egress: [{ hosts: ['./ratings.default.svc.cluster.local'] }] } }];
  assert.deepEqual(await change(next), {});
  assert.equal(encoded, 0, 'nothing regenerated for a Sidecar no connected proxy uses');
  // ...while one selecting reviews v1 reaches that sidecar only.
  next = clone();
  next.sidecars = [...(next.sidecars ?? []), { ...sidecar('reviews-v1', 'default', {}), spec: { workloadSelector: { labels: { app: 'reviews', version: 'v1' } }, egress: [{ hosts: ['./ratings.default.svc.cluster.local'] }] } }];
  assert.deepEqual(Object.keys(await change(next)), ['sidecar default']);

  // A ServiceEntry exported to its own namespace reaches the proxies of that namespace only.
  next = clone();
  next.serviceEntries = [serviceEntry('api', 'other', 'api.example.com', ['.'])];
  const entry = await change(next);
  assert.ok(entry['sidecar other']?.includes('cds'), `the entry's cluster reaches the sidecar in other: ${JSON.stringify(entry)}`);
  assert.equal(entry['sidecar default'], undefined, 'not exported to default');

  // Status-only and metadata-only updates of every Istio kind: nothing sent, nothing re-encoded.
  next = clone();
  const noise = <T extends KubeObject>(o: T): T => ({
    ...o, status: { validationMessages: [{ type: { code: 'IST0101' } }], observedGeneration: 2 },
    metadata: { ...o.metadata, resourceVersion: '999', generation: 2, managedFields: [{ manager: 'kubectl' }], annotations: { 'example.com/owner': 'team-a', 'kubectl.kubernetes.io/last-applied-configuration': '{}' } },
  }) as T;
  next.virtualServices = next.virtualServices.map((v) => noise(v as VirtualService));
  next.gateways = (next.gateways ?? []).map((g) => noise(g as Gateway));
  next.sidecars = (next.sidecars ?? []).map((s) => noise(s as Sidecar));
  next.serviceEntries = (next.serviceEntries ?? []).map((s) => noise(s as ServiceEntry));
  next.destinationRules = next.destinationRules.map((d) => noise(d));
  assert.deepEqual(await change(next), {});
  const status = xds.pushStatus();
  assert.deepEqual(status?.trigger.kinds, [], 'no kind counts as changed');
  assert.equal(status?.encodedResources, 0, 'nothing was re-encoded');

  // A real VirtualService change (with the Sidecars gone, so reviews is in scope) still reaches sidecars.
  next = clone();
  next.sidecars = [];
  next.virtualServices = next.virtualServices.map((v) => (v.metadata.name === 'reviews' ? { ...v, spec: reviewsVs(50, 50).spec } : v));
  const vsChange = await change(next);
  assert.ok(vsChange['sidecar default']?.includes('rds'), `a real VirtualService change still reaches sidecars: ${JSON.stringify(vsChange)}`);
});

test('pilot on the API server: a status or annotation write builds no snapshot and sends nothing; a spec change does', async () => {
  const ts = await startTestServer({ memory: true });
  cleanups.push(() => ts.stop());
  const client = KubeClient.fromKubeconfig(ts.server.kubeconfigPath);
  cleanups.push(() => client.close());
  const schema = { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } };
  for (const [plural, kind] of [['virtualservices', 'VirtualService'], ['gateways', 'Gateway']]) {
    await client.create(R.customResourceDefinitions, {
      metadata: { name: `${plural}.networking.istio.io` },
      spec: {
        group: 'networking.istio.io', scope: 'Namespaced', names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
        versions: [{ name: 'v1', served: true, storage: true, schema, subresources: { status: {} } }],
      },
    });
  }
  const w = bookinfo([reviewsVs(80, 20)]);
  if (!(await client.find(R.namespaces, 'default'))) await client.create(R.namespaces, { metadata: { name: 'default' } });
  await Promise.all([
    ...w.services.map((s) => { const { clusterIP: _ip, ...spec } = s.spec; return client.create<Service>(R.services, { ...s, spec }); }),
    ...w.pods.map(async (p) => { const c = await client.create<Pod>(R.pods, { metadata: p.metadata, spec: p.spec }); await client.updateStatus<Pod>(R.pods, { ...c, status: p.status }); }),
    client.create(R.virtualServices, w.virtualServices[0]),
    client.create(R.gateways, gateway('gw', [httpServer(['*'])])),
  ]);
  // quietMs small: a trigger would show within the wait below.
  const pilot = new Pilot(client, { host: '127.0.0.1', xdsPort: 0, debugPort: 0, syncTimeoutMs: 15_000, writeStatus: false, quietMs: 50, maxMs: 200 });
  cleanups.push(() => pilot.stop());
  const { xdsPort } = await pilot.start();
  const c = new AdsClient(`127.0.0.1:${xdsPort}`, { id: V1_NODE_ID });
  cleanups.push(() => c.close());
  await sync(c, ['9080', '8080']);
  const snapshots = async (): Promise<number> => (await pilot.metrics.snapshots.get()).values[0]?.value ?? 0;
  const built = await snapshots();

  const vs = await client.get<VirtualService & KubeObject>(R.virtualServices, 'reviews', 'default');
  await client.patch(R.virtualServices, 'reviews', 'default', { status: { validationMessages: [{ type: { code: 'IST0101' }, description: 'x' }] } }, 'merge', { subresource: 'status' });
  await client.patch(R.virtualServices, 'reviews', 'default', { metadata: { annotations: { 'example.com/owner': 'team-a' } } }, 'merge');
  await client.patch(R.gateways, 'gw', 'default', { metadata: { labels: undefined, annotations: { 'example.com/ticket': '42' } } }, 'merge');
  assert.ok(await c.quiet(1_000), 'no response for status and annotation writes');
  assert.equal(await snapshots(), built, 'no snapshot was built');

  // The same wait sees a real change: the test would notice a push.
  await client.update(R.virtualServices, { ...(await client.get<VirtualService & KubeObject>(R.virtualServices, 'reviews', 'default')), spec: reviewsVs(50, 50).spec });
  const r = await c.next(5_000);
  assert.equal(r.typeUrl, TYPE_URL.routeConfiguration);
  assert.equal(await snapshots(), built + 1);
  assert.ok(vs.metadata.resourceVersion);
});
