// The cluster store on a real etcd v3 (one member or a cluster), through the `etcd3` client.
// Every mutation is one etcd transaction whose compare carries the precondition, so the
// check and the write are atomic on the server: create = createRevision == 0, update and
// delete = modRevision == expected (compare-and-swap). The etcd revision is the store
// revision, so resourceVersions are etcd's, as in Kubernetes.
import * as fs from 'node:fs';
import { Etcd3, type IKeyValue, type IOptions, type ICompare, type IResponseHeader } from 'etcd3';
import { decodeValue, encodeValue, prefixEnd, rev } from './etcd-codec.js';
import { EtcdWatch } from './etcd-watch.js';
import { StoreError, type CancelWatch, type JsonObject, type ListOptions, type ListResult, type Store, type StoreEvent } from './types.js';

export interface EtcdStoreTls {
  /** PEM files: the CA that signed etcd's serving certificate, and an optional client certificate and key. */
  caFile: string;
  certFile?: string;
  keyFile?: string;
}

export interface EtcdStoreOptions {
  /** Client URLs, e.g. ['http://127.0.0.1:2379'] (https:// with tls). */
  endpoints: string[];
  /** Prepended to every store key in etcd (default ''; store keys already start with /registry/). */
  prefix?: string;
  tls?: EtcdStoreTls;
  /** Keys per range request when listing (default 500). */
  listPageSize?: number;
  /** Per-request deadline in milliseconds (default 10000). */
  requestTimeoutMs?: number;
}

const COMPACTED_MESSAGE = 'required revision has been compacted';

export class EtcdStore implements Store {
  readonly client: Etcd3;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly listPage: number;
  private readonly watches = new Set<EtcdWatch>();
  private closed = false;

  constructor(opts: EtcdStoreOptions) {
    if (opts.endpoints.length === 0) throw new Error('EtcdStore: options.endpoints is empty');
    this.prefix = opts.prefix ?? '';
    this.timeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.listPage = opts.listPageSize ?? 500;
    const options: IOptions = { hosts: opts.endpoints, dialTimeout: 5000 };
    if (opts.tls) {
      options.credentials = {
        rootCertificate: fs.readFileSync(opts.tls.caFile),
        certChain: opts.tls.certFile ? fs.readFileSync(opts.tls.certFile) : undefined,
        privateKey: opts.tls.keyFile ? fs.readFileSync(opts.tls.keyFile) : undefined,
      };
    }
    this.client = new Etcd3(options);
  }

