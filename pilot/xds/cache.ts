// Serialized resources per (type, proxy class) and snapshot. Proxies of one class share
// one TypeEntry: each resource is encoded once, and each response body (a subscription's
// resources, already in wire format) is encoded once and shared by every proxy of the
// class with that subscription, SotW or delta. A new snapshot keeps the entries the change
// cannot affect (change-scope.ts) and links each regenerated entry to the one it replaces
// (`base`, `changed`, `removed`), so a proxy that holds the previous entry is sent only
// what changed.
import { createHash } from 'node:crypto';
import { packAny } from '../../api/xds/protos.js';
import type { PushContext } from '../model/push-context.js';
import type { Proxy } from '../model/proxy.js';
import type { XdsGenerator } from './generators/index.js';
import { FULL_SCOPE, entryUnaffected, resourceUnaffected, type ChangeScope } from './change-scope.js';
import { deltaBody, sotwBody } from './wire.js';

export interface PackedResource {
  name: string;
  any: { typeUrl: string; value: Buffer };
  hash: string;
  /** The delta version: a prefix of the hash of the bytes. */
  version: string;
}

/**
 * A set of requested names, interned so that proxies asking for the same names share one
 * object (and the responses cached for it). `names` undefined is the wildcard.
 */
export class Subscription {
  readonly set?: ReadonlySet<string>;
  constructor(readonly names?: readonly string[]) {
    if (names) this.set = new Set(names);
  }
  get wildcard(): boolean { return this.names === undefined; }
  has(name: string): boolean { return this.set ? this.set.has(name) : true; }
}

export const WILDCARD = new Subscription();

export class SubscriptionPool {
  private readonly pool = new Map<string, WeakRef<Subscription>>();
  private readonly registry = new FinalizationRegistry<string>((key) => {
    if (!this.pool.get(key)?.deref()) this.pool.delete(key);
  });

  intern(names: readonly string[]): Subscription {
    const sorted = [...new Set(names)].sort();
    const key = sorted.join('\n');
    const hit = this.pool.get(key)?.deref();
    if (hit) return hit;
    const sub = new Subscription(sorted);
    this.pool.set(key, new WeakRef(sub));
    this.registry.register(sub, key);
    return sub;
  }
}

/**
 * Some resources of an entry as one response's content. The whole encoded response is
 * memoized per (version, type) with one nonce, and written as is to every proxy that
 * gets it: a nonce needs to be unique within a stream only, and a proxy sent the same
 * bytes twice in a row gets its own copy with a fresh nonce (see the server).
 */
export class Selection {
  private wire?: { key: string; nonce: string; bytes: Buffer };
  constructor(readonly resources: readonly PackedResource[], readonly removed: readonly string[], readonly hash: string) {}
  get empty(): boolean { return !this.resources.length && !this.removed.length; }

  /** The shared encoded response (and its nonce) for this version; `encode` builds it once. */
  shared(key: string, nonce: () => string, encode: (nonce: string) => Buffer): { nonce: string; bytes: Buffer } {
    if (this.wire?.key !== key) {
      const n = nonce();
      this.wire = { key, nonce: n, bytes: encode(n) };
    }
    return this.wire;
  }
  sotwBody(): Buffer { return sotwBody(this.resources); }
  deltaBody(): Buffer { return deltaBody(this.resources, this.removed); }
}

export class TypeEntry {
  /** The entry of the previous snapshot this one replaced (one generation only). */
  base?: TypeEntry;
  /** Names added or changed relative to `base`. */
  readonly changed: ReadonlySet<string>;
  /** Names in `base` that are gone. */
  readonly removed: readonly string[];
  private readonly full = new WeakMap<Subscription, Selection>();
  private readonly partial = new WeakMap<Subscription, Selection>();

