// One store watch = one etcd gRPC watch stream from a revision, with progress notifications
// (so a resume point advances even when nothing under the prefix changes) and resumption
// from the last seen revision after the connection to etcd breaks.
import type { Etcd3, IDuplexStream, IEvent, IWatchRequest, IWatchResponse } from 'etcd3';
import { decodeValue, rev } from './etcd-codec.js';
import { StoreError, type StoreEvent } from './types.js';

export interface EtcdWatchOptions {
  client: Etcd3;
  /** The etcd key prefix of the store (stripped from event keys). */
  keyPrefix: string;
  /** The etcd keys watched: [key, rangeEnd). */
  key: Buffer;
  rangeEnd: Buffer;
  /** Deliver every change with revision > fromRevision. */
  fromRevision: number;
  onEvent: (ev: StoreEvent) => void;
  /** The watch ended for good (e.g. Compacted while reconnecting): the caller must relist. */
  onError: (err: Error) => void;
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;

export class EtcdWatch {
  /** Every change up to this revision has been delivered. */
  private delivered: number;
  private stream: IDuplexStream<IWatchRequest, IWatchResponse> | undefined;
  private cancelled = false;
  private retryMs = RETRY_MIN_MS;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: EtcdWatchOptions) {
    this.delivered = opts.fromRevision;
  }

  /** Resolves once etcd has created the watch. */
  async start(): Promise<void> {
    await this.open();
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    clearTimeout(this.retryTimer);
    this.stream?.cancel();
    this.stream = undefined;
  }

  private async open(): Promise<void> {
    const stream = await this.opts.client.watchClient.watch();
    if (this.cancelled) { stream.cancel(); return; }
    this.stream = stream;
    await new Promise<void>((resolve, reject) => {
      let created = false;
      stream.on('data', (res) => {
        if (stream !== this.stream) return;
        if (!created) {
          created = true;
          if (res.canceled) { reject(this.cancelError(res)); this.stream = undefined; stream.cancel(); return; }
          resolve();
        }
        this.onResponse(stream, res);
      });
      const broken = (err: Error): void => {
        if (stream !== this.stream) return;
        this.stream = undefined;
        if (!created) { created = true; reject(err); return; }
        this.reconnect();
      };
      stream.on('error', (err) => broken(err));
      stream.on('end', () => broken(new Error('etcd watch stream ended')));
      stream.write({ create_request: {
        key: this.opts.key, range_end: this.opts.rangeEnd, start_revision: this.delivered + 1,
        progress_notify: true, prev_kv: true,
      } });
    });
    this.retryMs = RETRY_MIN_MS;
  }

  private onResponse(stream: IDuplexStream<IWatchRequest, IWatchResponse>, res: IWatchResponse): void {
    if (res.canceled) {
      this.stream = undefined;
      stream.cancel();
      if (!this.cancelled) { this.cancelled = true; this.opts.onError(this.cancelError(res)); }
      return;
    }
    for (const e of res.events ?? []) {
      const ev = this.toStoreEvent(e);
      this.delivered = ev.revision;
      try { this.opts.onEvent(ev); } catch (err) { console.error(`store watch handler failed for ${ev.key}:`, err); }
    }
    // An empty response is a progress notification: nothing under the prefix changed up to it.
    if ((res.events ?? []).length === 0 && !res.created) this.delivered = Math.max(this.delivered, rev(res.header?.revision));
  }

  private cancelError(res: IWatchResponse): Error {
    const compacted = rev(res.compact_revision);
    if (compacted > 0) {
      return new StoreError('Compacted', this.opts.keyPrefix, `revision ${this.delivered} has been compacted (oldest kept: ${compacted})`);
    }
    return new Error(`etcd cancelled the watch on ${this.opts.key.toString()}: ${res.cancel_reason || 'no reason given'}`);
  }

  private reconnect(): void {
    if (this.cancelled) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    this.retryTimer = setTimeout(() => {
      this.open().catch((err: Error) => {
        if (err instanceof StoreError) { this.cancelled = true; this.opts.onError(err); return; }
        this.reconnect();
      });
    }, delay);
  }

  private toStoreEvent(e: IEvent): StoreEvent {
    const key = e.kv.key.toString('utf8').slice(this.opts.keyPrefix.length);
    const revision = rev(e.kv.mod_revision);
    const prev = e.prev_kv && e.prev_kv.key && e.prev_kv.key.length > 0 ? e.prev_kv : undefined;
    if (e.type === 'Delete') {
      // The last state, stamped with the deletion revision. Without prev_kv (compacted) only the name is known.
      const object = prev ? decodeValue(prev, revision) : { metadata: { resourceVersion: String(revision) } };
      return { type: 'DELETED', key, revision, object, prevObject: prev ? decodeValue(prev) : undefined };
    }
    return {
      type: rev(e.kv.version) === 1 ? 'ADDED' : 'MODIFIED',
      key, revision, object: decodeValue(e.kv), prevObject: prev ? decodeValue(prev) : undefined,
    };
  }
}