  async get(key: string): Promise<JsonObject | undefined> {
    const res = await this.client.kv.range({ key: this.k(key) }, this.callOpts());
    return res.kvs.length > 0 ? decodeValue(res.kvs[0]) : undefined;
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    const end = prefixEnd(this.k(prefix));
    // Pages of listPageSize keys (a gRPC message is capped at 4 MiB), every page read at the
    // first page's revision, so the whole list is one consistent snapshot; keys in byte order.
    const items: JsonObject[] = [];
    let key = this.k(prefix);
    let revision = opts.revision ?? 0;
    for (;;) {
      let res;
      try {
        res = await this.client.kv.range({ key, range_end: end, limit: this.listPage, revision }, this.callOpts());
      } catch (e) {
        if (e instanceof Error && e.message.includes(COMPACTED_MESSAGE)) {
          throw new StoreError('Compacted', prefix, `revision ${revision} has been compacted (${e.message})`);
        }
        throw e;
      }
      if (revision === 0) revision = headerRev(res.header);
      for (const kv of res.kvs) items.push(decodeValue(kv));
      if (!res.more || res.kvs.length === 0) break;
      key = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]);
    }
    return { items, revision };
  }

  async create(key: string, value: JsonObject): Promise<JsonObject> {
    this.checkOpen();
    const k = this.k(key);
    const res = await this.client.kv.txn({
      compare: [{ key: k, target: 'Create', result: 'Equal', create_revision: 0 }],
      success: [{ request_put: { key: k, value: encodeValue(value) } }],
    }, this.callOpts());
    if (!res.succeeded) throw new StoreError('AlreadyExists', key, `key ${key} already exists`);
    return materializeWritten(value, headerRev(res.header));
  }

  async update(key: string, value: JsonObject, expectedModRevision?: number): Promise<JsonObject> {
    this.checkOpen();
    const k = this.k(key);
    const res = await this.client.kv.txn({
      compare: [this.precondition(k, expectedModRevision)],
      success: [{ request_put: { key: k, value: encodeValue(value) } }],
      failure: [{ request_range: { key: k } }],
    }, this.callOpts());
    if (!res.succeeded) throw this.preconditionFailed(key, res.responses[0]?.response_range?.kvs[0], expectedModRevision);
    return materializeWritten(value, headerRev(res.header));
  }

  async delete(key: string, expectedModRevision?: number): Promise<JsonObject> {
    this.checkOpen();
    const k = this.k(key);
    const res = await this.client.kv.txn({
      compare: [this.precondition(k, expectedModRevision)],
      success: [{ request_delete_range: { key: k, prev_kv: true } }],
      failure: [{ request_range: { key: k } }],
    }, this.callOpts());
    if (!res.succeeded) throw this.preconditionFailed(key, res.responses[0]?.response_range?.kvs[0], expectedModRevision);
    const prev = res.responses[0]?.response_delete_range?.prev_kvs[0];
    if (!prev) throw new StoreError('NotFound', key, `key ${key} not found`);
    return decodeValue(prev, headerRev(res.header));
  }

  /**
   * Watches from fromRevision (etcd start_revision = fromRevision + 1). Events arrive
   * asynchronously, in revision order. onError, when given, hears that a watch ended for
   * good after it started (e.g. history compacted while etcd was unreachable).
   */
  async watch(prefix: string, fromRevision: number, onEvent: (ev: StoreEvent) => void, onError?: (err: Error) => void): Promise<CancelWatch> {
    this.checkOpen();
    const key = this.k(prefix);
    await this.checkNotCompacted(prefix, fromRevision);
    const w = new EtcdWatch({
      client: this.client, keyPrefix: this.prefix, key, rangeEnd: prefixEnd(key), fromRevision, onEvent,
      onError: (err) => {
        this.watches.delete(w);
        if (onError) onError(err); else console.error(`store watch on ${prefix} ended: ${err.message}`);
      },
    });
    this.watches.add(w);
    try {
      await w.start();
    } catch (e) {
      this.watches.delete(w);
      w.cancel();
      throw e;
    }
    return () => { this.watches.delete(w); w.cancel(); };
  }

  async revision(): Promise<number> {
    const res = await this.client.kv.range({ key: this.k('/'), count_only: true }, this.callOpts());
    return headerRev(res.header);
  }

  /** Drops history up to revision (etcd compaction): watches from older revisions get Compacted. */
  async compact(revision: number): Promise<void> {
    await this.client.kv.compact({ revision, physical: true }, this.callOpts());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watches) w.cancel();
    this.watches.clear();
    this.client.close();
  }

  /**
   * etcd accepts a watch on compacted history and cancels it a moment later; a range read
   * at the first wanted revision fails the same way at once, so watch() can throw Compacted.
   */
  private async checkNotCompacted(prefix: string, fromRevision: number): Promise<void> {
    const current = await this.revision();
    if (fromRevision >= current) return;
    try {
      await this.client.kv.range({ key: this.k(prefix), count_only: true, revision: fromRevision + 1 }, this.callOpts());
    } catch (e) {
      if (e instanceof Error && e.message.includes(COMPACTED_MESSAGE)) {
        throw new StoreError('Compacted', prefix, `revision ${fromRevision} has been compacted (${e.message})`);
      }
      throw e;
    }
  }

  private precondition(k: Buffer, expectedModRevision: number | undefined): ICompare {
    return expectedModRevision === undefined
      ? { key: k, target: 'Create', result: 'Greater', create_revision: 0 } // the key exists
      : { key: k, target: 'Mod', result: 'Equal', mod_revision: expectedModRevision };
  }

  private preconditionFailed(key: string, cur: IKeyValue | undefined, expected: number | undefined): StoreError {
    if (!cur) return new StoreError('NotFound', key, `key ${key} not found`);
    return new StoreError('Conflict', key, `key ${key} has modRevision ${rev(cur.mod_revision)}, expected ${String(expected)}`);
  }

  private k(key: string): Buffer { return Buffer.from(this.prefix + key); }

  private callOpts(): { deadline: Date } { return { deadline: new Date(Date.now() + this.timeoutMs) }; }

  private checkOpen(): void {
    if (this.closed) throw new Error('store is closed');
  }
}

function headerRev(h: IResponseHeader | undefined): number {
  return rev(h?.revision);
}

/** What a write returns: the value as stored, stamped with the write's revision. */
function materializeWritten(value: JsonObject, revision: number): JsonObject {
  return decodeValue({ value: encodeValue(value) } as IKeyValue, revision);
}
