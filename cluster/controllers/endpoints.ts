// Endpoints controller: for each Service with a selector, an Endpoints object of the same
// name (ready pods in addresses, unready in notReadyAddresses) and EndpointSlices
// (discovery.k8s.io/v1) labelled kubernetes.io/service-name. Objects are written only when
// their content changes, so a pod's heartbeat does not become an endpoints write.
import { createHash } from 'node:crypto';
import {
  R, WorkQueue, isAlreadyExists, isNotFound, keyOf, matchesMap,
  type EndpointSubset, type Endpoints, type Informer, type KubeClient, type KubeObject, type Pod, type Service,
} from '../../api/kube/index.js';
import { stableStringify } from './deployment-util.js';
import { endpointGroups, type EndpointGroup } from './endpoint-addresses.js';
import { newControllerRef, splitKey } from './owner.js';
import { quietConflicts } from './conflict.js';
import type { SharedInformers } from './shared-informers.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
export const MANAGED_BY = 'endpointslice-controller.k8s.io';

export interface EndpointSlice extends KubeObject {
  addressType: 'IPv4' | 'IPv6';
  endpoints: {
    addresses: string[];
    conditions: { ready: boolean; serving: boolean; terminating: boolean };
    nodeName?: string;
    hostname?: string;
    targetRef?: { kind: string; name: string; namespace?: string; uid?: string };
  }[];
  ports: { name?: string; port: number; protocol?: string; appProtocol?: string }[];
}

export class EndpointsController {
  private readonly services: Informer<Service>;
  private readonly pods: Informer<Pod>;
  private readonly endpoints: Informer<Endpoints>;
  private readonly slices: Informer<EndpointSlice>;
  private readonly queue: WorkQueue;

  constructor(private readonly client: KubeClient, informers: SharedInformers) {
    this.services = informers.for<Service>(R.services);
    this.pods = informers.for<Pod>(R.pods);
    this.endpoints = informers.for<Endpoints>(R.endpoints);
    this.slices = informers.for<EndpointSlice>(R.endpointSlices);
    this.queue = new WorkQueue('endpoints', quietConflicts((k) => this.sync(k), (k, ms) => this.queue.addAfter(k, ms)), 2);
    const enqueue = (o: KubeObject) => this.queue.add(keyOf(o));
    this.services.on({ add: enqueue, update: (_o, s) => enqueue(s), delete: enqueue });
    this.pods.on({
      add: (p) => this.enqueueServicesOf(p),
      update: (old, p) => { this.enqueueServicesOf(old); this.enqueueServicesOf(p); },
      delete: (p) => this.enqueueServicesOf(p),
    });
    // Someone else changed or deleted what we own: converge it back.
    this.endpoints.on({ update: (_o, e) => enqueue(e), delete: enqueue });
    const sliceOwner = (s: EndpointSlice) => {
      const svc = s.metadata.labels?.[SERVICE_NAME_LABEL];
      if (svc && s.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY) this.queue.add(`${s.metadata.namespace}/${svc}`);
    };
    this.slices.on({ update: (_o, s) => sliceOwner(s), delete: sliceOwner });
  }

  stop(): void { this.queue.stop(); }

  private enqueueServicesOf(pod: Pod): void {
    for (const svc of this.services.list()) {
      if (svc.metadata.namespace === pod.metadata.namespace && matchesMap(svc.spec.selector, pod.metadata.labels)) this.queue.add(keyOf(svc));
    }
  }

  async sync(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    const svc = this.services.get(key);
    if (!svc) {
      if (this.endpoints.get(key)) await ignoreNotFound(this.client.delete(R.endpoints, name, namespace));
      for (const s of this.managedSlices(namespace, name)) await ignoreNotFound(this.client.delete(R.endpointSlices, s.metadata.name as string, namespace));
      return;
    }
    // Without a selector the user manages the endpoints.
    if (!svc.spec.selector || Object.keys(svc.spec.selector).length === 0) return;
    const pods = this.pods.list().filter((p) => p.metadata.namespace === namespace && matchesMap(svc.spec.selector, p.metadata.labels));
    const groups = endpointGroups(svc, pods);
    await this.syncEndpoints(svc, groups);
    await this.syncSlices(svc, groups);
  }

