// In-memory revisioned KV with a bounded event history. FileStore adds durability on top
// by persisting each mutation record before it is applied (see file.ts).
import { StoreError, type CancelWatch, type JsonObject, type ListOptions, type ListResult, type Store, type StoreEvent, type StoreEventType } from './types.js';

export interface Entry {
  json: string; // the value without resourceVersion, serialized: cheap to clone on read
  createRevision: number;
  modRevision: number;
  version: number; // number of writes since creation (etcd's version)
}

/** One committed mutation; FileStore writes these to its log. */
export type MutationRecord =
  | { rev: number; op: 'put'; key: string; value: JsonObject; create: number; ver: number }
  | { rev: number; op: 'del'; key: string };

export interface HistoryEvent { type: StoreEventType; key: string; revision: number; json: string; prevJson?: string; prevRevision?: number }

interface Watcher { prefix: string; fromRevision: number; onEvent: (ev: StoreEvent) => void }

export interface MemoryStoreOptions {
  /** How many events to keep for watch-from-revision (default 10000). */
  historySize?: number;
}

/** Stamps metadata.resourceVersion, as every object leaving the store carries it. */
export function materialize(json: string, revision: number): JsonObject {
  const obj = JSON.parse(json) as JsonObject;
  const meta = (typeof obj.metadata === 'object' && obj.metadata !== null ? obj.metadata : {}) as JsonObject;
  meta.resourceVersion = String(revision);
  obj.metadata = meta;
  return obj;
}

/** Serializes a value for storage, dropping resourceVersion (it is derived from modRevision). */
function serialize(value: JsonObject): string {
  const meta = value.metadata;
  if (typeof meta === 'object' && meta !== null && 'resourceVersion' in meta) {
    const { resourceVersion: _rv, ...rest } = meta as JsonObject;
    return JSON.stringify({ ...value, metadata: rest });
  }
  return JSON.stringify(value);
}

export class MemoryStore implements Store {
  protected entries = new Map<string, Entry>();
  protected rev = 0;
  /** All changes after this revision are in history (older ones were dropped). */
  protected historyStart = 0;
  private history: HistoryEvent[] = [];
  private watchers = new Set<Watcher>();
  private readonly historySize: number;
  protected closed = false;

  constructor(opts: MemoryStoreOptions = {}) {
    this.historySize = opts.historySize ?? 10000;
  }

  /** Persistence hook: called before a mutation is applied; throwing aborts it. */
  protected persist(_record: MutationRecord): void {}

  /**
   * Resolves once every mutation persisted so far is durable; a write is acknowledged only
   * after it. The memory store has nothing to wait for.
   */
  protected durable(): Promise<void> { return Promise.resolve(); }

  /** Publishes a committed change to history and watchers; a durable store defers this until the change is on disk. */
  protected publish(h: HistoryEvent): void { this.record(h); }

  async get(key: string): Promise<JsonObject | undefined> {
    const e = this.entries.get(key);
    return e ? materialize(e.json, e.modRevision) : undefined;
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    if (opts.revision !== undefined && opts.revision < this.rev) return this.listAt(prefix, opts.revision);
    const keys = [...this.entries.keys()].filter((k) => k.startsWith(prefix)).sort();
    const items = keys.map((k) => { const e = this.entries.get(k)!; return materialize(e.json, e.modRevision); });
    return { items, revision: this.rev };
  }

  /**
   * The keys under prefix as they were at revision: the current state with every later change
   * undone, newest first (each change remembers the value it replaced).
   */
  private listAt(prefix: string, revision: number): ListResult {
    if (revision < this.historyStart) {
      throw new StoreError('Compacted', prefix, `revision ${revision} has been compacted (oldest kept: ${this.historyStart})`);
    }
    const state = new Map<string, { json: string; rev: number }>();
    for (const [k, e] of this.entries) if (k.startsWith(prefix)) state.set(k, { json: e.json, rev: e.modRevision });
    const later = [...this.history, ...this.pending()].filter((h) => h.revision > revision && h.key.startsWith(prefix));
    later.sort((a, b) => b.revision - a.revision);
    for (const h of later) {
      if (h.type === 'ADDED') state.delete(h.key);
      else state.set(h.key, { json: h.prevJson ?? h.json, rev: h.prevRevision ?? h.revision });
    }
    const keys = [...state.keys()].sort();
    return { items: keys.map((k) => { const e = state.get(k)!; return materialize(e.json, e.rev); }), revision };
  }

  /** Changes applied in memory but not yet in history (a durable store's unsynced batch). */
  protected pending(): HistoryEvent[] { return []; }

  async create(key: string, value: JsonObject): Promise<JsonObject> {
    this.checkOpen();
    if (this.entries.has(key)) throw new StoreError('AlreadyExists', key, `key ${key} already exists`);
    const out = this.put(key, value, undefined);
    await this.durable();
    return out;
  }

