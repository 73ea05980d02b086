// The ADS server (state of the world), a pump in the go-control-plane sense: it tracks per
// stream what each proxy subscribed to, sent, ACKed and NACKed (Connection), asks the
// generators for the proxy's resources in the current snapshot (through the cache), and
// sends a type only when its bytes for that proxy changed — in the order CDS, EDS, LDS,
// RDS, so a proxy never holds a route to a cluster it has not received. The delta stream
// (DeltaAggregatedResources) shares the generation and cache and keeps its own bookkeeping
// (delta.ts); proxyless gRPC nodes get the proxyless generators (generators/proxyless.ts).
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { adsService } from '../../api/xds/protos.js';
import type { PushContext } from '../model/push-context.js';
import { parseNodeId, resolveProxy } from '../model/proxy.js';
import type { DebounceBurst } from '../model/debounce.js';
import { PilotMetrics } from '../metrics.js';
import { Connection, type DiscoveryRequestLike, type WatchState } from './connection.js';
import { ResourceCache, responseHash, type PackedResource } from './cache.js';
import { GENERATORS, type XdsGenerator } from './generators/index.js';
import { PROXYLESS_GENERATORS, isProxylessType } from './generators/proxyless.js';
import { DeltaWatches, resourceVersion, type DeltaRequestLike, type DeltaWatch } from './delta.js';
import { structToObject, type ProtoStruct } from './struct.js';

interface DiscoveryRequest extends DiscoveryRequestLike { node?: { id?: string; cluster?: string; metadata?: ProtoStruct } }

// google.protobuf.Any comes from protobufjs's built-in descriptors, which keep the proto
// field name `type_url` even when the loader camel-cases everything else.
interface WireAny { type_url: string; value: Buffer }

interface DiscoveryResponse {
  versionInfo: string;
  resources: WireAny[];
  typeUrl: string;
  nonce: string;
}

type AdsStream = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;

interface DeltaDiscoveryRequest extends DeltaRequestLike { node?: DiscoveryRequest['node'] }
interface DeltaDiscoveryResponse {
  systemVersionInfo: string;
  resources: { name: string; version: string; resource: WireAny }[];
  typeUrl: string;
  removedResources: string[];
  nonce: string;
}
type DeltaStream = grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

export interface XdsServerOptions { host?: string; port?: number; metrics?: PilotMetrics }

export interface TypeSyncStatus {
  type: string;
  subscribed: string[] | '*';
  sentVersion?: string;
  sentNonce?: string;
  sentAt?: string;
  resources?: number;
  ackedVersion?: string;
  status: 'PENDING' | 'SENT' | 'ACKED' | 'NACKED';
  lastNack?: { message: string; version: string; at: string };
}

export interface ProxySyncStatus {
  connectionId: string;
  /** `sotw` for StreamAggregatedResources, `delta` for DeltaAggregatedResources. */
  mode: 'sotw' | 'delta';
  proxyless: boolean;
  nodeId?: string;
  peer: string;
  pod?: string;
  connectedAt: string;
  types: Record<string, TypeSyncStatus>;
}

export class XdsServer {
  readonly metrics: PilotMetrics;
  private readonly server = new grpc.Server({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_permit_without_calls': 1 });
  private readonly cache = new ResourceCache();
  private readonly streams = new Map<Connection, AdsStream>();
  private readonly deltaStreams = new Map<Connection, DeltaStream>();
  private push?: PushContext;
  private connCounter = 0;
  private nonceCounter = 0;
  private readonly nonceSalt = randomBytes(3).toString('hex');
  port?: number;

  constructor(private readonly opts: XdsServerOptions = {}) {
    this.metrics = opts.metrics ?? new PilotMetrics();
    this.server.addService(adsService().service, {
      StreamAggregatedResources: (call: AdsStream) => this.onStream(call),
      DeltaAggregatedResources: (call: DeltaStream) => this.onDeltaStream(call),
    });
  }

  start(): Promise<number> {
    const addr = `${this.opts.host ?? '0.0.0.0'}:${this.opts.port ?? 15010}`;
    return new Promise((resolve, reject) => {
      this.server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, port) => {
        if (err) { reject(new Error(`xds server: bind ${addr}: ${err.message}`)); return; }
        this.port = port;
        resolve(port);
      });
    });
  }

  get snapshot(): PushContext | undefined { return this.push; }
  get connectionCount(): number { return this.streams.size + this.deltaStreams.size; }

  /** A new snapshot: push to every proxy the types whose content for it changed. */
  update(push: PushContext, burst?: DebounceBurst): void {
    this.push = push;
    for (const [conn, call] of this.streams) {
      if (!conn.node) continue;
      conn.proxy = resolveProxy(conn.node, push);
      let sent = false;
      for (const gen of generatorsOf(conn)) {
        const w = conn.watches.get(gen.typeUrl);
        if (w && this.send(conn, call, gen, w, false)) sent = true;
      }
      if (sent && burst) this.metrics.convergence.observe((Date.now() - burst.firstEventAt) / 1000);
    }
    for (const [conn, call] of this.deltaStreams) {
      if (!conn.node || !conn.delta) continue;
      conn.proxy = resolveProxy(conn.node, push);
      let sent = false;
      for (const gen of generatorsOf(conn)) {
        const w = conn.delta.watches.get(gen.typeUrl);
        if (w && this.sendDelta(conn, call, gen, w)) sent = true;
      }
      if (sent && burst) this.metrics.convergence.observe((Date.now() - burst.firstEventAt) / 1000);
    }
  }

