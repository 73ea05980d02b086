// The ADS stream (state-of-the-world): subscriptions, versions, nonces, ACK/NACK and
// reconnect with backoff. It knows nothing about what the resources mean; the handler does.
import { decodeAny, type AnyMessage } from './any.js';
import type { XdsNode } from './node.js';
import type { Obj } from './resources/fields.js';
import { AdsStream, INVALID_ARGUMENT, type AdsClientOptions } from './ads-stream.js';
import type { XdsTransport } from './xds-transport.js';
export type { ResponseHandler } from './xds-transport.js';
export type { AdsClientOptions } from './ads-stream.js';

interface DiscoveryResponse {
  versionInfo?: string;
  resources?: AnyMessage[];
  typeUrl?: string;
  nonce?: string;
}

interface DiscoveryRequest {
  versionInfo: string;
  node?: XdsNode;
  resourceNames: string[];
  typeUrl: string;
  responseNonce: string;
  errorDetail?: { code: number; message: string };
}

interface TypeState {
  /** undefined = wildcard (CDS/LDS); a list = named subscription (EDS/RDS). */
  names: string[] | undefined;
  /** Last accepted version. */
  version: string;
  /** Nonce of the last response received on the current stream. */
  nonce: string;
  subscribed: boolean;
}

export class AdsClient extends AdsStream<DiscoveryRequest, DiscoveryResponse> implements XdsTransport {
  readonly mode = 'sotw' as const;
  private readonly types = new Map<string, TypeState>();

  constructor(opts: AdsClientOptions) {
    super(opts, 'StreamAggregatedResources', 'xds');
  }

  /** Sets the subscription for a type (undefined names = wildcard) and tells the server if it changed. */
  subscribe(typeUrl: string, names: string[] | undefined): void {
    const sorted = names ? [...new Set(names)].sort() : undefined;
    const st = this.types.get(typeUrl);
    if (st && st.subscribed && JSON.stringify(st.names) === JSON.stringify(sorted)) return;
    // An empty named subscription would read as a wildcard to older servers: wait for a first name.
    if (!st && sorted !== undefined && sorted.length === 0) return;
    const next: TypeState = st ?? { names: sorted, version: '', nonce: '', subscribed: true };
    next.names = sorted;
    next.subscribed = true;
    this.types.set(typeUrl, next);
    this.sendRequest(typeUrl);
  }

  protected onStreamStarted(): void {
    // Nonces belong to the old stream. Resubscribe in the order the server pushes: CDS before
    // LDS, then EDS, RDS.
    for (const st of this.types.values()) st.nonce = '';
    for (const typeUrl of this.types.keys()) this.sendRequest(typeUrl);
  }

  private sendRequest(typeUrl: string, errorDetail?: string): void {
    const st = this.types.get(typeUrl);
    if (!st) return;
    const req: DiscoveryRequest = {
      versionInfo: st.version,
      resourceNames: st.names ?? [],
      typeUrl,
      responseNonce: st.nonce,
    };
    if (errorDetail !== undefined) req.errorDetail = { code: INVALID_ARGUMENT, message: errorDetail };
    this.write(req);
  }

  protected onResponse(res: DiscoveryResponse): void {
    const typeUrl = res.typeUrl ?? '';
    const st = this.types.get(typeUrl);
    if (!st) {
      this.log(`ignoring response for unsubscribed type ${typeUrl}`);
      return;
    }
    st.nonce = res.nonce ?? '';
    const version = res.versionInfo ?? '';
    const decoded: Obj[] = [];
    let error: string | undefined;
    (res.resources ?? []).forEach((any, i) => {
      if (error) return;
      try {
        const d = decodeAny(any);
        if (d.typeUrl !== typeUrl) {
          error = `resources[${i}]: type ${d.typeUrl || '(none)'} does not match response type ${typeUrl}`;
          return;
        }
        decoded.push(d.body);
      } catch (e) {
        error = `resources[${i}]: cannot decode ${typeUrl}: ${(e as Error).message}`;
      }
    });
    if (!error) {
      try {
        error = this.opts.onResponse(typeUrl, decoded, version);
      } catch (e) {
        error = `internal error applying ${typeUrl}: ${(e as Error).message}`;
      }
    }
    if (error === undefined) {
      st.version = version;
      this.stats.acks++;
      this.sendRequest(typeUrl);
    } else {
      this.stats.nacks++;
      this.log(`NACK ${typeUrl} version ${version}: ${error}`);
      this.sendRequest(typeUrl, error);
    }
  }
}
