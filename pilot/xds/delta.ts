// Protocol bookkeeping of one delta (incremental) ADS stream, apart from translation: per
// type what the client subscribed to (names, or the wildcard), which version of each
// resource it holds, the last response's nonce and its ACK/NACK. `diff` says, for the
// current resources of a type, what to send and what to tell the client to remove.
import type { WatchState } from './connection.js';
import type { PackedResource } from './cache.js';

export interface DeltaRequestLike {
  typeUrl?: string;
  resourceNamesSubscribe?: string[];
  resourceNamesUnsubscribe?: string[];
  initialResourceVersions?: Record<string, string> | null;
  responseNonce?: string;
  errorDetail?: { code?: number; message?: string } | null;
}

/** The SotW watch fields (for /debug/syncz) plus what the client holds, per resource. */
export interface DeltaWatch extends WatchState {
  /** Resource name -> the version the client has (sent by us, or declared on reconnect). */
  held: Map<string, string>;
}

export type DeltaOutcome =
  | { kind: 'changed' }  // subscription changed (or the first request): compute a response now
  | { kind: 'ack' }
  | { kind: 'nack'; message: string; repeated: boolean }
  | { kind: 'stale' };

/** A resource's delta version: a prefix of the hash of its serialized bytes. */
export function resourceVersion(r: PackedResource): string { return r.hash.slice(0, 16); }

export class DeltaWatches {
  readonly watches = new Map<string, DeltaWatch>();

  /**
   * Applies one DeltaDiscoveryRequest. An ACK/NACK may carry subscription changes too, so
   * both are looked at. `wildcardType` is whether an empty first request means `*`.
   */
  onRequest(req: DeltaRequestLike, wildcardType: boolean): DeltaOutcome {
    const typeUrl = req.typeUrl ?? '';
    const subscribe = req.resourceNamesSubscribe ?? [];
    const unsubscribe = req.resourceNamesUnsubscribe ?? [];
    let w = this.watches.get(typeUrl);
    let changed = false;
    if (!w) {
      w = { typeUrl, wildcard: wildcardType && subscribe.length === 0, names: [], held: new Map() };
      for (const [name, version] of Object.entries(req.initialResourceVersions ?? {})) w.held.set(name, version);
      this.watches.set(typeUrl, w);
      changed = true;
    }
    const names = new Set(w.names);
    for (const n of subscribe) {
      if (n === '*') { if (!w.wildcard) changed = true; w.wildcard = true; } else if (!names.has(n)) { names.add(n); changed = true; }
    }
    for (const n of unsubscribe) {
      if (n === '*') { if (w.wildcard) changed = true; w.wildcard = false; } else if (names.delete(n)) changed = true;
      // An unsubscribed resource is forgotten by the client without a removal notice.
      if (n !== '*' && !w.wildcard) w.held.delete(n);
    }
    w.names = [...names].sort();

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
  diff(w: DeltaWatch, all: ReadonlyMap<string, PackedResource>): { resources: PackedResource[]; removed: string[] } {
    const wanted: PackedResource[] = w.wildcard
      ? [...all.values()]
      : w.names.flatMap((n) => { const r = all.get(n); return r ? [r] : []; });
    const resources = wanted.filter((r) => w.held.get(r.name) !== resourceVersion(r));
    const removed: string[] = [];
    for (const name of w.held.keys()) {
      const stillWanted = all.has(name) && (w.wildcard || w.names.includes(name));
      if (!stillWanted) removed.push(name);
    }
    return { resources, removed: removed.sort() };
  }

  /** Records a response as held by the client (delta clients apply resources one by one). */
  recordSent(w: DeltaWatch, sent: PackedResource[], removed: string[]): void {
    for (const r of sent) w.held.set(r.name, resourceVersion(r));
    for (const n of removed) w.held.delete(n);
  }
}