  constructor(readonly typeUrl: string, readonly resources: ReadonlyMap<string, PackedResource>, base?: TypeEntry) {
    this.base = base;
    const changed = new Set<string>();
    const removed: string[] = [];
    if (base) {
      for (const [name, r] of resources) if (base.resources.get(name)?.hash !== r.hash) changed.add(name);
      for (const name of base.resources.keys()) if (!resources.has(name)) removed.push(name);
    }
    this.changed = changed;
    this.removed = removed.sort();
  }

  /** Everything a subscription selects. */
  select(sub: Subscription): Selection {
    let s = this.full.get(sub);
    if (!s) {
      const rs = sub.names ? sub.names.flatMap((n) => { const r = this.resources.get(n); return r ? [r] : []; }) : [...this.resources.values()];
      s = new Selection(rs, [], responseHash(rs));
      this.full.set(sub, s);
    }
    return s;
  }

  /** What a subscription selects that changed since `base` (changed resources, removed names). */
  changesSinceBase(sub: Subscription): Selection {
    let s = this.partial.get(sub);
    if (!s) {
      const rs: PackedResource[] = [];
      for (const n of this.changed) if (sub.has(n)) rs.push(this.resources.get(n) as PackedResource);
      rs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const removed = this.removed.filter((n) => sub.has(n));
      s = new Selection(rs, removed, responseHash(rs));
      this.partial.set(sub, s);
    }
    return s;
  }
}

export class ResourceCache {
  private push?: PushContext;
  private scope: ChangeScope = FULL_SCOPE;
  private entries = new Map<string, TypeEntry>();
  private previous = new Map<string, TypeEntry>();
  hits = 0;
  misses = 0;
  /** Resources encoded (not reused from the previous snapshot), for tests and push status. */
  encoded = 0;

  /** A new snapshot: entries of the previous one become the base of the new ones. */
  advance(push: PushContext, scope: ChangeScope): void {
    if (push === this.push) return;
    this.push = push;
    this.scope = scope;
    this.previous = this.entries;
    this.entries = new Map();
  }

  /** The entry of a type for a proxy's class in this snapshot. */
  entry(push: PushContext, gen: XdsGenerator, proxy: Proxy): TypeEntry {
    if (push !== this.push) this.advance(push, FULL_SCOPE);
    const key = `${gen.typeUrl}|${gen.proxyClass(proxy, push)}`;
    const cached = this.entries.get(key);
    if (cached) { this.hits++; return cached; }
    this.misses++;
    const prev = this.previous.get(key);
    if (prev && entryUnaffected(this.scope, gen.type, proxy, push)) {
      this.entries.set(key, prev);
      return prev;
    }
    const out = new Map<string, PackedResource>();
    for (const { name, resource } of gen.generate(push, proxy)) {
      const old = prev?.resources.get(name);
      if (old && resourceUnaffected(this.scope, gen.type, name)) { out.set(name, old); continue; }
      let packed: PackedResource['any'];
      try {
        packed = packAny(gen.typeUrl, resource);
      } catch (e) {
        // A generator bug must not take the whole type down for every proxy.
        console.error(`pilot: ${gen.type} resource ${name} does not encode: ${(e as Error).message}`);
        continue;
      }
      this.encoded++;
      const hash = createHash('sha256').update(packed.value).digest('hex');
      out.set(name, { name, any: packed, hash, version: hash.slice(0, 16) });
    }
    // One generation of history is enough: a proxy further behind gets everything.
    if (prev) prev.base = undefined;
    const entry = new TypeEntry(gen.typeUrl, out, prev);
    this.entries.set(key, entry);
    return entry;
  }

  /** All resources of a type for a proxy, by name. */
  resources(push: PushContext, gen: XdsGenerator, proxy: Proxy): ReadonlyMap<string, PackedResource> {
    return this.entry(push, gen, proxy).resources;
  }
}

/** One hash over a response's resources (names and bytes), to tell whether content changed. */
export function responseHash(resources: readonly PackedResource[]): string {
  const h = createHash('sha256');
  for (const r of resources) h.update(r.name).update('\0').update(r.hash).update('\n');
  return h.digest('hex');
}
