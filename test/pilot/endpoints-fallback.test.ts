// Pilot on a cluster that does not serve discovery.k8s.io (the project's API server started
// with kube-apiserver's --runtime-config discovery.k8s.io/v1=false): it reads core/v1
// Endpoints instead of EndpointSlices, and a proxy's EDS follows them, also on a change.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { KubeClient, R, type Endpoints, type Pod, type Service } from '../../api/kube/index.js';
import { TYPE_URL } from '../../api/xds/protos.js';
import type { ApiServer } from '../../cluster/apiserver/index.js';
import { startTestServer } from '../apiserver/helpers.js';
import { Pilot } from '../../pilot/pilot.js';
import { AdsClient, type Response } from './ads-client.js';
import { RATINGS, RATINGS_IP, V1_NODE_ID, bookinfo, endpoints } from './fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
after(async () => { for (const c of cleanups.reverse()) { try { await c(); } catch { /* best effort */ } } });

function get(api: ApiServer, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https.get(`${api.url}${urlPath}`, { ca: api.caCertPem, headers: { authorization: `Bearer ${api.adminToken}` } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

type Cla = { clusterName: string; endpoints?: { lbEndpoints: { endpoint: { address: { socketAddress: { address: string } } } }[] }[] };
const addresses = (r: Response, cluster: string): string[] => (r.resources as Cla[]).find((c) => c.clusterName === cluster)?.endpoints
  ?.flatMap((l) => l.lbEndpoints.map((e) => e.endpoint.address.socketAddress.address)).sort() ?? [];

test('without discovery.k8s.io, pilot builds EDS from core/v1 Endpoints and follows their changes', async () => {
  const ts = await startTestServer({ memory: true, runtimeConfig: { 'discovery.k8s.io/v1': false } });
  cleanups.push(() => ts.stop());
  const api = ts.server;
  // The group is really absent: not in discovery, and its resources are 404.
  const groups = JSON.parse((await get(api, '/apis')).body) as { groups: { name: string }[] };
  assert.ok(!groups.groups.some((g) => g.name === 'discovery.k8s.io'), 'discovery.k8s.io is not listed');
  assert.equal((await get(api, '/apis/discovery.k8s.io/v1/endpointslices')).status, 404);

  const client = KubeClient.fromKubeconfig(api.kubeconfigPath);
  cleanups.push(() => client.close());
  const world = bookinfo([]);
  if (!(await client.find(R.namespaces, 'default'))) await client.create(R.namespaces, { metadata: { name: 'default' } });
  await Promise.all([
    ...world.services.map((s) => {
      const { clusterIP: _ip, ...spec } = s.spec;
      return client.create<Service>(R.services, { ...s, spec });
    }),
    ...world.pods.map(async (p) => {
      const created = await client.create<Pod>(R.pods, { metadata: p.metadata, spec: p.spec });
      await client.updateStatus<Pod>(R.pods, { ...created, status: p.status });
    }),
    ...world.endpoints.map((e) => client.create(R.endpoints, e)),
  ]);

  const pilot = new Pilot(client, { host: '127.0.0.1', xdsPort: 0, debugPort: 0, syncTimeoutMs: 15_000, writeStatus: false });
  cleanups.push(() => pilot.stop());
  const { xdsPort } = await pilot.start();

  const c = new AdsClient(`127.0.0.1:${xdsPort}`, { id: V1_NODE_ID });
  cleanups.push(async () => c.close());
  c.request(TYPE_URL.cluster);
  c.ack(await c.next());
  const ratings = `outbound|8080||${RATINGS}`;
  c.request(TYPE_URL.clusterLoadAssignment, { names: [ratings] });
  const eds = await c.next();
  assert.deepEqual(addresses(eds, ratings), [RATINGS_IP], 'the ratings endpoint comes from the Endpoints object');
  c.ack(eds, [ratings]);

  // A second ratings pod appears in the Endpoints: pushed as EDS.
  const current = await client.get<Endpoints>(R.endpoints, 'ratings', 'default');
  const next = endpoints('ratings', 8080, [{ ip: RATINGS_IP, pod: 'ratings-0' }, { ip: '10.244.0.22', pod: 'ratings-1' }]);
  await client.update(R.endpoints, { ...current, subsets: next.subsets });
  const eds2 = await c.next(10_000);
  assert.equal(eds2.typeUrl, TYPE_URL.clusterLoadAssignment);
  assert.deepEqual(addresses(eds2, ratings), [RATINGS_IP, '10.244.0.22'].sort());
});
