// EventRecorder: core/v1 Events for what a component did to an object, aggregated the way
// client-go's EventCorrelator does: an event equal to one already recorded (same source,
// object, type, reason and message) bumps count and lastTimestamp on the existing Event
// instead of creating another. Writes are asynchronous and never fail the caller: an event
// is a diagnostic, not state a controller depends on.
import { R, isNotFound, type KubeClient, type KubeObject, type ResourceRef } from '../../api/kube/index.js';

export type EventType = 'Normal' | 'Warning';

export interface ObjectReference {
  apiVersion?: string; kind?: string; namespace?: string; name?: string; uid?: string; resourceVersion?: string; fieldPath?: string;
}

export interface CoreEvent extends KubeObject {
  involvedObject: ObjectReference;
  reason?: string;
  message?: string;
  source?: { component?: string; host?: string };
  count?: number;
  firstTimestamp?: string;
  lastTimestamp?: string;
  type?: string;
  reportingComponent?: string;
  reportingInstance?: string;
}

export interface EventSource { component: string; host?: string }

interface Aggregate { name: string; namespace: string; count: number; firstTimestamp: string }

const CACHE_SIZE = 4096; // Keys remembered for aggregation (client-go keeps an LRU of 4096).
const MAX_MESSAGE = 1024;

/** The object reference an Event points at, from the object and its resource. */
export function referenceTo(obj: KubeObject, r?: ResourceRef): ObjectReference {
  const apiVersion = obj.apiVersion ?? (r ? (r.group ? `${r.group}/${r.version}` : r.version) : undefined);
  return {
    apiVersion, kind: obj.kind ?? r?.kind,
    namespace: obj.metadata.namespace, name: obj.metadata.name, uid: obj.metadata.uid,
    resourceVersion: obj.metadata.resourceVersion,
  };
}

export class EventRecorder {
  /** Aggregation key -> the Event holding it; Map order doubles as LRU order. */
  private readonly seen = new Map<string, Aggregate>();
  /** Writes for one key run in order, so a burst of equal events counts up exactly. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly pending = new Set<Promise<void>>();
  private warned = false;

  constructor(private readonly client: KubeClient, readonly source: EventSource) {}

  /** Records an event about obj (fire and forget; see flush()). */
  event(obj: KubeObject | ObjectReference, type: EventType, reason: string, message: string): void {
    const ref: ObjectReference = 'metadata' in obj ? referenceTo(obj as KubeObject) : obj;
    if (!ref.name) return;
    const msg = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message;
    // resourceVersion is left out of the key: the same thing happening to a changed object is one event.
    const key = [this.source.component, this.source.host ?? '', ref.apiVersion, ref.kind, ref.namespace, ref.name, ref.uid, ref.fieldPath, type, reason, msg].join('\u0000');
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev.then(() => this.write(key, ref, type, reason, msg)).catch((e: unknown) => {
      if (!this.warned) {
        this.warned = true;
        console.warn(`events ${this.source.component}: recording ${reason} for ${ref.kind} ${ref.namespace ?? ''}/${ref.name}: ${(e as Error).message}`);
      }
    });
    this.chains.set(key, next);
    this.pending.add(next);
    void next.finally(() => {
      this.pending.delete(next);
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
  }

  /** Resolves when every event recorded so far has been written (or has failed). */
  async flush(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
  }

  private async write(key: string, ref: ObjectReference, type: EventType, reason: string, message: string): Promise<void> {
    const now = new Date().toISOString();
    const agg = this.seen.get(key);
    if (agg) {
      this.seen.delete(key); this.seen.set(key, agg); // most recently used
      try {
        await this.client.patch(R.events, agg.name, agg.namespace, { count: agg.count + 1, lastTimestamp: now }, 'merge');
        agg.count++;
        return;
      } catch (e) {
        // The Event expired or was deleted: start a new one.
        if (!isNotFound(e)) throw e;
        this.seen.delete(key);
      }
    }
    const namespace = ref.namespace || 'default';
    const name = `${ref.name}.${(BigInt(Date.now()) * 1_000_000n + BigInt(Math.floor(Math.random() * 1_000_000))).toString(16)}`;
    const ev: CoreEvent = {
      metadata: { name, namespace },
      involvedObject: ref,
      reason, message, type,
      source: { component: this.source.component, ...(this.source.host ? { host: this.source.host } : {}) },
      count: 1, firstTimestamp: now, lastTimestamp: now,
      reportingComponent: this.source.component,
      reportingInstance: this.source.host ?? '',
    };
    await this.client.create(R.events, ev);
    this.seen.set(key, { name, namespace, count: 1, firstTimestamp: now });
    if (this.seen.size > CACHE_SIZE) this.seen.delete(this.seen.keys().next().value as string);
  }
}
