// A Gateway through real parts: the project's API server, pilot reading it, a real proxy in
// router mode (node type router, listeners bound to their ports) and two HTTP apps on
// loopback addresses standing for the v1 and v2 pods. Requests to the gateway port are
// split by the VirtualService bound to the Gateway, and a change to it is followed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { KubeClient, R, type Endpoints, type KubeObject, type Pod, type Service } from '../../api/kube/index.js';
import { startApiServer } from '../../cluster/apiserver/index.js';
import { MemoryStore } from '../../cluster/store/index.js';
import { Pilot } from '../../pilot/pilot.js';
import { Sidecar } from '../../proxy/sidecar.js';
import { freePort, startApp, waitFor } from '../proxy/fixtures.js';
import { gateway, gatewayVs, httpServer } from './gateway-fixtures.js';
import { reviewsDr, slicesFor } from './fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
after(async () => { for (const c of cleanups.reverse()) { try { await c(); } catch { /* best effort */ } } });

function crd(plural: string, kind: string): KubeObject {
  const schema = { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } };
  return {
    metadata: { name: `${plural}.networking.istio.io` },
    spec: {
      group: 'networking.istio.io', scope: 'Namespaced',
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
      versions: [{ name: 'v1', served: true, storage: true, schema }, { name: 'v1beta1', served: true, storage: false, schema }],
    },
  };
}

function get(port: number, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', headers: { host }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function createPod(client: KubeClient, name: string, namespace: string, ip: string, labels: Record<string, string>, port: number): Promise<void> {
  const created = await client.create<Pod>(R.pods, {
    metadata: { name, namespace, labels },
    spec: { containers: [{ name: 'app', image: 'trellis/sample-http:0.1.0', ports: [{ name: 'http', containerPort: port }] }] },
  });
  await client.updateStatus<Pod>(R.pods, { ...created, status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } });
}

test('ingress through a router proxy: Gateway + bound VirtualService split the traffic', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-gateway-'));
  cleanups.push(async () => fs.rmSync(dataDir, { recursive: true, force: true }));
  const api = await startApiServer({ dataDir, store: new MemoryStore(), listen: [{ host: '127.0.0.1', port: 0 }] });
  cleanups.push(() => api.close());
  const client = KubeClient.fromKubeconfig(api.kubeconfigPath);
  cleanups.push(() => client.close());
  for (const [plural, kind] of [['virtualservices', 'VirtualService'], ['destinationrules', 'DestinationRule'], ['gateways', 'Gateway']]) {
    await client.create(R.customResourceDefinitions, crd(plural, kind));
  }
  for (const ns of ['default', 'trellis-system']) if (!(await client.find(R.namespaces, ns))) await client.create(R.namespaces, { metadata: { name: ns } });

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

  // The gateway workload: its Service maps port 80 to the port the router binds.
  const gwPort = await freePort();
  await createPod(client, 'istio-ingressgateway-xyz', 'trellis-system', '127.0.0.1', { istio: 'ingressgateway' }, gwPort);
  await client.create<Service>(R.services, { metadata: { name: 'istio-ingressgateway', namespace: 'trellis-system' }, spec: { type: 'ClusterIP', selector: { istio: 'ingressgateway' }, ports: [{ name: 'http2', port: 80, targetPort: gwPort, protocol: 'TCP' }] } });
  await client.create(R.gateways, gateway('reviews-gateway', [httpServer(['*'])]));
  const split = (w1: number, w2: number) => [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: w1 }, { destination: { host: 'reviews', subset: 'v2' }, weight: w2 }] }];
  await client.create(R.virtualServices, gatewayVs('reviews-ingress', ['reviews.example.com'], ['reviews-gateway'], split(80, 20)));

  const pilot = new Pilot(client, { host: '127.0.0.1', xdsPort: 0, debugPort: 0, syncTimeoutMs: 15_000, quietMs: 20, maxMs: 200 });
  cleanups.push(() => pilot.stop());
  const { xdsPort } = await pilot.start();

  const router = new Sidecar({
    pilotAddress: `127.0.0.1:${xdsPort}`, nodeType: 'router', log: () => {}, accessLog: () => {},
    identity: { podName: 'istio-ingressgateway-xyz', namespace: 'trellis-system', instanceIp: '127.0.0.1', serviceAccount: 'default', workloadName: 'istio-ingressgateway', labels: { istio: 'ingressgateway' }, domain: 'cluster.local' },
    ports: { admin: 0, prometheus: 0, readiness: 0 },
  });
  cleanups.push(() => router.stop());
  await router.start();
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