  syncz(): ProxySyncStatus[] {
    return [...this.streams.keys(), ...this.deltaStreams.keys()].map((conn) => {
      const types: Record<string, TypeSyncStatus> = {};
      const watches: ReadonlyMap<string, WatchState> = conn.delta?.watches ?? conn.watches;
      for (const gen of GENERATORS) {
        const w = watches.get(gen.typeUrl);
        if (w) types[gen.type] = typeStatus(w);
      }
      return {
        connectionId: conn.id, mode: conn.delta ? 'delta' as const : 'sotw' as const, proxyless: conn.proxyless,
        nodeId: conn.node?.id, peer: conn.peer,
        pod: conn.proxy?.pod ? `${conn.proxy.pod.metadata.namespace}/${conn.proxy.pod.metadata.name}` : undefined,
        connectedAt: new Date(conn.connectedAt).toISOString(), types,
      };
    });
  }

  async stop(graceMs = 2_000): Promise<void> {
    for (const call of this.streams.values()) call.end();
    for (const call of this.deltaStreams.values()) call.end();
    this.streams.clear();
    this.deltaStreams.clear();
    this.metrics.connected.set({ version: '0.1.0' }, 0);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { this.server.forceShutdown(); resolve(); }, graceMs);
      this.server.tryShutdown(() => { clearTimeout(timer); resolve(); });
    });
  }

  private onStream(call: AdsStream): void {
    const conn = new Connection(String(++this.connCounter), call.getPeer());
    this.streams.set(conn, call);
    this.serve(conn, call, () => this.streams.delete(conn), (req: DiscoveryRequest) => this.onRequest(conn, call, req));
  }

  private onDeltaStream(call: DeltaStream): void {
    const conn = new Connection(String(++this.connCounter), call.getPeer());
    conn.delta = new DeltaWatches();
    this.deltaStreams.set(conn, call);
    this.serve(conn, call, () => this.deltaStreams.delete(conn), (req: DeltaDiscoveryRequest) => this.onDeltaRequest(conn, call, req));
  }

  /** The stream lifecycle shared by both ADS variants: connected gauge, errors, close. */
  private serve<Req>(conn: Connection, call: grpc.ServerDuplexStream<Req, unknown>, forget: () => void, onRequest: (req: Req) => void): void {
    this.metrics.connected.set({ version: '0.1.0' }, this.connectionCount);
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      forget();
      this.metrics.connected.set({ version: '0.1.0' }, this.connectionCount);
      if (conn.node) console.log(`pilot: xds: ${conn.node.id} disconnected (connection ${conn.id})`);
    };
    call.on('data', (req: Req) => {
      try {
        onRequest(req);
      } catch (e) {
        call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: (e as Error).message });
        close();
      }
    });
    call.on('end', () => { close(); call.end(); });
    call.on('cancelled', close);
    call.on('error', close);
    call.on('close', close);
  }

  /** Envoy and gRPC send the node only on the first request of a stream. */
  private identify(conn: Connection, node: DiscoveryRequest['node'], what: string): void {
    if (conn.node) return;
    const id = node?.id;
    if (!id) throw new Error(`${what}.node.id is required on the first request of a stream`);
    const type = id.split('~')[0];
    conn.proxyless = isProxylessType(type);
    // A proxyless id has Istio's shape with its own type (`proxyless~ip~pod.ns~domain`);
    // it is parsed as a sidecar's and told apart by the connection's proxyless flag.
    const parsed = parseNodeId(conn.proxyless ? ['sidecar', ...id.split('~').slice(1)].join('~') : id, structToObject(node?.metadata));
    conn.node = { ...parsed, id };
    if (this.push) conn.proxy = resolveProxy(conn.node, this.push);
    console.log(`pilot: xds: ${id} connected from ${conn.peer} (connection ${conn.id}${conn.delta ? ', delta' : ''}${conn.proxyless ? ', proxyless' : ''})`);
  }

  private onRequest(conn: Connection, call: AdsStream, req: DiscoveryRequest): void {
    this.identify(conn, req.node, 'DiscoveryRequest');
    const node = conn.node as NonNullable<Connection['node']>;
    const gen = generatorsOf(conn).find((g) => g.typeUrl === req.typeUrl);
    if (!gen) {
      console.warn(`pilot: xds: ${node.id} asked for unsupported type ${req.typeUrl}; ignored`);
      return;
    }
    const outcome = conn.onRequest(req, gen.wildcard);
    switch (outcome.kind) {
      case 'subscribe':
        this.send(conn, call, gen, conn.watches.get(gen.typeUrl) as WatchState, true);
        break;
      case 'nack':
        this.metrics.rejects.inc({ type: gen.type });
        if (!outcome.repeated) console.warn(`pilot: xds: ${node.id} rejected ${gen.type} version ${req.versionInfo ?? ''}: ${outcome.message}`);
        break;
      default:
        break;
    }
  }

  private onDeltaRequest(conn: Connection, call: DeltaStream, req: DeltaDiscoveryRequest): void {
    this.identify(conn, req.node, 'DeltaDiscoveryRequest');
    const node = conn.node as NonNullable<Connection['node']>;
    const delta = conn.delta as DeltaWatches;
    const gen = generatorsOf(conn).find((g) => g.typeUrl === req.typeUrl);
    if (!gen) {
      console.warn(`pilot: xds: ${node.id} asked for unsupported type ${req.typeUrl} (delta); ignored`);
      return;
    }
    const outcome = delta.onRequest(req, gen.wildcard);
    if (outcome.kind === 'changed') this.sendDelta(conn, call, gen, delta.watches.get(gen.typeUrl) as DeltaWatch);
    else if (outcome.kind === 'nack') {
      this.metrics.rejects.inc({ type: gen.type });
      if (!outcome.repeated) console.warn(`pilot: xds: ${node.id} rejected ${gen.type} (delta): ${outcome.message}`);
    }
  }

  /** This proxy's resources of a type (cached per proxy class); undefined if generation failed. */
  private generated(push: PushContext, conn: Connection, gen: XdsGenerator): ReadonlyMap<string, PackedResource> | undefined {
    if (!conn.proxy) return undefined;
    try {
      return this.cache.resources(push, gen, conn.proxy);
    } catch (e) {
      // A generator bug must not take the stream down; the next push tries again.
      console.error(`pilot: xds: generating ${gen.type} for ${conn.node?.id}: ${(e as Error).stack ?? e}`);
      return undefined;
    }
  }

  /** Sends what this delta client lacks of a type, and what it must remove; true when sent. */
  private sendDelta(conn: Connection, call: DeltaStream, gen: XdsGenerator, w: DeltaWatch): boolean {
    const push = this.push;
    if (!push || !conn.delta) return false;
    const all = this.generated(push, conn, gen);
    if (!all) return false;
    const { resources, removed } = conn.delta.diff(w, all);
    if (!resources.length && !removed.length) return false;
    const nonce = `${this.nonceSalt}-${++this.nonceCounter}`;
    call.write({
      systemVersionInfo: push.version, typeUrl: gen.typeUrl, removedResources: removed, nonce,
      resources: resources.map((r) => ({ name: r.name, version: resourceVersion(r), resource: { type_url: r.any.typeUrl, value: r.any.value } })),
    });
    conn.delta.recordSent(w, resources, removed);
    const held = [...w.held.keys()].sort();
    w.sent = { version: push.version, nonce, hash: responseHash(resources), names: held, at: Date.now(), pushVersion: push.version };
    this.metrics.pushes.inc({ type: gen.type });
    return true;
  }

  /** Sends a type's resources for this proxy if forced or changed; true when sent. */
  private send(conn: Connection, call: AdsStream, gen: XdsGenerator, w: WatchState, force: boolean): boolean {
    const push = this.push;
    if (!push) return false; // answered once the first snapshot exists
    const all = this.generated(push, conn, gen);
    if (!all) return false;
    const resources = w.wildcard ? [...all.values()] : w.names.flatMap((n) => { const r = all.get(n); return r ? [r] : []; });
    const hash = responseHash(resources);
    if (!force && w.sent?.hash === hash) return false;
    const version = `${push.version}-${hash.slice(0, 8)}`;
    const nonce = `${this.nonceSalt}-${++this.nonceCounter}`;
    call.write({ versionInfo: version, resources: resources.map((r) => ({ type_url: r.any.typeUrl, value: r.any.value })), typeUrl: gen.typeUrl, nonce });
    conn.recordSent(gen.typeUrl, { version, nonce, hash, names: resources.map((r) => r.name), at: Date.now(), pushVersion: push.version });
    this.metrics.pushes.inc({ type: gen.type });
    return true;
  }
}

function generatorsOf(conn: Connection): readonly XdsGenerator[] {
  return conn.proxyless ? PROXYLESS_GENERATORS : GENERATORS;
}

function typeStatus(w: WatchState): TypeSyncStatus {
  let status: TypeSyncStatus['status'] = 'PENDING';
  if (w.sent) {
    if (w.lastNack?.nonce === w.sent.nonce) status = 'NACKED';
    else if (w.ackedVersion === w.sent.version) status = 'ACKED';
    else status = 'SENT';
  }
  return {
    type: w.typeUrl,
    subscribed: w.wildcard ? '*' : w.names,
    sentVersion: w.sent?.version, sentNonce: w.sent?.nonce,
    sentAt: w.sent ? new Date(w.sent.at).toISOString() : undefined,
    resources: w.sent?.names.length,
    ackedVersion: w.ackedVersion, status,
    lastNack: w.lastNack ? { message: w.lastNack.message, version: w.lastNack.version, at: new Date(w.lastNack.at).toISOString() } : undefined,
  };
}
