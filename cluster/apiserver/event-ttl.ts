// Event TTL (kube-apiserver --event-ttl, default 1 h): an Event is removed once it has not
// been written for the TTL. Kubernetes attaches an etcd lease on every write; here one sweeper
// works on any store: it learns each Event's last write from a store watch (and, for Events
// written before it started, from their newest timestamp) and deletes the expired ones with a
// compare-and-swap, so an Event updated meanwhile is kept.
import type { JsonObject, Store } from '../store/types.js';
import { isStoreError } from '../store/types.js';

export const EVENTS_PREFIX = '/registry/events/';
export const DEFAULT_EVENT_TTL_SECONDS = 3600;

interface Seen { lastWriteMs: number; modRevision: number }

function rvOf(o: JsonObject): number {
  return Number((o.metadata as { resourceVersion?: string } | undefined)?.resourceVersion ?? 0);
}

/** The newest time an Event records about itself (for Events written before the sweeper started). */
function newestTimestampMs(o: JsonObject): number {
  const meta = (o.metadata ?? {}) as { creationTimestamp?: string };
  const series = (o.series ?? {}) as { lastObservedTime?: string };
  const times = [meta.creationTimestamp, o.lastTimestamp, o.eventTime, series.lastObservedTime]
    .map((t) => (typeof t === 'string' ? Date.parse(t) : NaN))
    .filter((t) => !Number.isNaN(t));
  return times.length ? Math.max(...times) : Date.now();
}

export class EventExpiry {
  private readonly seen = new Map<string, Seen>();
  private cancelWatch?: () => void;
  private timer?: NodeJS.Timeout;
  private sweeping = false;
  private stopped = false;

  constructor(private readonly store: Store, private readonly ttlMs: number) {}

  async start(): Promise<void> {
    const { items, revision } = await this.store.list(EVENTS_PREFIX);
    for (const o of items) this.seen.set(keyOf(o), { lastWriteMs: newestTimestampMs(o), modRevision: rvOf(o) });
    this.cancelWatch = await this.store.watch(EVENTS_PREFIX, revision, (ev) => {
      if (ev.type === 'DELETED') this.seen.delete(ev.key);
      else this.seen.set(ev.key, { lastWriteMs: Date.now(), modRevision: ev.revision });
    });
    // Checking ten times per TTL keeps an Event at most 10% past its TTL (at most once a minute).
    const every = Math.max(200, Math.min(60_000, Math.floor(this.ttlMs / 10)));
    this.timer = setInterval(() => { void this.sweep(); }, every);
    this.timer.unref();
  }

  /** Deletes every Event not written for the TTL; returns how many went. */
  async sweep(now = Date.now()): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    let removed = 0;
    try {
      for (const [key, s] of [...this.seen]) {
        if (this.stopped) break;
        if (now - s.lastWriteMs < this.ttlMs) continue;
        try {
          await this.store.delete(key, s.modRevision);
          this.seen.delete(key);
          removed++;
        } catch (e) {
          // Updated (the watch brings its new write time) or already gone.
          if (isStoreError(e, 'NotFound')) this.seen.delete(key);
          else if (!isStoreError(e, 'Conflict')) console.error(`apiserver: event TTL: cannot delete ${key}: ${(e as Error).message}`);
        }
      }
    } finally {
      this.sweeping = false;
    }
    return removed;
  }

  stop(): void {
    this.stopped = true;
    this.cancelWatch?.();
    if (this.timer) clearInterval(this.timer);
  }
}

function keyOf(o: JsonObject): string {
  const m = (o.metadata ?? {}) as { namespace?: string; name?: string };
  return `${EVENTS_PREFIX}${m.namespace ?? ''}/${m.name ?? ''}`;
}