  private async syncEndpoints(svc: Service, groups: EndpointGroup[]): Promise<void> {
    const publishNotReady = (svc.spec as { publishNotReadyAddresses?: boolean }).publishNotReadyAddresses === true;
    const subsets: EndpointSubset[] = [];
    for (const g of groups) {
      // As Kubernetes, the Endpoints API leaves terminating pods out entirely.
      const eps = g.endpoints.filter((e) => publishNotReady || !e.terminating);
      const addresses = eps.filter((e) => e.ready || publishNotReady).map((e) => e.address);
      const notReady = eps.filter((e) => !(e.ready || publishNotReady)).map((e) => e.address);
      if (!addresses.length && !notReady.length) continue;
      const subset: EndpointSubset = { ports: g.ports };
      if (addresses.length) subset.addresses = addresses;
      if (notReady.length) subset.notReadyAddresses = notReady;
      subsets.push(subset);
    }
    const labels = { ...(svc.metadata.labels ?? {}) };
    if (svc.spec.clusterIP === 'None') labels['service.kubernetes.io/headless'] = '';
    const cur = this.endpoints.get(keyOf(svc));
    if (cur && stableStringify(cur.subsets ?? []) === stableStringify(subsets) && stableStringify(cur.metadata.labels ?? {}) === stableStringify(labels)) return;
    const desired: Endpoints = { metadata: { name: svc.metadata.name, namespace: svc.metadata.namespace, labels }, subsets };
    if (!cur) {
      try { await this.client.create(R.endpoints, desired); return; } catch (e) {
        if (!isAlreadyExists(e)) throw e;
        // Created by an earlier sync the cache has not seen yet: update it instead.
        const live = await this.client.get<Endpoints>(R.endpoints, svc.metadata.name as string, svc.metadata.namespace);
        await this.client.update(R.endpoints, { ...live, metadata: { ...live.metadata, labels }, subsets });
        return;
      }
    }
    await this.client.update(R.endpoints, { ...cur, metadata: { ...cur.metadata, labels }, subsets });
  }

  private managedSlices(namespace: string, service: string): EndpointSlice[] {
    return this.slices.list().filter((s) => s.metadata.namespace === namespace
      && s.metadata.labels?.[SERVICE_NAME_LABEL] === service && s.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY);
  }

  private async syncSlices(svc: Service, groups: EndpointGroup[]): Promise<void> {
    const desired = desiredSlices(svc, groups);
    const existing = this.managedSlices(svc.metadata.namespace as string, svc.metadata.name as string);
    for (const s of existing) {
      if (!desired.some((d) => d.metadata.name === s.metadata.name)) {
        await ignoreNotFound(this.client.delete(R.endpointSlices, s.metadata.name as string, s.metadata.namespace));
      }
    }
    for (const want of desired) {
      const cur = existing.find((s) => s.metadata.name === want.metadata.name);
      if (cur && sliceContent(cur) === sliceContent(want)) continue;
      if (!cur) {
        try { await this.client.create(R.endpointSlices, want); continue; } catch (e) {
          if (!isAlreadyExists(e)) throw e;
        }
      }
      const live = cur ?? await this.client.get<EndpointSlice>(R.endpointSlices, want.metadata.name as string, want.metadata.namespace);
      await this.client.update(R.endpointSlices, { ...live, ...want, metadata: { ...live.metadata, labels: want.metadata.labels, ownerReferences: want.metadata.ownerReferences } });
    }
  }
}

function sliceContent(s: EndpointSlice): string {
  return stableStringify({ a: s.addressType, e: s.endpoints, p: s.ports, l: s.metadata.labels, o: s.metadata.ownerReferences });
}

/** One slice per (address family, port set); a Service without endpoints keeps one empty slice. */
export function desiredSlices(svc: Service, groups: EndpointGroup[]): EndpointSlice[] {
  const ns = svc.metadata.namespace as string;
  const name = svc.metadata.name as string;
  const labels = { ...(svc.metadata.labels ?? {}), [SERVICE_NAME_LABEL]: name, [MANAGED_BY_LABEL]: MANAGED_BY };
  const owner = newControllerRef(svc, 'v1', 'Service');
  const slice = (addressType: 'IPv4' | 'IPv6', ports: EndpointSlice['ports'], endpoints: EndpointSlice['endpoints']): EndpointSlice => ({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: {
      // Deterministic names: a sync that runs before the cache shows our last create
      // finds AlreadyExists instead of creating a duplicate slice.
      name: `${name}-${shortHash(`${svc.metadata.uid}|${addressType}|${JSON.stringify(ports)}`)}`,
      namespace: ns, labels: { ...labels }, ownerReferences: [owner],
    },
    addressType, ports, endpoints,
  });
  const out: EndpointSlice[] = [];
  for (const g of groups) {
    for (const family of ['IPv4', 'IPv6'] as const) {
      const eps = g.endpoints.filter((e) => (e.ip.includes(':') ? 'IPv6' : 'IPv4') === family);
      if (!eps.length) continue;
      out.push(slice(family, g.ports, eps.map((e) => {
        const ep: EndpointSlice['endpoints'][number] = {
          addresses: [e.ip],
          conditions: { ready: e.ready, serving: e.serving, terminating: e.terminating },
          targetRef: e.address.targetRef,
        };
        if (e.address.nodeName) ep.nodeName = e.address.nodeName;
        if (e.address.hostname) ep.hostname = e.address.hostname;
        return ep;
      })));
    }
  }
  if (!out.length) out.push(slice('IPv4', [], []));
  return out;
}

function shortHash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 5);
}

async function ignoreNotFound(p: Promise<unknown>): Promise<void> {
  try { await p; } catch (e) { if (!isNotFound(e)) throw e; }
}
