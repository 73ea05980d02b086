// Garbage collector: an object whose ownerReferences all point at owners that no longer
// exist (compared by uid) is deleted with background propagation, so deleting a Deployment
// removes its ReplicaSets and then their pods. It also honours the `orphan` and
// `foregroundDeletion` finalizers on owners it watches.
//
// The graph: informers over the kinds that commonly have owners, a uid index of everything
// they hold and a reverse index owner uid -> dependents. Owners of other kinds are checked
// with a live GET (kind resolved by discovery); an unknown kind is assumed to exist.
import {
  R, WorkQueue, isConflict, isNotFound, keyOf,
  type Informer, type KubeClient, type KubeObject, type OwnerReference, type ResourceRef,
} from '../../api/kube/index.js';
import { KindResolver } from './discovery.js';
import { quietConflicts } from './conflict.js';
import type { SharedInformers } from './shared-informers.js';

export const ORPHAN_FINALIZER = 'orphan';
export const FOREGROUND_FINALIZER = 'foregroundDeletion';

export const GC_MONITORED: ResourceRef[] = [
  R.deployments, R.replicaSets, R.pods, R.services, R.endpoints, R.endpointSlices,
  R.configMaps, R.secrets, R.serviceAccounts,
];

interface Node { resource: ResourceRef; key: string }
type OwnerState = 'present' | 'absent' | 'waiting';

export class GarbageCollector {
  private readonly informers = new Map<string, Informer<KubeObject>>();
  private readonly byUid = new Map<string, Node>();
  private readonly dependents = new Map<string, Set<string>>(); // owner uid -> item ids
  private readonly queue: WorkQueue;
  private readonly kinds: KindResolver;

  constructor(private readonly client: KubeClient, informers: SharedInformers, monitored: ResourceRef[] = GC_MONITORED) {
    this.kinds = new KindResolver(client);
    this.queue = new WorkQueue('garbage-collector', quietConflicts((k) => this.sync(k), (k, ms) => this.queue.addAfter(k, ms)), 2);
    for (const r of monitored) {
      const inf = informers.for<KubeObject>(r);
      this.informers.set(r.resource, inf);
      inf.on({
        add: (o) => this.observe(r, undefined, o),
        update: (old, o) => this.observe(r, old, o),
        delete: (o) => this.forget(r, o),
      });
    }
  }

  stop(): void { this.queue.stop(); }

  private itemId(r: ResourceRef, o: KubeObject): string { return `${r.resource}|${keyOf(o)}`; }

  private observe(r: ResourceRef, old: KubeObject | undefined, o: KubeObject): void {
    const id = this.itemId(r, o);
    if (o.metadata.uid) this.byUid.set(o.metadata.uid, { resource: r, key: keyOf(o) });
    for (const ref of old?.metadata.ownerReferences ?? []) this.dependents.get(ref.uid)?.delete(id);
    for (const ref of o.metadata.ownerReferences ?? []) {
      let set = this.dependents.get(ref.uid);
      if (!set) { set = new Set(); this.dependents.set(ref.uid, set); }
      set.add(id);
    }
    if ((o.metadata.ownerReferences?.length ?? 0) > 0 || this.hasGcFinalizer(o)) this.queue.add(id);
  }

  private forget(r: ResourceRef, o: KubeObject): void {
    const id = this.itemId(r, o);
    const uid = o.metadata.uid;
    if (uid && this.byUid.get(uid)?.key === keyOf(o)) this.byUid.delete(uid);
    for (const ref of o.metadata.ownerReferences ?? []) {
      this.dependents.get(ref.uid)?.delete(id);
      // A foreground-deleting owner waits for its last dependent to go.
      const owner = this.byUid.get(ref.uid);
      if (owner) this.queue.add(`${owner.resource.resource}|${owner.key}`);
    }
    if (!uid) return;
    // The owner is gone: every dependent must re-check its owners.
    for (const dep of this.dependents.get(uid) ?? []) this.queue.add(dep);
  }

  private hasGcFinalizer(o: KubeObject): boolean {
    return !!o.metadata.deletionTimestamp && (o.metadata.finalizers ?? []).some((f) => f === ORPHAN_FINALIZER || f === FOREGROUND_FINALIZER);
  }

  async sync(id: string): Promise<void> {
    const sep = id.indexOf('|');
    const resource = id.slice(0, sep);
    const key = id.slice(sep + 1);
    const inf = this.informers.get(resource);
    const obj = inf?.get(key);
    if (!inf || !obj) return;
    if (this.hasGcFinalizer(obj)) await this.processDeletingOwner(inf.resource, obj);
    if (!obj.metadata.deletionTimestamp) await this.processDependent(inf.resource, obj);
  }

