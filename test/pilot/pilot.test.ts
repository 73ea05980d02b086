// Pilot assembled, reading the cluster only through the Kubernetes REST API (a fake
// list/watch server here): informers sync, the Istio CRDs fall back to v1beta1 when v1 is
// not served, /ready turns 200, a proxy gets its config, and a watched VirtualService
// change reaches it as a debounced RDS push.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { KubeClient } from '../../api/kube/index.js';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Pilot } from '../../pilot/pilot.js';
import { Debouncer } from '../../pilot/model/debounce.js';
import { FakeApiServer } from './fake-apiserver.js';
import { AdsClient } from './ads-client.js';
import { REVIEWS, V1_NODE_ID, bookinfo, reviewsVs } from './fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

test('debouncer: 100 ms of quiet fires once; a steady trickle still fires after the max', async () => {
  const fired: number[] = [];
  const d = new Debouncer((b) => fired.push(b.events), 50, 300);
  for (let i = 0; i < 5; i++) d.trigger();
  await new Promise((r) => setTimeout(r, 120));
  assert.deepEqual(fired, [5]);
  const timer = setInterval(() => d.trigger(), 20);
  await new Promise((r) => setTimeout(r, 450));
  clearInterval(timer);
  d.cancel();
  assert.ok(fired.length >= 2, `fired ${JSON.stringify(fired)}`);
});

test('pilot against the Kubernetes API: sync, v1beta1 fallback, ready, ADS, watched change pushed', async () => {
  const VS_V1BETA1 = '/apis/networking.istio.io/v1beta1/virtualservices';
  const api = new FakeApiServer([
    '/api/v1/namespaces', '/api/v1/services', '/api/v1/endpoints', '/api/v1/pods',
    VS_V1BETA1, '/apis/networking.istio.io/v1/destinationrules',
  ]);
  const server = await api.start();
  cleanups.push(() => api.stop());
  const world = bookinfo([reviewsVs(80, 20)]);
  for (const o of world.namespaces) api.put('/api/v1/namespaces', o);
  for (const o of world.services) api.put('/api/v1/services', o);
  for (const o of world.endpoints) api.put('/api/v1/endpoints', o);
  for (const o of world.pods) api.put('/api/v1/pods', o);
  for (const o of world.virtualServices) api.put(VS_V1BETA1, { ...o, apiVersion: 'networking.istio.io/v1beta1' });
  for (const o of world.destinationRules) api.put('/apis/networking.istio.io/v1/destinationrules', o);

  const client = new KubeClient({ server });
  const pilot = new Pilot(client, { host: '127.0.0.1', xdsPort: 0, debugPort: 0, syncTimeoutMs: 10_000 });
  cleanups.push(async () => { await pilot.stop(); await client.close(); });
  const { xdsPort, debugPort } = await pilot.start();

  const ready = await fetch(`http://127.0.0.1:${debugPort}/ready`);
  assert.equal(ready.status, 200);
  const configz = await (await fetch(`http://127.0.0.1:${debugPort}/debug/configz`)).json() as { crdVersions: Record<string, string>; inputs: { virtualServices: unknown[] } };
  assert.deepEqual(configz.crdVersions, { virtualservices: 'v1beta1', destinationrules: 'v1', gateways: null, peerauthentications: null, authorizationpolicies: null });
  assert.equal(configz.inputs.virtualServices.length, 1);

  const c = new AdsClient(`127.0.0.1:${xdsPort}`, { id: V1_NODE_ID });
  cleanups.push(async () => c.close());
  c.request(TYPE_URL.cluster);
  const cds = await c.next();
  assert.ok(cds.resources.some((r) => r.name === `outbound|9080|v2|${REVIEWS}`));
  c.ack(cds);
  c.request(TYPE_URL.routeConfiguration, { names: ['9080'] });
  const rds = await c.next();
  c.ack(rds, ['9080']);

  const started = Date.now();
  api.put(VS_V1BETA1, { ...reviewsVs(50, 50), apiVersion: 'networking.istio.io/v1beta1' });
  const rds2 = await c.next(5_000);
  assert.equal(rds2.typeUrl, TYPE_URL.routeConfiguration);
  assert.ok(Date.now() - started >= 90, 'the change was debounced');
  const clusters = (rds2.resources[0] as { virtualHosts: { routes: { route: { weightedClusters: { clusters: { weight: { value: number } }[] } } }[] }[] })
    .virtualHosts[0].routes[0].route.weightedClusters.clusters;
  assert.deepEqual(clusters.map((x) => x.weight.value), [50, 50]);
  // Convergence is observed at the proxy's ACK of the push, once per push and proxy
  // (the initial subscription is not a push of a change).
  c.ack(rds2, ['9080']);
  await new Promise((r) => setTimeout(r, 200));
  const metrics = await (await fetch(`http://127.0.0.1:${debugPort}/metrics`)).text();
  assert.match(metrics, /pilot_proxy_convergence_time_count 1/);
});
