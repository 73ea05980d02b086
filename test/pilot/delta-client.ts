// Test scaffolding: a minimal delta ADS client (DeltaAggregatedResources) over a real gRPC
// stream, with a queue of decoded responses and helpers to subscribe, ACK and NACK.
import * as grpc from '@grpc/grpc-js';
import { adsService, unpackAny } from '../../api/xds/protos.js';

export interface DeltaResource { name: string; version: string; resource: Record<string, unknown> }
export interface DeltaResponse { systemVersionInfo: string; typeUrl: string; nonce: string; resources: DeltaResource[]; removedResources: string[] }

type RawAny = { typeUrl?: string; value?: Buffer; '@type'?: string } & Record<string, unknown>;
interface RawResponse {
  systemVersionInfo?: string; typeUrl?: string; nonce?: string; removedResources?: string[];
  resources?: { name?: string; version?: string; resource?: RawAny }[];
}

function decodeAny(a: RawAny | undefined): Record<string, unknown> {
  if (!a) return {};
  if (a['@type']) { const { '@type': _t, ...rest } = a; return rest; }
  return unpackAny(a);
}

export class DeltaClient {
  private readonly client: grpc.Client & Record<string, unknown>;
  private readonly stream: grpc.ClientDuplexStream<unknown, RawResponse>;
  private readonly queue: DeltaResponse[] = [];
  private waiter?: (r: DeltaResponse) => void;
  private nodeSent = false;
  error?: Error;

  constructor(address: string, private readonly node: { id: string; metadata?: unknown }) {
    const Ads = adsService();
    this.client = new Ads(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, unknown>;
    const open = this.client.DeltaAggregatedResources as () => grpc.ClientDuplexStream<unknown, RawResponse>;
    this.stream = open.call(this.client);
    this.stream.on('data', (raw: RawResponse) => {
      const r: DeltaResponse = {
        systemVersionInfo: raw.systemVersionInfo ?? '', typeUrl: raw.typeUrl ?? '', nonce: raw.nonce ?? '',
        removedResources: raw.removedResources ?? [],
        resources: (raw.resources ?? []).map((x) => ({ name: x.name ?? '', version: x.version ?? '', resource: decodeAny(x.resource) })),
      };
      if (this.waiter) { const w = this.waiter; this.waiter = undefined; w(r); } else this.queue.push(r);
    });
    this.stream.on('error', (e: Error) => { this.error = e; });
  }

  request(typeUrl: string, opts: { subscribe?: string[]; unsubscribe?: string[]; initial?: Record<string, string>; nonce?: string; error?: string } = {}): void {
    const req: Record<string, unknown> = {
      typeUrl, resourceNamesSubscribe: opts.subscribe ?? [], resourceNamesUnsubscribe: opts.unsubscribe ?? [],
      initialResourceVersions: opts.initial ?? {}, responseNonce: opts.nonce ?? '',
    };
    if (opts.error) req.errorDetail = { code: 3, message: opts.error };
    if (!this.nodeSent) { req.node = this.node; this.nodeSent = true; }
    this.stream.write(req);
  }

  ack(r: DeltaResponse): void { this.request(r.typeUrl, { nonce: r.nonce }); }
  nack(r: DeltaResponse, message: string): void { this.request(r.typeUrl, { nonce: r.nonce, error: message }); }

  next(timeoutMs = 3_000): Promise<DeltaResponse> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.waiter = undefined; reject(new Error(`no delta xDS response within ${timeoutMs} ms`)); }, timeoutMs);
      this.waiter = (r) => { clearTimeout(t); resolve(r); };
    });
  }

  async quiet(ms: number): Promise<boolean> {
    try { await this.next(ms); return false; } catch { return true; }
  }

  close(): void {
    this.stream.end();
    this.client.close();
  }
}
