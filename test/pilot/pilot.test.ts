// Pilot assembled, reading the cluster only through the Kubernetes REST API (the
// project's own API server here): informers sync, the Istio CRDs fall back to v1beta1 when v1 is
// not served, /ready turns 200, a proxy gets its config, and a watched VirtualService
// change reaches it as a debounced RDS push.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeClient, R, type KubeObject, type Pod, type Service } from '../../api/kube/index.js';
import { startApiServer } from '../../cluster/apiserver/index.js';
import { MemoryStore } from '../../cluster/store/index.js';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Pilot } from '../../pilot/pilot.js';
import { Debouncer } from '../../pilot/model/debounce.js';
import { AdsClient } from './ads-client.js';
import { REVIEWS, V1_NODE_ID, bookinfo, reviewsVs, slicesFor } from './fixtures.js';
import { networkingCrd } from './crds.js';


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
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-test-'));
  cleanups.push(async () => fs.rmSync(dataDir, { recursive: true, force: true }));
  const api = await startApiServer({ dataDir, store: new MemoryStore(), listen: [{ host: '127.0.0.1', port: 0 }] });
  cleanups.push(() => api.close());
  const admin = KubeClient.fromKubeconfig(api.kubeconfigPath);
  cleanups.push(() => admin.close());
  // VirtualService served only as v1beta1 (an older Istio's CRD): pilot must fall back to it.
  await admin.create(R.customResourceDefinitions, networkingCrd('virtualservices', 'VirtualService', ['v1beta1']));
  await admin.create(R.customResourceDefinitions, networkingCrd('destinationrules', 'DestinationRule', ['v1']));
  const vsV1beta1 = { ...R.virtualServices, version: 'v1beta1' };
  const world = bookinfo([reviewsVs(80, 20)]);
  if (!(await admin.find(R.namespaces, 'default'))) await admin.create(R.namespaces, { metadata: { name: 'default' } });
  for (const s of world.services) {
    const { clusterIP: _ip, ...spec } = s.spec;
    await admin.create<Service>(R.services, { ...s, spec });
  }
  for (const p of world.pods) {
    const created = await admin.create<Pod>(R.pods, { metadata: p.metadata, spec: p.spec });
    await admin.updateStatus<Pod>(R.pods, { ...created, status: p.status });
  }
  for (const e of world.endpoints) for (const sl of slicesFor(e)) await admin.create(R.endpointSlices, sl);
  for (const o of world.virtualServices) await admin.create(vsV1beta1, { ...o, apiVersion: 'networking.istio.io/v1beta1' });
  for (const o of world.destinationRules) await admin.create(R.destinationRules, o);

  const client = KubeClient.fromKubeconfig(api.kubeconfigPath, 'pilot');
  const pilot = new Pilot(client, { host: '127.0.0.1', xdsPort: 0, debugPort: 0, syncTimeoutMs: 10_000 });
  cleanups.push(async () => { await pilot.stop(); await client.close(); });
  const { xdsPort, debugPort } = await pilot.start();

  const ready = await fetch(`http://127.0.0.1:${debugPort}/ready`);
  assert.equal(ready.status, 200);
  const configz = await (await fetch(`http://127.0.0.1:${debugPort}/debug/configz`)).json() as { crdVersions: Record<string, string>; inputs: { virtualServices: unknown[] } };
  assert.deepEqual(configz.crdVersions, { virtualservices: 'v1beta1', destinationrules: 'v1', gateways: null, peerauthentications: null, authorizationpolicies: null, serviceentries: null, sidecars: null });
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
  const current = await admin.get<KubeObject & { spec: unknown }>(vsV1beta1, 'reviews', 'default');
  await admin.update(vsV1beta1, { ...current, spec: reviewsVs(50, 50).spec });
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
