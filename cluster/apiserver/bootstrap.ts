// State the apiserver keeps itself: the system namespaces, and the `kubernetes` Service
// with Endpoints/EndpointSlice pointing at the apiserver (a selector-less Service, so the
// endpoints controller leaves it alone).
import { randomUUID } from 'node:crypto';
import type { Store } from '../store/types.js';
import { isStoreError } from '../store/types.js';
import { nowRfc3339, type Json } from './util.js';

export const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

function newMeta(name: string, namespace?: string, labels?: Record<string, string>): Json {
  const m: Json = { name, uid: randomUUID(), creationTimestamp: nowRfc3339(), generation: 1 };
  if (namespace) m.namespace = namespace;
  if (labels) m.labels = labels;
  return m;
}

async function ensure(store: Store, key: string, obj: Json): Promise<void> {
  try {
    await store.create(key, obj);
  } catch (e) {
    if (!isStoreError(e, 'AlreadyExists')) throw e;
  }
}

/** Creates or refreshes an object owned by the apiserver, keeping its identity. */
async function reconcile(store: Store, key: string, desired: Json, fields: string[]): Promise<void> {
  for (let i = 0; i < 5; i++) {
    const cur = await store.get(key);
    if (!cur) { await ensure(store, key, desired); return; }
    const next: Json = { ...cur };
    let changed = false;
    for (const f of fields) {
      if (JSON.stringify(cur[f]) !== JSON.stringify(desired[f])) { next[f] = desired[f]; changed = true; }
    }
    if (!changed) return;
    try {
      await store.update(key, next, Number((cur.metadata as Json).resourceVersion));
      return;
    } catch (e) {
      if (!isStoreError(e, 'Conflict')) throw e;
    }
  }
}

export async function bootstrap(store: Store, opts: { kubernetesServiceIP: string; port: number; endpointIP: string }): Promise<void> {
  for (const ns of SYSTEM_NAMESPACES) {
    await ensure(store, `/registry/namespaces/${ns}`, {
      apiVersion: 'v1', kind: 'Namespace',
      metadata: newMeta(ns, undefined, { 'kubernetes.io/metadata.name': ns }),
      spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' },
    });
  }
  const labels = { component: 'apiserver', provider: 'kubernetes' };
  await reconcile(store, '/registry/services/default/kubernetes', {
    apiVersion: 'v1', kind: 'Service', metadata: newMeta('kubernetes', 'default', labels),
    spec: {
      type: 'ClusterIP', clusterIP: opts.kubernetesServiceIP, clusterIPs: [opts.kubernetesServiceIP], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack',
      ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: opts.port }], sessionAffinity: 'None', internalTrafficPolicy: 'Cluster',
    },
    status: { loadBalancer: {} },
  }, ['spec']);
  await reconcile(store, '/registry/endpoints/default/kubernetes', {
    apiVersion: 'v1', kind: 'Endpoints', metadata: newMeta('kubernetes', 'default', { 'endpointslice.kubernetes.io/skip-mirror': 'true' }),
    subsets: [{ addresses: [{ ip: opts.endpointIP }], ports: [{ name: 'https', port: opts.port, protocol: 'TCP' }] }],
  }, ['subsets']);
  await reconcile(store, '/registry/endpointslices.discovery.k8s.io/default/kubernetes', {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: newMeta('kubernetes', 'default', { 'kubernetes.io/service-name': 'kubernetes', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' }),
    addressType: 'IPv4',
    endpoints: [{ addresses: [opts.endpointIP], conditions: { ready: true } }],
    ports: [{ name: 'https', port: opts.port, protocol: 'TCP' }],
  }, ['endpoints', 'ports']);
}
