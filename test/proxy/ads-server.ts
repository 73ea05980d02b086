// Test scaffolding: a small but real ADS (state-of-the-world) server. Tests set resources
// per type; the server pushes them in Istio's order (CDS, EDS, LDS, RDS) and records every
// DiscoveryRequest so tests can assert on ACKs and NACKs.
import * as grpc from '@grpc/grpc-js';
import { adsService, packAny, TYPE_URL } from '../../api/xds/protos.js';

export interface RecordedRequest {
  typeUrl: string;
  versionInfo: string;
  responseNonce: string;
  resourceNames: string[];
  errorDetail?: { code?: number; message?: string };
  node?: { id?: string; metadata?: unknown };
}

type Resource = { name: string; body: object };

interface TypeResources {
  version: string;
  resources: Resource[];
}

interface StreamState {
  call: grpc.ServerDuplexStream<RecordedRequest, unknown>;
  subscribed: Map<string, string[]>;
  sentVersion: Map<string, string>;
  lastNonce: Map<string, string>;
}

export const PUSH_ORDER = [TYPE_URL.cluster, TYPE_URL.clusterLoadAssignment, TYPE_URL.listener, TYPE_URL.routeConfiguration];
const NAMED_TYPES: ReadonlySet<string> = new Set([TYPE_URL.clusterLoadAssignment, TYPE_URL.routeConfiguration]);

function resourceName(typeUrl: string, body: object): string {
  const b = body as { name?: string; clusterName?: string };
  return (typeUrl === TYPE_URL.clusterLoadAssignment ? b.clusterName : b.name) ?? '';
}

export class TestAdsServer {
  private readonly server = new grpc.Server();
  private readonly streams = new Set<StreamState>();
  private readonly state = new Map<string, TypeResources>();
  private nonce = 0;
  readonly requests: RecordedRequest[] = [];
  port = 0;

  constructor() {
    this.server.addService(adsService().service, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<RecordedRequest, unknown>) => this.onStream(call),
    });
  }

  async listen(host = '127.0.0.1', port = 0): Promise<number> {
    this.port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    return this.port;
  }

  /** Replaces all resources of a type (version applies to the whole set) and pushes. */
  set(typeUrl: string, version: string, bodies: object[]): void {
    this.state.set(typeUrl, { version, resources: bodies.map((body) => ({ name: resourceName(typeUrl, body), body })) });
    for (const s of this.streams) this.send(s, typeUrl);
  }

  /** Sets several types at once and pushes them in CDS, EDS, LDS, RDS order. */
  setAll(version: string, byType: Partial<Record<string, object[]>>): void {
    for (const t of PUSH_ORDER) {
      const bodies = byType[t];
      if (bodies) this.state.set(t, { version, resources: bodies.map((body) => ({ name: resourceName(t, body), body })) });
    }
    for (const s of this.streams) for (const t of PUSH_ORDER) if (byType[t]) this.send(s, t);
  }

  private onStream(call: grpc.ServerDuplexStream<RecordedRequest, unknown>): void {
    const s: StreamState = { call, subscribed: new Map(), sentVersion: new Map(), lastNonce: new Map() };
    this.streams.add(s);
    call.on('data', (req: RecordedRequest) => {
      this.requests.push(req);
      const names = [...(req.resourceNames ?? [])].sort();
      const prevNames = s.subscribed.get(req.typeUrl);
      s.subscribed.set(req.typeUrl, names);
      const changed = prevNames === undefined || JSON.stringify(prevNames) !== JSON.stringify(names);
      // ACKs and NACKs of the current version need no answer; new or changed subscriptions do.
      if (changed) this.send(s, req.typeUrl);
    });
    const drop = (): void => { this.streams.delete(s); };
    call.on('end', () => { drop(); call.end(); });
    call.on('error', drop);
    call.on('cancelled', drop);
  }

  private send(s: StreamState, typeUrl: string): void {
    const names = s.subscribed.get(typeUrl);
    const st = this.state.get(typeUrl);
    if (names === undefined || !st) return;
    let resources = st.resources;
    if (NAMED_TYPES.has(typeUrl)) resources = resources.filter((r) => names.includes(r.name));
    const nonce = String(++this.nonce);
    s.sentVersion.set(typeUrl, st.version);
    s.lastNonce.set(typeUrl, nonce);
    s.call.write({
      versionInfo: st.version,
      typeUrl,
      nonce,
      // grpc-js (proto-loader) writes Any as { type_url, value }: packAny's camelCase typeUrl would be dropped.
      resources: resources.map((r) => {
        const any = packAny(typeUrl, r.body);
        return { type_url: any.typeUrl, value: any.value };
      }),
    });
  }

  /** Requests for a type carrying this version and no error (an ACK or a reconnect's initial request). */
  acked(typeUrl: string, version: string): boolean {
    return this.requests.some((r) => r.typeUrl === typeUrl && r.versionInfo === version && !r.errorDetail && r.responseNonce !== '');
  }

  nacks(typeUrl: string): RecordedRequest[] {
    return this.requests.filter((r) => r.typeUrl === typeUrl && r.errorDetail);
  }

  /** Ends every open stream (the proxy should reconnect). */
  dropStreams(): void {
    for (const s of this.streams) s.call.end();
    this.streams.clear();
  }

  async close(): Promise<void> {
    this.dropStreams();
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    this.server.forceShutdown();
  }
}
