// Test scaffolding: a small but real delta ADS server (DeltaAggregatedResources). Each
// resource's version is a hash of its body; per stream it tracks what the client subscribed
// to and holds, sends only what differs and names removals, and records every request so
// tests can assert on subscribe/unsubscribe, initial_resource_versions, ACKs and NACKs.
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { adsService, packAny, TYPE_URL } from '../../api/xds/protos.js';
import { PUSH_ORDER } from './ads-server.js';

export interface DeltaRequest {
  typeUrl: string;
  resourceNamesSubscribe: string[];
  resourceNamesUnsubscribe: string[];
  initialResourceVersions: Record<string, string>;
  responseNonce: string;
  errorDetail?: { code?: number; message?: string } | null;
  node?: { id?: string } | null;
}

export interface SentResponse {
  typeUrl: string;
  nonce: string;
  names: string[];
  removed: string[];
}

interface Watch {
  wildcard: boolean;
  names: Set<string>;
  held: Map<string, string>;
}

interface Stream {
  call: grpc.ServerDuplexStream<DeltaRequest, unknown>;
  watches: Map<string, Watch>;
}

const WILDCARD_TYPES: ReadonlySet<string> = new Set([TYPE_URL.cluster, TYPE_URL.listener]);

function nameOf(typeUrl: string, body: object): string {
  const b = body as { name?: string; clusterName?: string };
  return (typeUrl === TYPE_URL.clusterLoadAssignment ? b.clusterName : b.name) ?? '';
}

export class TestDeltaAdsServer {
  private readonly server = new grpc.Server();
  private readonly streams = new Set<Stream>();
  /** typeUrl -> name -> { version, body } */
  private readonly state = new Map<string, Map<string, { version: string; body: object }>>();
  private nonce = 0;
  readonly requests: DeltaRequest[] = [];
  readonly sent: SentResponse[] = [];
  port = 0;

  constructor() {
    this.server.addService(adsService().service, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<unknown, unknown>) => call.emit('error', { code: grpc.status.UNIMPLEMENTED }),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaRequest, unknown>) => this.onStream(call),
    });
  }

  async listen(port = 0): Promise<number> {
    this.port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    return this.port;
  }

  /** Replaces the resources of the given types and pushes the differences, in CDS, EDS, LDS, RDS order. */
  setAll(byType: Partial<Record<string, object[]>>): void {
    for (const t of PUSH_ORDER) {
      const bodies = byType[t];
      if (!bodies) continue;
      this.state.set(t, new Map(bodies.map((b) => [nameOf(t, b), { version: createHash('sha256').update(JSON.stringify(b)).digest('hex').slice(0, 12), body: b }])));
    }
    for (const s of this.streams) for (const t of PUSH_ORDER) if (byType[t]) this.send(s, t);
  }

  get streamCount(): number {
    return this.streams.size;
  }

  private onStream(call: grpc.ServerDuplexStream<DeltaRequest, unknown>): void {
    const s: Stream = { call, watches: new Map() };
    this.streams.add(s);
    call.on('data', (raw: Partial<DeltaRequest>) => {
      // proto-loader leaves empty repeated/map fields out.
      const req: DeltaRequest = {
        ...raw, typeUrl: raw.typeUrl ?? '', resourceNamesSubscribe: raw.resourceNamesSubscribe ?? [], resourceNamesUnsubscribe: raw.resourceNamesUnsubscribe ?? [],
        initialResourceVersions: raw.initialResourceVersions ?? {}, responseNonce: raw.responseNonce ?? '',
      };
      this.requests.push(req);
      let w = s.watches.get(req.typeUrl);
      let changed = false;
      const subscribe = req.resourceNamesSubscribe ?? [];
      if (!w) {
        w = { wildcard: WILDCARD_TYPES.has(req.typeUrl) && subscribe.length === 0, names: new Set(), held: new Map(Object.entries(req.initialResourceVersions ?? {})) };
        s.watches.set(req.typeUrl, w);
        changed = true;
      }
      for (const n of subscribe) if (!w.names.has(n)) { w.names.add(n); changed = true; }
      for (const n of req.resourceNamesUnsubscribe ?? []) if (w.names.delete(n)) { w.held.delete(n); changed = true; }
      if (changed) this.send(s, req.typeUrl);
    });
    const drop = (): void => { this.streams.delete(s); };
    call.on('end', () => { drop(); call.end(); });
    call.on('error', drop);
    call.on('cancelled', drop);
  }

  private send(s: Stream, typeUrl: string): void {
    const w = s.watches.get(typeUrl);
    if (!w) return;
    const all = this.state.get(typeUrl) ?? new Map<string, { version: string; body: object }>();
    const wants = (n: string): boolean => w.wildcard || w.names.has(n);
    const resources = [...all].filter(([n, r]) => wants(n) && w.held.get(n) !== r.version);
    const removed = [...w.held.keys()].filter((n) => wants(n) && !all.has(n));
    if (resources.length === 0 && removed.length === 0) return;
    for (const [n, r] of resources) w.held.set(n, r.version);
    for (const n of removed) w.held.delete(n);
    const nonce = String(++this.nonce);
    this.sent.push({ typeUrl, nonce, names: resources.map(([n]) => n), removed });
    s.call.write({
      typeUrl,
      nonce,
      systemVersionInfo: `v${this.nonce}`,
      removedResources: removed,
      // grpc-js (proto-loader) writes Any as { type_url, value }.
      resources: resources.map(([name, r]) => {
        const any = packAny(typeUrl, r.body);
        return { name, version: r.version, resource: { type_url: any.typeUrl, value: any.value } };
      }),
    });
  }

  /** The ACK/NACK request answering a sent response, if it arrived. */
  reply(nonce: string): DeltaRequest | undefined {
    return this.requests.find((r) => r.responseNonce === nonce);
  }

  lastSent(typeUrl: string): SentResponse | undefined {
    return [...this.sent].reverse().find((r) => r.typeUrl === typeUrl);
  }

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
