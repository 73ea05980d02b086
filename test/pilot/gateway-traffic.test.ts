// A Gateway through real parts: the project's API server, pilot reading it, a real proxy in
// router mode (node type router, listeners bound to their ports) and two HTTP apps on
// loopback addresses standing for the v1 and v2 pods. Requests to the gateway port are
// split by the VirtualService bound to the Gateway, and a change to it is followed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { R, type Endpoints, type KubeObject, type Service } from '../../api/kube/index.js';
import { startApp, waitFor } from '../proxy/fixtures.js';
import { gateway, gatewayVs, httpServer } from './gateway-fixtures.js';
import { reviewsDr, slicesFor } from './fixtures.js';
import { createPod, get, startMeshApi, startRouter } from './router-harness.js';

const cleanups: (() => Promise<void>)[] = [];
after(async () => { for (const c of cleanups.reverse()) { try { await c(); } catch { /* best effort */ } } });

test('ingress through a router proxy: Gateway + bound VirtualService split the traffic', async () => {
  const { client, close } = await startMeshApi();
  cleanups.push(close);

  // Two "pods" on loopback addresses, one app each.
  const v1 = await startApp('reviews-v1', '127.0.0.11');
  const v2 = await startApp('reviews-v2', '127.0.0.12');
  cleanups.push(async () => { v1.server.close(); v2.server.close(); });
  await createPod(client, 'reviews-v1-abc', 'default', '127.0.0.11', { app: 'reviews', version: 'v1' }, v1.port);
  await createPod(client, 'reviews-v2-def', 'default', '127.0.0.12', { app: 'reviews', version: 'v2' }, v2.port);
  await client.create<Service>(R.services, { metadata: { name: 'reviews', namespace: 'default' }, spec: { selector: { app: 'reviews' }, ports: [{ name: 'http', port: 9080, targetPort: 'http', protocol: 'TCP' }] } });
  // Different ports per pod: one EndpointSlice each, as the slice controller writes them.
  const reviewsEps: Endpoints = {
    metadata: { name: 'reviews', namespace: 'default' },
    subsets: [
      { addresses: [{ ip: '127.0.0.11', targetRef: { kind: 'Pod', name: 'reviews-v1-abc', namespace: 'default' } }], ports: [{ name: 'http', port: v1.port, protocol: 'TCP' }] },
      { addresses: [{ ip: '127.0.0.12', targetRef: { kind: 'Pod', name: 'reviews-v2-def', namespace: 'default' } }], ports: [{ name: 'http', port: v2.port, protocol: 'TCP' }] },
    ],
  };
  for (const sl of slicesFor(reviewsEps)) await client.create(R.endpointSlices, sl);
  await client.create(R.destinationRules, reviewsDr());

  await client.create(R.gateways, gateway('reviews-gateway', [httpServer(['*'])]));
  const split = (w1: number, w2: number) => [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: w1 }, { destination: { host: 'reviews', subset: 'v2' }, weight: w2 }] }];
  await client.create(R.virtualServices, gatewayVs('reviews-ingress', ['reviews.example.com'], ['reviews-gateway'], split(80, 20)));

  const router = await startRouter(client);
  cleanups.push(() => router.stop());
  const gwPort = router.port;
  await waitFor('the gateway listener', async () => (await get(gwPort, 'reviews.example.com').catch(() => ({ status: 0 }))).status === 200, 20_000);

  const counts = { 'reviews-v1': 0, 'reviews-v2': 0 } as Record<string, number>;
  for (let i = 0; i < 200; i++) {
    const r = await get(gwPort, i % 2 ? 'reviews.example.com' : 'reviews.example.com:80');
    assert.equal(r.status, 200);
    counts[r.body.split(' ')[0]]++;
  }
  assert.ok(counts['reviews-v1'] >= 140 && counts['reviews-v1'] <= 180, `80/20 split: ${JSON.stringify(counts)}`);
  assert.equal(counts['reviews-v1'] + counts['reviews-v2'], 200);
  assert.equal((await get(gwPort, 'other.example.com')).status, 404, 'a host no VirtualService serves on the gateway');

  const current = await client.get<KubeObject & { spec: Record<string, unknown> }>(R.virtualServices, 'reviews-ingress', 'default');
  await client.update(R.virtualServices, { ...current, spec: { ...current.spec, http: split(0, 100) } });
  await waitFor('the 0/100 split at the gateway', async () => {
    for (let i = 0; i < 10; i++) if (!(await get(gwPort, 'reviews.example.com')).body.startsWith('reviews-v2')) return false;
    return true;
  }, 20_000);
});
