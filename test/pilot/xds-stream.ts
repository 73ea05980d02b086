// Test scaffolding shared by the SotW and delta ADS clients: one real gRPC stream of
// adsService(), a queue of decoded responses, and the node sent on the first request.
import * as grpc from '@grpc/grpc-js';
import { adsService, unpackAny } from '../../api/xds/protos.js';

export type RawAny = { typeUrl?: string; value?: Buffer; '@type'?: string } & Record<string, unknown>;

// proto-loader's `json: true` already expands Any into `{ '@type', ...fields }`.
export function decodeAny(a: RawAny | undefined): Record<string, unknown> {
  if (!a) return {};
  if (a['@type']) { const { '@type': _t, ...rest } = a; return rest; }
  return unpackAny(a);
}

/** TLS and call metadata for pilot's authenticated port; plaintext without. */
export interface XdsDial { credentials?: grpc.ChannelCredentials; channelOptions?: grpc.ChannelOptions; metadata?: grpc.Metadata }

export abstract class XdsStream<Raw, R> {
  private readonly client: grpc.Client & Record<string, unknown>;
  private readonly stream: grpc.ClientDuplexStream<unknown, Raw>;
  private readonly queue: R[] = [];
  private waiter?: (r: R) => void;
  private nodeSent = false;
  error?: Error;

  constructor(address: string, private readonly node: { id: string; metadata?: unknown }, rpc: 'StreamAggregatedResources' | 'DeltaAggregatedResources', dial: XdsDial = {}) {
    const Ads = adsService();
    this.client = new Ads(address, dial.credentials ?? grpc.credentials.createInsecure(), dial.channelOptions ?? {}) as grpc.Client & Record<string, unknown>;
    const open = this.client[rpc] as (metadata?: grpc.Metadata) => grpc.ClientDuplexStream<unknown, Raw>;
    this.stream = open.call(this.client, dial.metadata ?? new grpc.Metadata());
    this.stream.on('data', (raw: Raw) => {
      const r = this.decode(raw);
      if (this.waiter) { const w = this.waiter; this.waiter = undefined; w(r); } else this.queue.push(r);
    });
    this.stream.on('error', (e: Error) => { this.error = e; });
  }

  protected abstract decode(raw: Raw): R;

  /** Writes a request; the first one carries the node, as Envoy does. */
  protected write(req: Record<string, unknown>): void {
    if (!this.nodeSent) { req.node = this.node; this.nodeSent = true; }
    this.stream.write(req);
  }

  next(timeoutMs = 3_000): Promise<R> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.waiter = undefined; reject(new Error(`no xDS response within ${timeoutMs} ms`)); }, timeoutMs);
      this.waiter = (r) => { clearTimeout(t); resolve(r); };
    });
  }

  /** Resolves true if nothing arrives within ms. */
  async quiet(ms: number): Promise<boolean> {
    try { await this.next(ms); return false; } catch { return true; }
  }

  close(): void {
    this.stream.end();
    this.client.close();
  }
}
