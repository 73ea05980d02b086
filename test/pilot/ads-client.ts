// Test scaffolding: a minimal ADS client over a real gRPC stream (adsService()), with a
// queue of decoded responses and helpers to ACK, NACK and subscribe like Envoy does.
import * as grpc from '@grpc/grpc-js';
import { adsService, unpackAny } from '../../api/xds/protos.js';

export interface Response {
  versionInfo: string;
  typeUrl: string;
  nonce: string;
  resources: Record<string, unknown>[];
}

type RawAny = { typeUrl?: string; value?: Buffer; '@type'?: string } & Record<string, unknown>;
interface RawResponse { versionInfo?: string; typeUrl?: string; nonce?: string; resources?: RawAny[] }

// proto-loader's `json: true` already expands Any into `{ '@type', ...fields }`.
function decodeAny(a: RawAny): Record<string, unknown> {
  if (a['@type']) { const { '@type': _t, ...rest } = a; return rest; }
  return unpackAny(a);
}

export class AdsClient {
  private readonly client: grpc.Client & Record<string, unknown>;
  private readonly stream: grpc.ClientDuplexStream<unknown, RawResponse>;
  private readonly queue: Response[] = [];
  private waiter?: (r: Response) => void;
  private nodeSent = false;
  error?: Error;

  constructor(address: string, private readonly node: { id: string; metadata?: unknown }) {
    const Ads = adsService();
    this.client = new Ads(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, unknown>;
    const open = this.client.StreamAggregatedResources as () => grpc.ClientDuplexStream<unknown, RawResponse>;
    this.stream = open.call(this.client);
    this.stream.on('data', (raw: RawResponse) => {
      const r: Response = {
        versionInfo: raw.versionInfo ?? '', typeUrl: raw.typeUrl ?? '', nonce: raw.nonce ?? '',
        resources: (raw.resources ?? []).map(decodeAny),
      };
      if (this.waiter) { const w = this.waiter; this.waiter = undefined; w(r); } else this.queue.push(r);
    });
    this.stream.on('error', (e: Error) => { this.error = e; });
  }

  request(typeUrl: string, opts: { names?: string[]; version?: string; nonce?: string; error?: string } = {}): void {
    const req: Record<string, unknown> = {
      typeUrl, resourceNames: opts.names ?? [], versionInfo: opts.version ?? '', responseNonce: opts.nonce ?? '',
    };
    if (opts.error) req.errorDetail = { code: 3, message: opts.error };
    if (!this.nodeSent) { req.node = this.node; this.nodeSent = true; }
    this.stream.write(req);
  }

  ack(r: Response, names?: string[]): void { this.request(r.typeUrl, { names, version: r.versionInfo, nonce: r.nonce }); }
  nack(r: Response, previousVersion: string, message: string, names?: string[]): void {
    this.request(r.typeUrl, { names, version: previousVersion, nonce: r.nonce, error: message });
  }

  next(timeoutMs = 3_000): Promise<Response> {
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