  async update(key: string, value: JsonObject, expectedModRevision?: number): Promise<JsonObject> {
    this.checkOpen();
    const cur = this.entries.get(key);
    if (!cur) throw new StoreError('NotFound', key, `key ${key} not found`);
    if (expectedModRevision !== undefined && cur.modRevision !== expectedModRevision) {
      throw new StoreError('Conflict', key, `key ${key} has modRevision ${cur.modRevision}, expected ${expectedModRevision}`);
    }
    const out = this.put(key, value, cur);
    await this.durable();
    return out;
  }

  async delete(key: string, expectedModRevision?: number): Promise<JsonObject> {
    this.checkOpen();
    const cur = this.entries.get(key);
    if (!cur) throw new StoreError('NotFound', key, `key ${key} not found`);
    if (expectedModRevision !== undefined && cur.modRevision !== expectedModRevision) {
      throw new StoreError('Conflict', key, `key ${key} has modRevision ${cur.modRevision}, expected ${expectedModRevision}`);
    }
    const rev = this.rev + 1;
    this.persist({ rev, op: 'del', key });
    this.rev = rev;
    this.entries.delete(key);
    this.publish({ type: 'DELETED', key, revision: rev, json: cur.json, prevJson: cur.json, prevRevision: cur.modRevision });
    await this.durable();
    return materialize(cur.json, rev);
  }

  async watch(prefix: string, fromRevision: number, onEvent: (ev: StoreEvent) => void): Promise<CancelWatch> {
    this.checkOpen();
    if (fromRevision < this.historyStart) {
      throw new StoreError('Compacted', prefix, `revision ${fromRevision} has been compacted (oldest kept: ${this.historyStart})`);
    }
    // Replay and subscribe in the same tick, so no change can slip in between.
    for (const h of this.history) {
      if (h.revision > fromRevision && h.key.startsWith(prefix)) deliver(onEvent, toEvent(h));
    }
    // A durable store publishes a change only after its sync, but lists already show it: a
    // watch from such a list's revision must not hear that change again when it is published.
    const w: Watcher = { prefix, fromRevision, onEvent };
    this.watchers.add(w);
    return () => { this.watchers.delete(w); };
  }

  async revision(): Promise<number> { return this.rev; }

  /** Forgets the history up to revision (like an etcd compaction): older revisions are Compacted. */
  compactHistory(revision: number): void {
    const upTo = Math.min(revision, this.rev);
    this.history = this.history.filter((h) => h.revision > upTo);
    this.historyStart = Math.max(this.historyStart, upTo);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watchers.clear();
  }

  private put(key: string, value: JsonObject, cur: Entry | undefined): JsonObject {
    const json = serialize(value);
    const rev = this.rev + 1;
    const createRevision = cur ? cur.createRevision : rev;
    const version = cur ? cur.version + 1 : 1;
    this.persist({ rev, op: 'put', key, value: JSON.parse(json) as JsonObject, create: createRevision, ver: version });
    this.rev = rev;
    this.entries.set(key, { json, createRevision, modRevision: rev, version });
    this.publish({ type: cur ? 'MODIFIED' : 'ADDED', key, revision: rev, json, prevJson: cur?.json, prevRevision: cur?.modRevision });
    return materialize(json, rev);
  }

  /** Applies a record read back from disk (no persistence, no watchers: used while opening). */
  protected replay(r: MutationRecord): void {
    if (r.op === 'put') this.entries.set(r.key, { json: JSON.stringify(r.value), createRevision: r.create, modRevision: r.rev, version: r.ver });
    else this.entries.delete(r.key);
    this.rev = Math.max(this.rev, r.rev);
  }

  protected record(h: HistoryEvent): void {
    this.history.push(h);
    if (this.history.length > this.historySize) {
      const dropped = this.history.splice(0, this.history.length - this.historySize);
      this.historyStart = dropped[dropped.length - 1].revision;
    }
    for (const w of this.watchers) {
      if (h.revision > w.fromRevision && h.key.startsWith(w.prefix)) deliver(w.onEvent, toEvent(h));
    }
  }

  protected checkOpen(): void {
    if (this.closed) throw new Error('store is closed');
  }
}

function toEvent(h: HistoryEvent): StoreEvent {
  return {
    type: h.type,
    key: h.key,
    revision: h.revision,
    object: materialize(h.json, h.revision),
    prevObject: h.prevJson !== undefined ? materialize(h.prevJson, h.prevRevision ?? h.revision) : undefined,
  };
}

function deliver(onEvent: (ev: StoreEvent) => void, ev: StoreEvent): void {
  // A failing subscriber must not fail the write that triggered it.
  try { onEvent(ev); } catch (err) { console.error(`store watch handler failed for ${ev.key}:`, err); }
}
