// Namespace controller: a namespace with a deletionTimestamp is emptied of every namespaced
// object (kinds found by discovery, custom resources included); once nothing is left, the
// `kubernetes` finalizer is removed through the finalize subresource and the apiserver
// deletes the namespace.
import {
  ApiError, R, WorkQueue, isConflict, isNotFound,
  type Informer, type KubeClient, type KubeList, type KubeObject, type Namespace, type ResourceRef,
} from '../../api/kube/index.js';
import { discoverResources } from './discovery.js';
import type { SharedInformers } from './shared-informers.js';

export const KUBERNETES_FINALIZER = 'kubernetes';
const RECHECK_MS = 1_000;

// Used when discovery fails, so a namespace still empties of the built-in kinds.
const FALLBACK: ResourceRef[] = [
  R.pods, R.services, R.endpoints, R.endpointSlices, R.deployments, R.replicaSets,
  R.serviceAccounts, R.configMaps, R.secrets, R.events,
];

export class NamespaceController {
  private readonly namespaces: Informer<Namespace>;
  private readonly queue: WorkQueue;

  constructor(private readonly client: KubeClient, informers: SharedInformers) {
    this.namespaces = informers.for<Namespace>(R.namespaces);
    this.queue = new WorkQueue('namespace', (name) => this.sync(name));
    this.namespaces.on({
      add: (ns) => { if (ns.metadata.deletionTimestamp) this.queue.add(ns.metadata.name as string); },
      update: (_o, ns) => { if (ns.metadata.deletionTimestamp) this.queue.add(ns.metadata.name as string); },
    });
  }

  stop(): void { this.queue.stop(); }

  async sync(name: string): Promise<void> {
    const ns = this.namespaces.get(name);
    if (!ns?.metadata.deletionTimestamp) return;
    if (!(ns.spec?.finalizers ?? []).includes(KUBERNETES_FINALIZER)) return;
    if (ns.status?.phase !== 'Terminating') await this.markTerminating(ns);

    const remaining = await this.deleteContent(name);
    if (remaining > 0) {
      // Graceful deletions (pods) take time and say nothing to us: look again shortly.
      this.queue.addAfter(name, RECHECK_MS);
      return;
    }
    await this.finalize(name);
  }

  private async markTerminating(ns: Namespace): Promise<void> {
    try {
      await this.client.updateStatus(R.namespaces, { ...ns, status: { ...(ns.status ?? {}), phase: 'Terminating' } });
    } catch (e) {
      // Best effort: the apiserver normally sets the phase itself when deletion starts.
      if (!(e instanceof ApiError)) throw e;
    }
  }

  /** Deletes what is left in the namespace; returns how many objects still exist. */
  private async deleteContent(namespace: string): Promise<number> {
    let resources: ResourceRef[];
    try {
      resources = (await discoverResources(this.client))
        .filter((r) => r.namespaced && r.verbs.includes('list') && r.verbs.includes('delete'));
    } catch (e) {
      console.error(`namespace ${namespace}: discovery failed, using built-in kinds: ${(e as Error).message}`);
      resources = FALLBACK;
    }
    let remaining = 0;
    for (const r of resources) {
      let list: KubeList<KubeObject>;
      try { list = await this.client.list(r, { namespace }); } catch (e) {
        if (isNotFound(e) || (e instanceof ApiError && e.code === 405)) continue;
        throw e;
      }
      for (const obj of list.items) {
        remaining++;
        if (obj.metadata.deletionTimestamp) continue;
        try {
          await this.client.delete(r, obj.metadata.name as string, namespace, { propagationPolicy: 'Background' });
        } catch (e) {
          if (!isNotFound(e)) throw e;
        }
      }
    }
    return remaining;
  }

  private async finalize(name: string): Promise<void> {
    const live = await this.client.find<Namespace>(R.namespaces, name);
    if (!live) return;
    const finalizers = (live.spec?.finalizers ?? []).filter((f) => f !== KUBERNETES_FINALIZER);
    const body: Namespace = { ...live, spec: { ...(live.spec ?? {}), finalizers } };
    try {
      await this.client.update(R.namespaces, body, 'finalize');
    } catch (e) {
      if (isConflict(e)) throw e;
      // 404 is either "namespace gone" (done) or "no finalize subresource" (an apiserver gap).
      if (isNotFound(e) && !(await this.client.find<Namespace>(R.namespaces, name))) return;
      throw new Error(`namespace ${name}: PUT /api/v1/namespaces/${name}/finalize failed (spec.finalizers not cleared): ${(e as Error).message}`);
    }
  }
}
