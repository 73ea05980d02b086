// List-then-watch cache of one resource, as client-go's informers: handlers are told about
// adds, updates and deletes; the cache is the level to reconcile against. When a watch ends
// or its resourceVersion expires (410), the informer re-lists and reports the differences.
import { EventEmitter } from 'node:events';
import type { KubeClient, Watch } from './client.js';
import { isGone } from './errors.js';
import type { ResourceRef } from './resources.js';
import type { KubeObject } from './types.js';

export interface InformerOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export interface InformerHandlers<T> {
  add?(obj: T): void;
  update?(oldObj: T, newObj: T): void;
  delete?(obj: T): void;
}

export function keyOf(obj: KubeObject): string {
  const ns = obj.metadata.namespace;
  return ns ? `${ns}/${obj.metadata.name}` : `${obj.metadata.name}`;
}

export class Informer<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly emitter = new EventEmitter();
  private readonly handlers: InformerHandlers<T>[] = [];
  private watch?: Watch;
  private stopped = false;
  private synced = false;
  private resourceVersion = '';

  constructor(private readonly client: KubeClient, readonly resource: ResourceRef, private readonly opts: InformerOptions = {}) {
    this.emitter.setMaxListeners(0);
  }

  on(handlers: InformerHandlers<T>): this {
    this.handlers.push(handlers);
    // Late subscribers see the current state as adds, like client-go.
    if (this.synced && handlers.add) for (const obj of this.cache.values()) handlers.add(obj);
    return this;
  }

  get(key: string): T | undefined { return this.cache.get(key); }
  list(): T[] { return [...this.cache.values()]; }
  get hasSynced(): boolean { return this.synced; }

  start(): this {
    void this.run();
    return this;
  }

  waitForSync(timeoutMs = 30_000): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`informer ${this.resource.resource}: not synced after ${timeoutMs} ms`)), timeoutMs);
      this.emitter.once('synced', () => { clearTimeout(timer); resolve(); });
    });
  }

  stop(): void {
    this.stopped = true;
    this.watch?.stop();
  }

  private async run(): Promise<void> {
    let backoff = 200;
    while (!this.stopped) {
      try {
        if (!this.resourceVersion) await this.relist();
        await this.watchOnce();
        backoff = 200;
      } catch (e) {
        if (this.stopped) return;
        if (isGone(e)) { this.resourceVersion = ''; continue; }
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 5_000);
        // A failed watch may have missed events: list again to converge.
        this.resourceVersion = '';
      }
    }
  }

  private async relist(): Promise<void> {
    const list = await this.client.list<T>(this.resource, this.opts);
    const seen = new Set<string>();
    for (const item of list.items) {
      const obj = { ...item, apiVersion: item.apiVersion ?? list.apiVersion, kind: item.kind ?? this.resource.kind } as T;
      const key = keyOf(obj);
      seen.add(key);
      this.upsert(key, obj);
    }
    for (const [key, obj] of [...this.cache]) {
      if (!seen.has(key)) { this.cache.delete(key); this.emit('delete', obj); }
    }
    this.resourceVersion = list.metadata.resourceVersion ?? '';
    if (!this.synced) { this.synced = true; this.emitter.emit('synced'); }
  }

  private async watchOnce(): Promise<void> {
    let gone: unknown;
    this.watch = this.client.watch<T>(this.resource, {
      ...this.opts, resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 300 + Math.floor(Math.random() * 60),
    }, (ev) => {
      if (ev.type === 'ERROR') {
        const status = ev.object as unknown as { code?: number };
        if (status.code === 410) { gone = status; this.watch?.stop(); }
        return;
      }
      const rv = ev.object.metadata?.resourceVersion;
      if (rv) this.resourceVersion = rv;
      if (ev.type === 'BOOKMARK') return;
      const key = keyOf(ev.object);
      if (ev.type === 'DELETED') {
        const old = this.cache.get(key) ?? ev.object;
        this.cache.delete(key);
        this.emit('delete', old);
      } else {
        this.upsert(key, ev.object);
      }
    });
    await this.watch.done;
    if (gone) this.resourceVersion = '';
  }

  private upsert(key: string, obj: T): void {
    const old = this.cache.get(key);
    this.cache.set(key, obj);
    if (!old) this.emit('add', obj);
    else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.emit('update', old, obj);
  }

  private emit(kind: 'add', obj: T): void;
  private emit(kind: 'update', old: T, obj: T): void;
  private emit(kind: 'delete', obj: T): void;
  private emit(kind: 'add' | 'update' | 'delete', a: T, b?: T): void {
    for (const h of this.handlers) {
      try {
        if (kind === 'add') h.add?.(a);
        else if (kind === 'update') h.update?.(a, b as T);
        else h.delete?.(a);
      } catch (e) {
        console.error(`informer ${this.resource.resource}: handler failed: ${(e as Error).stack ?? e}`);
      }
    }
  }
}

function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }
