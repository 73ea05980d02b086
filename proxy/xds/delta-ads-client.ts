// The delta (incremental) ADS stream, DeltaAggregatedResources: per type the subscribed
// names (or the wildcard), each held resource's version, removals, ACK/NACK by nonce, and on
// reconnect initial_resource_versions so the server sends only what changed meanwhile. The
// handler is given a type's whole state after each response, like state-of-the-world, plus
// the removed names; what it rejects is NACKed and the held state stays as it was.
import * as grpc from '@grpc/grpc-js';
import { adsService } from '../../api/xds/protos.js';
import { decodeAny, type AnyMessage } from './any.js';
import type { XdsNode } from './node.js';
import type { Obj } from './resources/fields.js';
import { Backoff, type AdsStats, type ResponseHandler, type XdsTransport } from './xds-transport.js';

interface DeltaResource {
  name?: string;
  version?: string;
  resource?: AnyMessage | null;
  aliases?: string[];
}

interface DeltaDiscoveryResponse {
  systemVersionInfo?: string;
  resources?: DeltaResource[];
  typeUrl?: string;
  removedResources?: string[];
  nonce?: string;
}

interface DeltaDiscoveryRequest {
  node?: XdsNode;
  typeUrl: string;
  resourceNamesSubscribe: string[];
  resourceNamesUnsubscribe: string[];
  initialResourceVersions: Record<string, string>;
  responseNonce: string;
  errorDetail?: { code: number; message: string };
}

interface Held {
  version: string;
  body: Obj;
}

interface TypeState {
  /** undefined = wildcard (CDS/LDS); a set = named subscription (EDS/RDS). */
  names: Set<string> | undefined;
  /** Names subscribed/unsubscribed since the last request on this stream. */
  pendingSubscribe: Set<string>;
  pendingUnsubscribe: Set<string>;
  /** What the last accepted responses left: name -> version and decoded body. */
  held: Map<string, Held>;
  /** False until the first request of the current stream went out for this type. */
  requested: boolean;
}

const INVALID_ARGUMENT = 3;

export interface DeltaAdsClientOptions {
  address: string;
  node: XdsNode;
  onResponse: ResponseHandler;
  log?: (msg: string) => void;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

type DeltaStream = grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

export class DeltaAdsClient implements XdsTransport {
  readonly mode = 'delta' as const;
  private readonly client: grpc.Client & { DeltaAggregatedResources?: () => DeltaStream };
  private stream: DeltaStream | undefined;
  private readonly types = new Map<string, TypeState>();
  private readonly backoff: Backoff;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private nodeSent = false;
  readonly stats: AdsStats = { connects: 0, responses: 0, acks: 0, nacks: 0, streamErrors: 0 };

  constructor(private readonly opts: DeltaAdsClientOptions) {
    const Service = adsService();
    this.client = new Service(opts.address, grpc.credentials.createInsecure(), {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.initial_reconnect_backoff_ms': 500,
    }) as DeltaAdsClient['client'];
    this.backoff = new Backoff(opts.initialBackoffMs ?? 500, opts.maxBackoffMs ?? 30_000);
  }

