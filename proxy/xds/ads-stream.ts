// What the state-of-the-world and delta ADS clients share: the gRPC channel to pilot, one
// bidirectional stream at a time rebuilt with jittered back-off (the last good config stays
// applied meanwhile), the node sent on a stream's first request, and the admin counters.
import * as grpc from '@grpc/grpc-js';
import { adsService } from '../../api/xds/protos.js';
import type { XdsNode } from './node.js';
import { Backoff, type AdsStats, type ResponseHandler } from './xds-transport.js';

/**
 * TLS to pilot's port 15012, as Istio's agent dials istiod: the server certificate verified
 * against the mesh root, the ServiceAccount token sent as `authorization: Bearer` metadata.
 */
export interface XdsTlsOptions {
  rootCertPem: string;
  /**
   * The current trust bundle, read on every (re)connect: after a root rotation pilot may
   * present a chain only the new root verifies. A changed bundle rebuilds the channel.
   */
  rootCerts?: () => string;
  /** The name pilot's certificate must carry when `address` is not it (e.g. an IP). */
  serverName?: string;
  /** The current token, read on every (re)connect: projected tokens rotate. */
  token: () => string;
}

export interface AdsClientOptions {
  /** host:port of the control plane. */
  address: string;
  /** Without it, plaintext gRPC (pilot's 15010: in-process tests, proxyless clients). */
  tls?: XdsTlsOptions;
  node: XdsNode;
  onResponse: ResponseHandler;
  log?: (msg: string) => void;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** google.rpc.Code INVALID_ARGUMENT, the code of a NACK's error_detail. */
export const INVALID_ARGUMENT = 3;

type AdsMethod = 'StreamAggregatedResources' | 'DeltaAggregatedResources';

export abstract class AdsStream<Req extends { node?: XdsNode }, Res> {
  private client: grpc.Client;
  private roots: string | undefined;
  private stream: grpc.ClientDuplexStream<Req, Res> | undefined;
  private readonly backoff: Backoff;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private nodeSent = false;
  /** Counters for the admin /stats page. */
  readonly stats: AdsStats = { connects: 0, responses: 0, acks: 0, nacks: 0, streamErrors: 0 };

  constructor(protected readonly opts: AdsClientOptions, private readonly method: AdsMethod, private readonly tag: string) {
    this.roots = opts.tls?.rootCertPem;
    this.client = this.newClient();
    this.backoff = new Backoff(opts.initialBackoffMs ?? 500, opts.maxBackoffMs ?? 30_000);
  }

  private newClient(): grpc.Client {
    const Service = adsService();
    const channel: grpc.ClientOptions = { 'grpc.keepalive_time_ms': 30_000, 'grpc.initial_reconnect_backoff_ms': 500 };
    if (this.opts.tls?.serverName) {
      channel['grpc.ssl_target_name_override'] = this.opts.tls.serverName;
      channel['grpc.default_authority'] = this.opts.tls.serverName;
    }
    const creds = this.opts.tls ? grpc.credentials.createSsl(Buffer.from(this.roots ?? '')) : grpc.credentials.createInsecure();
    return new Service(this.opts.address, creds, channel);
  }

  /** Re-reads the trust bundle; a changed one replaces the channel. False when unreadable. */
  private refreshRoots(): boolean {
    const read = this.opts.tls?.rootCerts;
    if (!read) return true;
    let roots: string;
    try {
      roots = read();
    } catch (e) {
      this.log(`xDS trust bundle unreadable: ${(e as Error).message}; retrying`);
      return false;
    }
    if (roots === this.roots) return true;
    this.client.close();
    this.roots = roots;
    this.client = this.newClient();
    this.log(`xDS trust bundle changed; reconnecting to ${this.opts.address} with it`);
    return true;
  }

  protected log(msg: string): void {
    this.opts.log?.(`${this.tag}: ${msg}`);
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

  /** True while a stream is open (requests written now reach the server). */
  protected get connected(): boolean {
    return this.stream !== undefined;
  }

  /** Writes a request on the open stream; the node goes only on a stream's first request. */
  protected write(req: Req): void {
    if (!this.stream) return;
    if (!this.nodeSent) {
      req.node = this.opts.node;
      this.nodeSent = true;
    }
    this.stream.write(req);
  }

  /** A new stream is open: resend every subscription. */
  protected abstract onStreamStarted(): void;
  /** One response (counted, back-off reset); ACK or NACK it through write(). */
  protected abstract onResponse(res: Res): void;

  private connect(): void {
    if (this.stopped) return;
    const metadata = new grpc.Metadata();
    if (this.opts.tls) {
      if (!this.refreshRoots()) {
        this.stats.streamErrors++;
        this.retry();
        return;
      }
      let token: string;
      try {
        token = this.opts.tls.token().trim();
      } catch (e) {
        this.stats.streamErrors++;
        this.log(`xDS token for ${this.opts.address} unreadable: ${(e as Error).message}; retrying`);
        this.retry();
        return;
      }
      metadata.set('authorization', `Bearer ${token}`);
    }
    const open = (this.client as unknown as Record<AdsMethod, ((md: grpc.Metadata) => grpc.ClientDuplexStream<Req, Res>) | undefined>)[this.method];
    if (!open) throw new Error(`${this.tag}: ADS service has no ${this.method} method`);
    const stream = open.call(this.client, metadata);
    this.stream = stream;
    this.nodeSent = false;
    this.stats.connects++;
    stream.on('data', (res: Res) => {
      this.stats.responses++;
      this.backoff.reset();
      this.onResponse(res);
    });
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
    this.onStreamStarted();
  }

  private retry(): void {
    this.stream = undefined;
    if (this.stopped) return;
    this.timer = setTimeout(() => this.connect(), this.backoff.next());
  }
}
