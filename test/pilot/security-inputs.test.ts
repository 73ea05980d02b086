// PeerAuthentication and AuthorizationPolicy reach pilot through the Kubernetes API (the
// project's own apiserver, security.istio.io served only as v1beta1 so the fallback is used),
// and each change is pushed to a connected proxy's inbound listener.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeClient, R, type KubeObject, type Pod, type Service } from '../../api/kube/index.js';
import { TYPE_URL } from '../../api/xds/protos.js';
import { startApiServer } from '../../cluster/apiserver/index.js';
import { MemoryStore } from '../../cluster/store/index.js';
import { Pilot } from '../../pilot/pilot.js';
import { typeUnaffected } from '../../pilot/xds/change-scope.js';
import { AdsClient } from './ads-client.js';
import { V1_NODE_ID, bookinfo, slicesFor } from './fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
after(async () => { for (const c of cleanups.reverse()) { try { await c(); } catch { /* best effort */ } } });

function securityCrd(plural: string, kind: string): KubeObject {
  const schema = { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } };
  return {
    metadata: { name: `${plural}.security.istio.io` },
    spec: {
      group: 'security.istio.io', scope: 'Namespaced',
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
      versions: [{ name: 'v1beta1', served: true, storage: true, schema }],
    },
  };
}

type Chain = { filterChainMatch?: { destinationPort?: { value: number }; transportProtocol?: string }; filters: { typedConfig: { httpFilters?: { name: string }[] } }[] };
type Lds = { name: string; filterChains: Chain[] }[];
const chains = (lds: Lds): string[] => (lds.find((l) => l.name === 'virtualInbound')?.filterChains ?? [])
  .map((c) => `${c.filterChainMatch?.destinationPort?.value ?? '*'}/${c.filterChainMatch?.transportProtocol ?? 'any'}`);

test('security policies through the apiserver: v1beta1 fallback, each change pushed', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-sec-'));
  cleanups.push(async () => fs.rmSync(dataDir, { recursive: true, force: true }));
  const api = await startApiServer({ dataDir, store: new MemoryStore(), listen: [{ host: '127.0.0.1', port: 0 }] });
  cleanups.push(() => api.close());
  const client = KubeClient.fromKubeconfig(api.kubeconfigPath);
  cleanups.push(() => client.close());
  await client.create(R.customResourceDefinitions, securityCrd('peerauthentications', 'PeerAuthentication'));
  await client.create(R.customResourceDefinitions, securityCrd('authorizationpolicies', 'AuthorizationPolicy'));
  const world = bookinfo([]);
  if (!(await client.find(R.namespaces, 'default'))) await client.create(R.namespaces, { metadata: { name: 'default' } });
  await client.create(R.namespaces, { metadata: { name: 'mesh-root' } });
  for (const s of world.services) { const { clusterIP: _ip, ...spec } = s.spec; await client.create<Service>(R.services, { ...s, spec }); }
  for (const p of world.pods) {
    const created = await client.create<Pod>(R.pods, { metadata: p.metadata, spec: p.spec });
    await client.updateStatus<Pod>(R.pods, { ...created, status: p.status });
  }
  for (const e of world.endpoints) for (const sl of slicesFor(e)) await client.create(R.endpointSlices, sl);

  const pilot = new Pilot(client, { host: '127.0.0.1', xdsPort: 0, debugPort: 0, syncTimeoutMs: 15_000, quietMs: 20, security: { enabled: true, rootNamespace: 'mesh-root' } });
  cleanups.push(() => pilot.stop());
  const { xdsPort } = await pilot.start();
  assert.deepEqual(pilot.sources.crdVersions, { virtualservices: null, destinationrules: null, gateways: null, peerauthentications: 'v1beta1', authorizationpolicies: 'v1beta1', serviceentries: null, sidecars: null });

  const c = new AdsClient(`127.0.0.1:${xdsPort}`, { id: V1_NODE_ID });
  cleanups.push(async () => c.close());
  c.request(TYPE_URL.listener);
  let lds = await c.next(10_000);
  c.ack(lds);
  assert.deepEqual(chains(lds.resources as Lds), ['9080/tls', '9080/raw_buffer', '*/tls', '*/raw_buffer'], 'PERMISSIVE by default');

  const paRef = { ...R.peerAuthentications, version: 'v1beta1' };
  await client.create(paRef, { apiVersion: 'security.istio.io/v1beta1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'mesh-root' }, spec: { mtls: { mode: 'STRICT' } } });
  lds = await c.next(10_000);
  c.ack(lds);
  assert.deepEqual(chains(lds.resources as Lds), ['9080/tls', '*/tls'], 'a mesh-wide STRICT policy in the root namespace is pushed');

  const apRef = { ...R.authorizationPolicies, version: 'v1beta1' };
  await client.create(apRef, { apiVersion: 'security.istio.io/v1beta1', kind: 'AuthorizationPolicy', metadata: { name: 'reviews', namespace: 'default' }, spec: { selector: { matchLabels: { app: 'reviews' } }, rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/a'] } }] }] } });
  lds = await c.next(10_000);
  c.ack(lds);
  const inbound = (lds.resources as Lds).find((l) => l.name === 'virtualInbound');
  assert.deepEqual(inbound?.filterChains[0].filters[0].typedConfig.httpFilters?.map((f) => f.name), ['envoy.filters.http.rbac', 'envoy.filters.http.router']);

  await client.delete(paRef, 'default', 'mesh-root');
  lds = await c.next(10_000);
  assert.deepEqual(chains(lds.resources as Lds), ['9080/tls', '9080/raw_buffer', '*/tls', '*/raw_buffer'], 'deleting the policy goes back to PERMISSIVE');
});

test('change scope: a security policy change regenerates listeners (and clusters for PeerAuthentication), not routes or endpoints', () => {
  const scope = (k: string) => ({ full: false, kinds: new Set([k]) });
  assert.deepEqual(['cds', 'eds', 'lds', 'rds'].map((t) => typeUnaffected(scope('authorizationPolicies'), t)), [true, true, false, true]);
  assert.deepEqual(['cds', 'eds', 'lds', 'rds'].map((t) => typeUnaffected(scope('peerAuthentications'), t)), [false, true, false, true]);
  assert.equal(typeUnaffected(scope('pods'), 'lds'), false, 'pod labels decide which policies select a workload');
});