  /** Deletes obj when none of its owners is present any more. */
  private async processDependent(r: ResourceRef, obj: KubeObject): Promise<void> {
    const refs = obj.metadata.ownerReferences ?? [];
    if (!refs.length) return;
    const states = await Promise.all(refs.map((ref) => this.ownerState(ref, obj.metadata.namespace)));
    if (states.some((s) => s === 'present')) {
      const dangling = refs.filter((_, i) => states[i] === 'absent');
      if (dangling.length) {
        // Some owners remain: just drop the references to the vanished ones.
        await this.patchOwnerRefs(r, obj, refs.filter((_, i) => states[i] !== 'absent'));
      }
      return;
    }
    const waiting = states.some((s) => s === 'waiting');
    try {
      await this.client.delete(r, obj.metadata.name as string, obj.metadata.namespace, {
        propagationPolicy: waiting ? 'Foreground' : 'Background', preconditionsUid: obj.metadata.uid,
      });
    } catch (e) {
      if (!isNotFound(e) && !isConflict(e)) throw e;
    }
  }

  private async ownerState(ref: OwnerReference, namespace: string | undefined): Promise<OwnerState> {
    const cached = this.byUid.get(ref.uid);
    if (cached) {
      const o = this.informers.get(cached.resource.resource)?.get(cached.key);
      if (o && o.metadata.uid === ref.uid) return this.stateOf(o);
    }
    // Not in our caches (another kind, or the cache lags behind a fresh owner): ask the server.
    const res = await this.kinds.resolve(ref.apiVersion, ref.kind);
    if (!res) return 'present';
    const live = await this.client.find<KubeObject>(res, ref.name, res.namespaced ? namespace : undefined);
    if (!live || live.metadata.uid !== ref.uid) return 'absent';
    return this.stateOf(live);
  }

  private stateOf(o: KubeObject): OwnerState {
    return o.metadata.deletionTimestamp && (o.metadata.finalizers ?? []).includes(FOREGROUND_FINALIZER) ? 'waiting' : 'present';
  }

  /** An owner being deleted with orphan or foreground propagation. */
  private async processDeletingOwner(r: ResourceRef, owner: KubeObject): Promise<void> {
    const uid = owner.metadata.uid as string;
    const deps = [...(this.dependents.get(uid) ?? [])]
      .map((id) => { const i = id.indexOf('|'); return { inf: this.informers.get(id.slice(0, i)), key: id.slice(i + 1) }; })
      .map(({ inf, key }) => ({ inf, obj: inf?.get(key) }))
      .filter((d): d is { inf: Informer<KubeObject>; obj: KubeObject } => !!d.inf && !!d.obj);
    const finalizers = owner.metadata.finalizers ?? [];
    if (finalizers.includes(ORPHAN_FINALIZER)) {
      for (const d of deps) {
        await this.patchOwnerRefs(d.inf.resource, d.obj, (d.obj.metadata.ownerReferences ?? []).filter((x) => x.uid !== uid));
      }
      await this.removeFinalizer(r, owner, ORPHAN_FINALIZER);
      return;
    }
    if (finalizers.includes(FOREGROUND_FINALIZER)) {
      const blocking = deps.filter((d) => (d.obj.metadata.ownerReferences ?? []).some((x) => x.uid === uid));
      if (blocking.length) {
        for (const d of blocking) if (!d.obj.metadata.deletionTimestamp) await this.processDependent(d.inf.resource, d.obj);
        return; // Their delete events requeue the owner.
      }
      await this.removeFinalizer(r, owner, FOREGROUND_FINALIZER);
    }
  }

  private async patchOwnerRefs(r: ResourceRef, obj: KubeObject, refs: OwnerReference[]): Promise<void> {
    try {
      await this.client.patch(r, obj.metadata.name as string, obj.metadata.namespace, { metadata: { ownerReferences: refs } }, 'merge');
    } catch (e) { if (!isNotFound(e)) throw e; }
  }

  private async removeFinalizer(r: ResourceRef, obj: KubeObject, finalizer: string): Promise<void> {
    try {
      await this.client.update(r, { ...obj, metadata: { ...obj.metadata, finalizers: (obj.metadata.finalizers ?? []).filter((f) => f !== finalizer) } });
    } catch (e) { if (!isNotFound(e)) throw e; }
  }
}
