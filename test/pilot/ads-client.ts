// Test scaffolding: a minimal ADS client over a real gRPC stream (adsService()), with a
// queue of decoded responses and helpers to ACK, NACK and subscribe like Envoy does.
import { XdsStream, decodeAny, type RawAny, type XdsDial } from './xds-stream.js';

export interface Response {
  versionInfo: string;
  typeUrl: string;
  nonce: string;
  resources: Record<string, unknown>[];
}

interface RawResponse { versionInfo?: string; typeUrl?: string; nonce?: string; resources?: RawAny[] }

export class AdsClient extends XdsStream<RawResponse, Response> {
  constructor(address: string, node: { id: string; metadata?: unknown }, dial?: XdsDial) {
    super(address, node, 'StreamAggregatedResources', dial);
  }

  protected decode(raw: RawResponse): Response {
    return { versionInfo: raw.versionInfo ?? '', typeUrl: raw.typeUrl ?? '', nonce: raw.nonce ?? '', resources: (raw.resources ?? []).map(decodeAny) };
  }

  request(typeUrl: string, opts: { names?: string[]; version?: string; nonce?: string; error?: string } = {}): void {
    const req: Record<string, unknown> = {
      typeUrl, resourceNames: opts.names ?? [], versionInfo: opts.version ?? '', responseNonce: opts.nonce ?? '',
    };
    if (opts.error) req.errorDetail = { code: 3, message: opts.error };
    this.write(req);
  }

  ack(r: Response, names?: string[]): void { this.request(r.typeUrl, { names, version: r.versionInfo, nonce: r.nonce }); }
  nack(r: Response, previousVersion: string, message: string, names?: string[]): void {
    this.request(r.typeUrl, { names, version: previousVersion, nonce: r.nonce, error: message });
  }
}
