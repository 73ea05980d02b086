// The ADS stream (state-of-the-world): subscriptions, versions, nonces, ACK/NACK and
// reconnect with backoff. It knows nothing about what the resources mean; the handler does.
import * as grpc from '@grpc/grpc-js';
import { adsService } from '../../api/xds/protos.js';
import { decodeAny, type AnyMessage } from './any.js';
import type { XdsNode } from './node.js';
import type { Obj } from './resources/fields.js';

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

import { Backoff, type AdsStats, type ResponseHandler, type XdsTransport } from './xds-transport.js';
export type { ResponseHandler } from './xds-transport.js';

export interface AdsClientOptions {
  /** host:port of the control plane (plaintext gRPC). */
  address: string;
  node: XdsNode;
  onResponse: ResponseHandler;
  log?: (msg: string) => void;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
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

const INVALID_ARGUMENT = 3;

export class AdsClient implements XdsTransport {
  readonly mode = 'sotw' as const;
  private readonly client: grpc.Client & { StreamAggregatedResources?: () => grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse> };
  private stream: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse> | undefined;
  private readonly types = new Map<string, TypeState>();
  private readonly backoff: Backoff;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private nodeSent = false;
  /** Counters for the admin /stats page. */
  readonly stats: AdsStats = { connects: 0, responses: 0, acks: 0, nacks: 0, streamErrors: 0 };

  constructor(private readonly opts: AdsClientOptions) {
    const Service = adsService();
    this.client = new Service(opts.address, grpc.credentials.createInsecure(), {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.initial_reconnect_backoff_ms': 500,
    }) as AdsClient['client'];
    this.backoff = new Backoff(opts.initialBackoffMs ?? 500, opts.maxBackoffMs ?? 30_000);
  }

  private log(msg: string): void {
    this.opts.log?.(`xds: ${msg}`);
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.stream?.cancel();
    this.stream = undefined;
    this.client.close();
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

  private connect(): void {
    if (this.stopped) return;
    const method = this.client.StreamAggregatedResources;
    if (!method) throw new Error('xds: ADS service has no StreamAggregatedResources method');
    const stream = method.call(this.client);
    this.stream = stream;
    this.nodeSent = false;
    this.stats.connects++;
    for (const st of this.types.values()) st.nonce = '';
    stream.on('data', (res: DiscoveryResponse) => this.onResponse(res));
    stream.on('error', (err: grpc.ServiceError) => {
      if (this.stream !== stream) return;
      this.stats.streamErrors++;
      this.log(`stream to ${this.opts.address} failed: ${err.code} ${err.details || err.message}`);
      this.retry();
    });
    stream.on('end', () => {
      if (this.stream !== stream) return;
      this.log(`stream to ${this.opts.address} ended by the server`);
      this.retry();
    });
    // Resubscribe in the order the server pushes: CDS before LDS, then EDS, RDS.
    for (const typeUrl of this.types.keys()) this.sendRequest(typeUrl);
  }

  private retry(): void {
    this.stream = undefined;
    if (this.stopped) return;
    this.timer = setTimeout(() => this.connect(), this.backoff.next());
  }

  private sendRequest(typeUrl: string, errorDetail?: string): void {
    const st = this.types.get(typeUrl);
    if (!this.stream || !st) return;
    const req: DiscoveryRequest = {
      versionInfo: st.version,
      resourceNames: st.names ?? [],
      typeUrl,
      responseNonce: st.nonce,
    };
    // The node is only required on the first request of a stream.
    if (!this.nodeSent) {
      req.node = this.opts.node;
      this.nodeSent = true;
    }
    if (errorDetail !== undefined) req.errorDetail = { code: INVALID_ARGUMENT, message: errorDetail };
    this.stream.write(req);
  }

  private onResponse(res: DiscoveryResponse): void {
    this.stats.responses++;
    this.backoff.reset();
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