  private log(msg: string): void {
    this.opts.log?.(`xds(delta): ${msg}`);
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

  /** The versions held per type, as config_dump and tests read them. */
  heldVersions(typeUrl: string): Record<string, string> {
    const st = this.types.get(typeUrl);
    return Object.fromEntries([...(st?.held ?? [])].map(([n, h]) => [n, h.version]));
  }

  /** Sets the subscription of a type (undefined = wildcard) and sends only the difference. */
  subscribe(typeUrl: string, names: string[] | undefined): void {
    let st = this.types.get(typeUrl);
    if (!st) {
      // An empty named subscription would read as a wildcard: wait for a first name.
      if (names !== undefined && names.length === 0) return;
      st = { names: names ? new Set() : undefined, pendingSubscribe: new Set(), pendingUnsubscribe: new Set(), held: new Map(), requested: false };
      this.types.set(typeUrl, st);
    }
    if (names === undefined || st.names === undefined) {
      if (!st.requested) this.sendRequest(typeUrl, st, '');
      return;
    }
    const wanted = new Set(names);
    let changed = false;
    for (const n of wanted) if (!st.names.has(n)) { st.names.add(n); st.pendingUnsubscribe.delete(n); st.pendingSubscribe.add(n); changed = true; }
    for (const n of [...st.names]) {
      if (wanted.has(n)) continue;
      st.names.delete(n);
      st.pendingSubscribe.delete(n);
      st.pendingUnsubscribe.add(n);
      // An unsubscribed resource is dropped without a removal notice from the server.
      st.held.delete(n);
      changed = true;
    }
    if (changed || !st.requested) this.sendRequest(typeUrl, st, '');
  }

  private connect(): void {
    if (this.stopped) return;
    const method = this.client.DeltaAggregatedResources;
    if (!method) throw new Error('xds(delta): ADS service has no DeltaAggregatedResources method');
    const stream = method.call(this.client);
    this.stream = stream;
    this.nodeSent = false;
    this.stats.connects++;
    stream.on('data', (res: DeltaDiscoveryResponse) => this.onResponse(res));
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
    // A new stream starts from scratch: the full subscription plus what is held, in the order
    // types were first subscribed (CDS, LDS, then EDS, RDS).
    for (const [typeUrl, st] of this.types) {
      st.requested = false;
      st.pendingSubscribe = new Set(st.names ?? []);
      st.pendingUnsubscribe.clear();
      this.sendRequest(typeUrl, st, '');
    }
  }

  private retry(): void {
    this.stream = undefined;
    if (this.stopped) return;
    // The last good config stays applied; only the stream is rebuilt.
    this.timer = setTimeout(() => this.connect(), this.backoff.next());
  }

  private sendRequest(typeUrl: string, st: TypeState, nonce: string, errorDetail?: string): void {
    if (!this.stream) return;
    const req: DeltaDiscoveryRequest = {
      typeUrl,
      resourceNamesSubscribe: [...st.pendingSubscribe],
      resourceNamesUnsubscribe: [...st.pendingUnsubscribe],
      initialResourceVersions: {},
      responseNonce: nonce,
    };
    if (!st.requested) {
      for (const [name, h] of st.held) req.initialResourceVersions[name] = h.version;
      st.requested = true;
    }
    st.pendingSubscribe.clear();
    st.pendingUnsubscribe.clear();
    if (!this.nodeSent) {
      req.node = this.opts.node;
      this.nodeSent = true;
    }
    if (errorDetail !== undefined) req.errorDetail = { code: INVALID_ARGUMENT, message: errorDetail };
    this.stream.write(req);
  }

  private onResponse(res: DeltaDiscoveryResponse): void {
    this.stats.responses++;
    this.backoff.reset();
    const typeUrl = res.typeUrl ?? '';
    const nonce = res.nonce ?? '';
    const st = this.types.get(typeUrl);
    if (!st) {
      this.log(`ignoring response for unsubscribed type ${typeUrl}`);
      return;
    }
    const next = new Map(st.held);
    const changed = new Map<string, string>();
    let error: string | undefined;
    (res.resources ?? []).forEach((r, i) => {
      if (error) return;
      const name = r.name ?? '';
      if (!name) { error = `resources[${i}]: resource without a name`; return; }
      // A resource the client no longer wants (unsubscribed meanwhile) is ignored.
      if (st.names && !st.names.has(name)) return;
      if (!r.resource) { error = `resources[${i}] "${name}": no resource body`; return; }
      try {
        const d = decodeAny(r.resource);
        if (d.typeUrl !== typeUrl) {
          error = `resources[${i}] "${name}": type ${d.typeUrl || '(none)'} does not match response type ${typeUrl}`;
          return;
        }
        next.set(name, { version: r.version ?? '', body: d.body });
        changed.set(name, r.version ?? '');
      } catch (e) {
        error = `resources[${i}] "${name}": cannot decode ${typeUrl}: ${(e as Error).message}`;
      }
    });
    const removed = (res.removedResources ?? []).filter((n) => next.delete(n));
    const version = res.systemVersionInfo || nonce;
    if (!error) {
      try {
        const versions = new Map([...next].map(([n, h]) => [n, h.version]));
        error = this.opts.onResponse(typeUrl, [...next.values()].map((h) => h.body), version, { removed, versions });
      } catch (e) {
        error = `internal error applying ${typeUrl}: ${(e as Error).message}`;
      }
    }
    if (error === undefined) {
      st.held = next;
      this.stats.acks++;
      this.sendRequest(typeUrl, st, nonce);
    } else {
      this.stats.nacks++;
      this.log(`NACK ${typeUrl} nonce ${nonce}: ${error}`);
      this.sendRequest(typeUrl, st, nonce, error);
    }
  }
}
