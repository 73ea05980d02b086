// Test scaffolding: a minimal delta ADS client (DeltaAggregatedResources) over a real gRPC
// stream, with a queue of decoded responses and helpers to subscribe, ACK and NACK.
import { XdsStream, decodeAny, type RawAny, type XdsDial } from './xds-stream.js';

export interface DeltaResource { name: string; version: string; resource: Record<string, unknown> }
export interface DeltaResponse { systemVersionInfo: string; typeUrl: string; nonce: string; resources: DeltaResource[]; removedResources: string[] }

interface RawResponse {
  systemVersionInfo?: string; typeUrl?: string; nonce?: string; removedResources?: string[];
  resources?: { name?: string; version?: string; resource?: RawAny }[];
}

export class DeltaClient extends XdsStream<RawResponse, DeltaResponse> {
  constructor(address: string, node: { id: string; metadata?: unknown }, dial?: XdsDial) {
    super(address, node, 'DeltaAggregatedResources', dial);
  }

  protected decode(raw: RawResponse): DeltaResponse {
    return {
      systemVersionInfo: raw.systemVersionInfo ?? '', typeUrl: raw.typeUrl ?? '', nonce: raw.nonce ?? '',
      removedResources: raw.removedResources ?? [],
      resources: (raw.resources ?? []).map((x) => ({ name: x.name ?? '', version: x.version ?? '', resource: decodeAny(x.resource) })),
    };
  }

  request(typeUrl: string, opts: { subscribe?: string[]; unsubscribe?: string[]; initial?: Record<string, string>; nonce?: string; error?: string } = {}): void {
    const req: Record<string, unknown> = {
      typeUrl, resourceNamesSubscribe: opts.subscribe ?? [], resourceNamesUnsubscribe: opts.unsubscribe ?? [],
      initialResourceVersions: opts.initial ?? {}, responseNonce: opts.nonce ?? '',
    };
    if (opts.error) req.errorDetail = { code: 3, message: opts.error };
    this.write(req);
  }

  ack(r: DeltaResponse): void { this.request(r.typeUrl, { nonce: r.nonce }); }
  nack(r: DeltaResponse, message: string): void { this.request(r.typeUrl, { nonce: r.nonce, error: message }); }
}
