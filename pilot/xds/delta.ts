// Protocol bookkeeping of one delta (incremental) ADS stream, apart from translation: per
// type what the client subscribed to (names, or the wildcard), which version of each
// resource it holds, the last response's nonce and its ACK/NACK. `diff` says, for the
// current cache entry of a type, what to send and what to tell the client to remove.
//
// What the client holds is kept cheaply: after a response it holds exactly the entry's
// resources its subscription selects (`heldEntry`, `heldSub`), and only when that stops
// being true (a subscription change, initial_resource_versions) is it spelled out per
// resource in `held`. A client holding the previous snapshot's entry gets the entry's
// shared "changed since base" selection.
import type { WatchState } from './connection.js';
import { Selection, WILDCARD, responseHash, type PackedResource, type Subscription, type SubscriptionPool, type TypeEntry } from './cache.js';

export interface DeltaRequestLike {
  typeUrl?: string;
  resourceNamesSubscribe?: string[];
  resourceNamesUnsubscribe?: string[];
  initialResourceVersions?: Record<string, string> | null;
  responseNonce?: string;
  errorDetail?: { code?: number; message?: string } | null;
}

/** The SotW watch fields (for /debug/syncz) plus what the client holds. */
export interface DeltaWatch extends WatchState {
  /** Resource name -> version the client has; authoritative only while heldEntry is unset. */
  held: Map<string, string>;
  heldEntry?: TypeEntry;
  heldSub?: Subscription;
}

export type DeltaOutcome =
  | { kind: 'changed' }  // subscription changed (or the first request): compute a response now
  | { kind: 'ack' }
  | { kind: 'nack'; message: string; repeated: boolean }
  | { kind: 'stale' };

/** A resource's delta version: a prefix of the hash of its serialized bytes. */
export function resourceVersion(r: PackedResource): string { return r.version; }

/** Spells out what the client holds per resource (before the subscription changes). */
function materialize(w: DeltaWatch): void {
  if (!w.heldEntry) return;
  w.held = new Map(w.heldEntry.select(w.heldSub ?? WILDCARD).resources.map((r) => [r.name, r.version]));
  w.heldEntry = undefined;
  w.heldSub = undefined;
}

export class DeltaWatches {
  readonly watches = new Map<string, DeltaWatch>();

  /**
   * Applies one DeltaDiscoveryRequest. An ACK/NACK may carry subscription changes too, so
   * both are looked at. `wildcardType` is whether an empty first request means `*`.
   */
  onRequest(req: DeltaRequestLike, wildcardType: boolean, pool: SubscriptionPool): DeltaOutcome {
    const typeUrl = req.typeUrl ?? '';
    const subscribe = req.resourceNamesSubscribe ?? [];
    const unsubscribe = req.resourceNamesUnsubscribe ?? [];
    let w = this.watches.get(typeUrl);
    let changed = false;
    if (!w) {
      w = { typeUrl, sub: wildcardType && subscribe.length === 0 ? WILDCARD : pool.intern([]), held: new Map() };
      for (const [name, version] of Object.entries(req.initialResourceVersions ?? {})) w.held.set(name, version);
      this.watches.set(typeUrl, w);
      changed = true;
    }
    if (subscribe.length || unsubscribe.length) {
      materialize(w);
      let wildcard = w.sub.wildcard;
      const names = new Set(w.sub.names ?? []);
      for (const n of subscribe) {
        if (n === '*') { if (!wildcard) changed = true; wildcard = true; } else if (!names.has(n)) { names.add(n); changed = true; }
      }
      for (const n of unsubscribe) {
        if (n === '*') { if (wildcard) changed = true; wildcard = false; } else if (names.delete(n)) changed = true;
        // An unsubscribed resource is forgotten by the client without a removal notice.
        if (n !== '*' && !wildcard) w.held.delete(n);
      }
      w.sub = wildcard ? WILDCARD : pool.intern([...names]);
    }

    const nonce = req.responseNonce ?? '';
    if (nonce && nonce === w.sent?.nonce) {
      const detail = req.errorDetail;
      if (detail && (detail.message || detail.code)) {
        const text = detail.message || `code ${detail.code}`;
        const repeated = w.lastNack?.message === text;
        w.lastNack = { message: text, version: w.ackedVersion ?? '', nonce, at: Date.now() };
        return changed ? { kind: 'changed' } : { kind: 'nack', message: text, repeated };
      }
      w.ackedVersion = w.sent.version;
      w.ackedAt = Date.now();
    } else if (nonce && !changed) {
      return { kind: 'stale' };
    }
    return changed ? { kind: 'changed' } : { kind: 'ack' };
  }

  /** What to send: subscribed resources the client lacks or holds at another version, and removals. */
  diff(w: DeltaWatch, entry: TypeEntry): Selection {
    if (w.heldEntry && w.heldSub === w.sub) {
      if (w.heldEntry === entry) return new Selection([], [], '');
      if (w.heldEntry === entry.base) return entry.changesSinceBase(w.sub);
    }
    materialize(w);
    // A client holding nothing gets the class's shared selection.
    if (!w.held.size) return entry.select(w.sub);
    const wanted = entry.select(w.sub).resources;
    const resources = wanted.filter((r) => w.held.get(r.name) !== r.version);
    const removed: string[] = [];
    for (const name of w.held.keys()) if (!entry.resources.has(name) || !w.sub.has(name)) removed.push(name);
    return new Selection(resources, removed.sort(), responseHash(resources));
  }

  /** The client now holds exactly what the entry's selection for its subscription has. */
  recordSent(w: DeltaWatch, entry: TypeEntry): void {
    w.heldEntry = entry;
    w.heldSub = w.sub;
    w.held = new Map();
  }
}
