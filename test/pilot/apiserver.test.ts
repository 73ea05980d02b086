// Pilot's informers against the project's own apiserver (the real Kubernetes REST API over
// HTTPS with a bearer token): Istio CRDs installed, objects created, a proxy gets subset
// clusters with the right endpoints, and a VirtualService update is pushed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeClient, R, type KubeObject, type Pod, type Service } from '../../api/kube/index.js';
import { TYPE_URL } from '../../api/xds/protos.js';
import { startApiServer, type ApiServer } from '../../cluster/apiserver/index.js';
import { MemoryStore } from '../../cluster/store/index.js';
import { Pilot } from '../../pilot/pilot.js';
import { AdsClient } from './ads-client.js';
import { REVIEWS, V1_IP, V1_NODE_ID, V2_IP, bookinfo, reviewsVs, slicesFor } from './fixtures.js';
import { networkingCrd } from './crds.js';

const cleanups: (() => Promise<void>)[] = [];
after(async () => { for (const c of cleanups.reverse()) { try { await c(); } catch { /* best effort */ } } });


test('pilot informers against the project apiserver', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-apiserver-'));
  cleanups.push(async () => fs.rmSync(dataDir, { recursive: true, force: true }));
  const api: ApiServer = await startApiServer({ dataDir, store: new MemoryStore(), listen: [{ host: '127.0.0.1', port: 0 }] });
  cleanups.push(() => api.close());
  const client = KubeClient.fromKubeconfig(api.kubeconfigPath);
  cleanups.push(() => client.close());

  await client.create(R.customResourceDefinitions, networkingCrd('virtualservices', 'VirtualService'));
  await client.create(R.customResourceDefinitions, networkingCrd('destinationrules', 'DestinationRule'));
  const world = bookinfo([reviewsVs(80, 20)]);
  if (!(await client.find(R.namespaces, 'default'))) await client.create(R.namespaces, { metadata: { name: 'default' } });
  const clusterIPs = new Map<string, string>();
  for (const s of world.services) {
    const { clusterIP: _ip, ...spec } = s.spec;
    const created = await client.create<Service>(R.services, { ...s, spec });
    clusterIPs.set(s.metadata.name ?? '', created.spec.clusterIP ?? '');
  }
  for (const p of world.pods) {
    const created = await client.create<Pod>(R.pods, { metadata: p.metadata, spec: p.spec });
    await client.updateStatus<Pod>(R.pods, { ...created, status: p.status });
  }
  // Pilot reads EndpointSlices where served (no endpoints controller runs here: written by hand).
  for (const e of world.endpoints) for (const sl of slicesFor(e)) await client.create(R.endpointSlices, sl);
  for (const d of world.destinationRules) await client.create(R.destinationRules, d);
  for (const v of world.virtualServices) await client.create(R.virtualServices, v);

  const pilot = new Pilot(client, { host: '127.0.0.1', xdsPort: 0, debugPort: 0, syncTimeoutMs: 15_000 });
  cleanups.push(() => pilot.stop());
  const { xdsPort, debugPort } = await pilot.start();
  assert.equal((await fetch(`http://127.0.0.1:${debugPort}/ready`)).status, 200);
  assert.deepEqual(pilot.sources.crdVersions, { virtualservices: 'v1', destinationrules: 'v1', gateways: null, peerauthentications: null, authorizationpolicies: null, serviceentries: null, sidecars: null });

  const c = new AdsClient(`127.0.0.1:${xdsPort}`, { id: V1_NODE_ID });
  cleanups.push(async () => c.close());
  c.request(TYPE_URL.cluster);
  const cds = await c.next();
  assert.ok(cds.resources.some((r) => r.name === 'inbound|9080||'), 'inbound cluster of the v1 pod');
  c.ack(cds);
  const subsets = [`outbound|9080|v1|${REVIEWS}`, `outbound|9080|v2|${REVIEWS}`];
  c.request(TYPE_URL.clusterLoadAssignment, { names: subsets });
  const eds = await c.next();
  const addrs = (eds.resources as { clusterName: string; endpoints: { lbEndpoints: { endpoint: { address: { socketAddress: { address: string } } } }[] }[] }[])
    .map((cla) => [cla.clusterName, cla.endpoints.flatMap((l) => l.lbEndpoints.map((e) => e.endpoint.address.socketAddress.address))]);
  assert.deepEqual(addrs, [[subsets[0], [V1_IP]], [subsets[1], [V2_IP]]]);
  c.ack(eds, subsets);
  c.request(TYPE_URL.routeConfiguration, { names: ['9080'] });
  const rds = await c.next();
  const vh = (rds.resources[0] as { virtualHosts: { domains: string[] }[] }).virtualHosts[0];
  assert.ok(vh.domains.includes(clusterIPs.get('reviews') ?? 'missing'), 'the allocated cluster IP is a domain');
  c.ack(rds, ['9080']);

  const current = await client.get<KubeObject & { spec: unknown }>(R.virtualServices, 'reviews', 'default');
  await client.update(R.virtualServices, { ...current, spec: reviewsVs(50, 50).spec });
  const rds2 = await c.next(5_000);
  assert.equal(rds2.typeUrl, TYPE_URL.routeConfiguration);
  const weights = (rds2.resources[0] as { virtualHosts: { routes: { route: { weightedClusters: { clusters: { weight: { value: number } }[] } } }[] }[] })
    .virtualHosts[0].routes[0].route.weightedClusters.clusters.map((x) => x.weight.value);
  assert.deepEqual(weights, [50, 50]);
});
