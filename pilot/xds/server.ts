// The ADS server (state of the world and delta), a pump in the go-control-plane sense: it
// tracks per stream what each proxy subscribed to, sent, ACKed and NACKed (Connection,
// delta.ts), and pushes through a queue (push-queue.ts) with bounded concurrency that
// yields between proxies. A push asks the cache for the proxy class's entry of each type
// and sends, in the order CDS, EDS, LDS, RDS (so a proxy never holds a route to a cluster
// it has not received), only what changed: a type whose entry is unchanged is skipped, a
// proxy holding the previous entry of EDS/RDS gets only the changed resources. Response
// bodies are encoded once per class and subscription and shared (wire.ts); proxyless gRPC
// nodes get the proxyless generators (generators/proxyless.ts).
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { TYPE_URL, adsService, unpackAny } from '../../api/xds/protos.js';
import type { PushContext } from '../model/push-context.js';
import { parseNodeId, resolveProxy } from '../model/proxy.js';
import type { DebounceBurst } from '../model/debounce.js';
import { PilotMetrics } from '../metrics.js';
import { Connection, type DiscoveryRequestLike, type WatchState } from './connection.js';
import { ResourceCache, SubscriptionPool, WILDCARD, type PackedResource, type Selection, type TypeEntry } from './cache.js';
import { GENERATORS, type XdsGenerator } from './generators/index.js';
import { PROXYLESS_GENERATORS, isProxylessType } from './generators/proxyless.js';
import { DeltaWatches, type DeltaRequestLike, type DeltaWatch } from './delta.js';
import { structToObject, type ProtoStruct } from './struct.js';
import { changeScope } from './change-scope.js';
import { PushQueue, type PushQueueOptions } from './push-queue.js';
import { PushRecord, type PushStatusJson } from './push-status.js';
import { deltaResponse, sotwResponse } from './wire.js';
import { configDump } from './config-dump.js';
import { authenticateStream, checkNodeNamespace, secretsRefusal, StreamStatusError, type XdsTokenReviewer } from './authn.js';

interface DiscoveryRequest extends DiscoveryRequestLike { node?: { id?: string; cluster?: string; metadata?: ProtoStruct } }
interface DeltaDiscoveryRequest extends DeltaRequestLike { node?: DiscoveryRequest['node'] }

// Responses are written as ready-encoded bytes (see wire.ts and serviceWithRawResponses).
type AdsStream = grpc.ServerDuplexStream<DiscoveryRequest, Buffer>;
type DeltaStream = grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>;

export interface XdsServerOptions { host?: string; port?: number; metrics?: PilotMetrics; queue?: PushQueueOptions }

export interface TypeSyncStatus {
  type: string;
  subscribed: readonly string[] | '*';
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
  /** The verified caller (TLS port): `<namespace>/<serviceAccount>`. */
  identity?: string;
  /** Why requested gateway credentials were not served. */
  secretsWithheld?: string;
  types: Record<string, TypeSyncStatus>;
}

/** What one push to one proxy wrote: the type URLs and nonces to wait ACKs for. */
interface Written { flushed: Promise<void>[]; nonces: Map<string, string> }

const FLUSH_TIMEOUT_MS = 10_000;

/**
 * The ADS service definition with a response serializer that passes Buffers through, so
 * the server can write pre-encoded responses (objects still go through protobufjs).
 */
function serviceWithRawResponses(): grpc.ServiceDefinition {
  const def = adsService().service as grpc.ServiceDefinition;
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(def)) {
    const ser = m.responseSerialize;
    out[name] = { ...m, responseSerialize: (v: unknown) => (Buffer.isBuffer(v) ? v : ser(v)) };
  }
  return out as grpc.ServiceDefinition;
}

export class XdsServer {
  readonly metrics: PilotMetrics;
  private readonly server = new grpc.Server({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_permit_without_calls': 1 });
  private readonly cache = new ResourceCache();
  private readonly pool = new SubscriptionPool();
  private readonly streams = new Map<Connection, AdsStream>();
  private readonly deltaStreams = new Map<Connection, DeltaStream>();
  private readonly queue: PushQueue<Connection>;
  private readonly flushTimeoutMs: number;
  /** Per connection: the push record and nonces whose ACKs complete its convergence. */
  private readonly awaiting = new Map<Connection, { nonces: Map<string, string>; settle: (ok: boolean) => void }>();
  private push?: PushContext;
  private record?: PushRecord;
  /** Connections queued by a snapshot push (not only by their own subscription). */
  private readonly pushRecords = new Map<Connection, PushRecord>();
  private connCounter = 0;
  private nonceCounter = 0;
  private readonly nonceSalt = randomBytes(3).toString('hex');
  port?: number;

  constructor(private readonly opts: XdsServerOptions = {}) {
    this.metrics = opts.metrics ?? new PilotMetrics();
    this.flushTimeoutMs = opts.queue?.flushTimeoutMs ?? FLUSH_TIMEOUT_MS;
    this.queue = new PushQueue((conn) => this.pushTo(conn), opts.queue);
    this.server.addService(serviceWithRawResponses(), {
      StreamAggregatedResources: (call: AdsStream) => this.onStream(call),
      DeltaAggregatedResources: (call: DeltaStream) => this.onDeltaStream(call),
    });
  }

  /**
   * Serves the same ADS services on another server (pilot's TLS port 15012, shared with the
   * CA): each stream must carry a ServiceAccount token, reviewed before its first request
   * is handled, whose namespace must be the node's.
   */
  serveAuthenticated(server: grpc.Server, reviewer: XdsTokenReviewer): void {
    server.addService(serviceWithRawResponses(), {
      StreamAggregatedResources: (call: AdsStream) => this.onStream(call, reviewer),
      DeltaAggregatedResources: (call: DeltaStream) => this.onDeltaStream(call, reviewer),
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

  /**
   * A new snapshot: every connected proxy is queued; its push sends the types whose
   * content for it changed. Returns at once; `pushed()` resolves when the queue drained.
   */
  update(push: PushContext, burst?: DebounceBurst): void {
    const previous = this.push;
    this.push = push;
    const scope = changeScope(previous, push);
    this.cache.advance(push, scope);
    const encodedBefore = this.cache.encoded;
    const record = new PushRecord(push.version, {
      kinds: [...scope.kinds].sort(), events: burst?.events ?? 1, firstEventAt: burst?.firstEventAt ?? Date.now(), full: scope.full,
    }, this.metrics);
    this.record = record;
    for (const conn of [...this.streams.keys(), ...this.deltaStreams.keys()]) {
      if (!conn.node) continue;
      record.proxies++;
      this.pushRecords.set(conn, record);
      this.queue.enqueue(conn, conn.fresh);
    }
    void this.queue.idle().then(() => {
      if (this.record !== record) return;
      record.encodedResources = this.cache.encoded - encodedBefore;
      record.written();
    });
  }

  /** Resolves once every queued push has been written (for tests and the benchmark). */
  pushed(): Promise<void> { return this.queue.idle(); }

  pushStatus(): PushStatusJson | undefined { return this.record?.json(); }

  syncz(): ProxySyncStatus[] {
    return this.connections().map((conn) => {
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
        connectedAt: new Date(conn.connectedAt).toISOString(),
        identity: conn.identity ? `${conn.identity.namespace}/${conn.identity.serviceAccount}` : undefined,
        secretsWithheld: conn.secretsWithheld, types,
      };
    });
  }

  /**
   * What pilot last sent a proxy, in Envoy's ConfigDump shape. `proxyID` is the node id,
   * `<pod>.<namespace>` or `<namespace>/<pod>`; undefined when no such proxy is connected.
   */
  configDump(proxyID: string): unknown {
    const conn = this.connections().find((c) => {
      const n = c.node;
      return n && (n.id === proxyID || `${n.podName}.${n.namespace}` === proxyID || `${n.namespace}/${n.podName}` === proxyID);
    });
    if (!conn) return undefined;
    const held = (typeUrl: string): { version: string; at: number; resources: object[] } | undefined => {
      const w = (conn.delta?.watches ?? conn.watches).get(typeUrl) as DeltaWatch | WatchState | undefined;
      if (!w?.sent) return undefined;
      const entry = 'heldEntry' in w ? w.heldEntry : w.sent.entry;
      const sub = 'heldEntry' in w ? w.heldSub : w.sent.sub;
      const rs: readonly PackedResource[] = entry ? entry.select(sub ?? WILDCARD).resources : [];
      return { version: w.sent.version, at: w.sent.at, resources: rs.map((r) => ({ '@type': r.any.typeUrl, ...unpackAny(r.any) })) };
    };
    return configDump(held);
  }

  async stop(graceMs = 2_000): Promise<void> {
    this.queue.stop();
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

  private connections(): Connection[] { return [...this.streams.keys(), ...this.deltaStreams.keys()]; }

  private onStream(call: AdsStream, reviewer?: XdsTokenReviewer): void {
    const conn = new Connection(String(++this.connCounter), call.getPeer());
    this.streams.set(conn, call);
    this.serve(conn, call, () => this.streams.delete(conn), (req: DiscoveryRequest) => this.onRequest(conn, req), reviewer);
  }

  private onDeltaStream(call: DeltaStream, reviewer?: XdsTokenReviewer): void {
    const conn = new Connection(String(++this.connCounter), call.getPeer());
    conn.delta = new DeltaWatches();
    this.deltaStreams.set(conn, call);
    this.serve(conn, call, () => this.deltaStreams.delete(conn), (req: DeltaDiscoveryRequest) => this.onDeltaRequest(conn, req), reviewer);
  }

  /**
   * The stream lifecycle shared by both ADS variants: connected gauge, errors, close. With a
   * reviewer (TLS port), requests wait until the caller's token is reviewed; a refused
   * caller's stream ends with UNAUTHENTICATED.
   */
  private serve<Req>(conn: Connection, call: grpc.ServerDuplexStream<Req, Buffer>, forget: () => void, onRequest: (req: Req) => void, reviewer?: XdsTokenReviewer): void {
    this.metrics.connected.set({ version: '0.1.0' }, this.connectionCount);
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      forget();
      this.queue.remove(conn);
      this.awaiting.delete(conn);
      this.pushRecords.delete(conn);
      this.metrics.connected.set({ version: '0.1.0' }, this.connectionCount);
      if (conn.node) console.log(`pilot: xds: ${conn.node.id} disconnected (connection ${conn.id})`);
    };
    const fail = (e: unknown): void => {
      const code = e instanceof StreamStatusError ? e.code : grpc.status.INVALID_ARGUMENT;
      if (e instanceof StreamStatusError) console.warn(`pilot: xds: connection ${conn.id} from ${conn.peer} refused: ${e.message}`);
      call.emit('error', { code, details: (e as Error).message });
      close();
    };
    const handle = (req: Req): void => {
      if (closed) return;
      try { onRequest(req); } catch (e) { fail(e); }
    };
    // Requests that arrive while the token is under review wait for it.
    let waiting: Req[] | undefined;
    if (reviewer) {
      waiting = [];
      authenticateStream(call.metadata, reviewer).then((identity) => {
        conn.identity = identity;
        const queued = waiting ?? [];
        waiting = undefined;
        for (const req of queued) handle(req);
      }, fail);
    }
    call.on('data', (req: Req) => {
      if (waiting) waiting.push(req);
      else handle(req);
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
    if (conn.identity) checkNodeNamespace(conn.identity, id, parsed.namespace);
    conn.node = { ...parsed, id };
    const via = conn.identity ? `, TLS as ${conn.identity.namespace}/${conn.identity.serviceAccount}` : '';
    console.log(`pilot: xds: ${id} connected from ${conn.peer} (connection ${conn.id}${conn.delta ? ', delta' : ''}${conn.proxyless ? ', proxyless' : ''}${via})`);
  }

  private onRequest(conn: Connection, req: DiscoveryRequest): void {
    this.identify(conn, req.node, 'DiscoveryRequest');
    const node = conn.node as NonNullable<Connection['node']>;
    const gen = generatorsOf(conn).find((g) => g.typeUrl === req.typeUrl);
    if (!gen) {
      console.warn(`pilot: xds: ${node.id} asked for unsupported type ${req.typeUrl}; ignored`);
      return;
    }
    const outcome = conn.onRequest(req, gen.wildcard, this.pool);
    if (outcome.kind === 'ack' || outcome.kind === 'subscribe') this.acked(conn, gen.typeUrl, req.responseNonce, true);
    switch (outcome.kind) {
      case 'subscribe':
        conn.forced.add(gen.typeUrl);
        this.queue.enqueue(conn, conn.fresh);
        break;
      case 'nack':
        this.acked(conn, gen.typeUrl, req.responseNonce, false);
        this.metrics.rejects.inc({ type: gen.type });
        if (!outcome.repeated) console.warn(`pilot: xds: ${node.id} rejected ${gen.type} version ${req.versionInfo ?? ''}: ${outcome.message}`);
        break;
      default:
        break;
    }
  }

  private onDeltaRequest(conn: Connection, req: DeltaDiscoveryRequest): void {
    this.identify(conn, req.node, 'DeltaDiscoveryRequest');
    const node = conn.node as NonNullable<Connection['node']>;
    const delta = conn.delta as DeltaWatches;
    const gen = generatorsOf(conn).find((g) => g.typeUrl === req.typeUrl);
    if (!gen) {
      console.warn(`pilot: xds: ${node.id} asked for unsupported type ${req.typeUrl} (delta); ignored`);
      return;
    }
    const outcome = delta.onRequest(req, gen.wildcard, this.pool);
    const w = delta.watches.get(gen.typeUrl);
    const nacked = outcome.kind === 'nack' || (!!req.errorDetail && (!!req.errorDetail.message || !!req.errorDetail.code));
    this.acked(conn, gen.typeUrl, req.responseNonce, !nacked);
    if (outcome.kind === 'changed') {
      if (w && !w.sent) conn.forced.add(gen.typeUrl);
      this.queue.enqueue(conn, conn.fresh);
    } else if (outcome.kind === 'nack') {
      this.metrics.rejects.inc({ type: gen.type });
      if (!outcome.repeated) console.warn(`pilot: xds: ${node.id} rejected ${gen.type} (delta): ${outcome.message}`);
    }
  }

  /** An ACK/NACK of a response a snapshot push is waiting for. */
  private acked(conn: Connection, typeUrl: string, nonce: string | undefined, ok: boolean): void {
    const a = this.awaiting.get(conn);
    if (!a || !nonce || a.nonces.get(typeUrl) !== nonce) return;
    if (!ok) { this.awaiting.delete(conn); a.settle(false); return; }
    a.nonces.delete(typeUrl);
    if (!a.nonces.size) { this.awaiting.delete(conn); a.settle(true); }
  }

  /** One queued push: every watched type, in push order; resolves when written out. */
  private async pushTo(conn: Connection): Promise<void> {
    const push = this.push;
    const call = conn.delta ? this.deltaStreams.get(conn) : this.streams.get(conn);
    if (!push || !conn.node || !call) return;
    if (conn.proxyPushVersion !== push.version || !conn.proxy) {
      conn.proxy = resolveProxy(conn.node, push);
      conn.proxyPushVersion = push.version;
    }
    const written: Written = { flushed: [], nonces: new Map() };
    for (const gen of generatorsOf(conn)) {
      const force = conn.forced.delete(gen.typeUrl);
      if (gen.type === 'sds' && !this.mayReadSecrets(conn)) continue;
      if (conn.delta) {
        const w = conn.delta.watches.get(gen.typeUrl);
        if (w) this.sendDelta(push, conn, call as DeltaStream, gen, w, written);
      } else {
        const w = conn.watches.get(gen.typeUrl);
        if (w) this.send(push, conn, call as AdsStream, gen, w, force, written);
      }
    }
    conn.fresh = false;
    const record = this.pushRecords.get(conn);
    this.pushRecords.delete(conn);
    if (written.nonces.size && record && record.version === push.version) {
      this.awaiting.set(conn, { nonces: written.nonces, settle: record.awaiting() });
    }
    if (!written.flushed.length) return;
    let timer: NodeJS.Timeout | undefined;
    const t0 = Date.now();
    const flushed = await Promise.race([
      Promise.all(written.flushed).then(() => true),
      new Promise<boolean>((r) => { timer = setTimeout(() => r(false), this.flushTimeoutMs); }),
    ]);
    clearTimeout(timer);
    if (!flushed) console.warn(`pilot: xds: ${conn.node.id}: push not flushed within ${Date.now() - t0} ms (a slow or stuck client); its slot is freed`);
  }

  /**
   * Gateway credentials (private keys) go only to a caller authenticated on the TLS port
   * whose namespace is the gateway's; otherwise none are sent, and the reason is warned
   * once per connection and shown in /debug/syncz.
   */
  private mayReadSecrets(conn: Connection): boolean {
    const refusal = secretsRefusal(conn.identity, conn.proxy?.namespace ?? conn.node?.namespace ?? '');
    if (!refusal) return true;
    const w = conn.delta?.watches.get(TYPE_URL.secret) ?? conn.watches.get(TYPE_URL.secret);
    if (w && !conn.secretsWithheld) {
      conn.secretsWithheld = refusal;
      console.warn(`pilot: xds: ${conn.node?.id} (connection ${conn.id}) asked for gateway credentials; none served: ${refusal}`);
    }
    return false;
  }

  /** The proxy class's entry of a type; undefined if generation failed. */
  private entryFor(push: PushContext, conn: Connection, gen: XdsGenerator): TypeEntry | undefined {
    if (!conn.proxy) return undefined;
    try {
      return this.cache.entry(push, gen, conn.proxy);
    } catch (e) {
      // A generator bug must not take the stream down; the next push tries again.
      console.error(`pilot: xds: generating ${gen.type} for ${conn.node?.id}: ${(e as Error).stack ?? e}`);
      return undefined;
    }
  }

  private nextNonce(): string { return `${this.nonceSalt}-${++this.nonceCounter}`; }

  /** The selection's shared response bytes, or a private copy if this proxy just got them. */
  private wire(sel: Selection, w: WatchState, key: string, encode: (nonce: string) => Buffer): { nonce: string; bytes: Buffer } {
    const shared = sel.shared(key, () => this.nextNonce(), encode);
    if (w.sent?.nonce !== shared.nonce) return shared;
    const nonce = this.nextNonce();
    return { nonce, bytes: encode(nonce) };
  }

  private write(call: grpc.ServerDuplexStream<unknown, Buffer>, bytes: Buffer, written: Written): void {
    written.flushed.push(new Promise((resolve) => { call.write(bytes, () => resolve()); }));
  }

  /** Sends what this delta client lacks of a type, and what it must remove. */
  private sendDelta(push: PushContext, conn: Connection, call: DeltaStream, gen: XdsGenerator, w: DeltaWatch, written: Written): void {
    const delta = conn.delta as DeltaWatches;
    const entry = this.entryFor(push, conn, gen);
    if (!entry) return;
    const sel = delta.diff(w, entry);
    delta.recordSent(w, entry);
    if (sel.empty) return;
    const encode = (n: string): Buffer => deltaResponse(sel.deltaBody(), push.version, gen.typeUrl, n);
    const { nonce, bytes } = this.wire(sel, w, `${push.version}|${gen.typeUrl}`, encode);
    this.write(call, bytes, written);
    w.sent = { version: push.version, nonce, hash: sel.hash, at: Date.now(), pushVersion: push.version, entry, sub: w.sub, count: sel.resources.length };
    written.nonces.set(gen.typeUrl, nonce);
    this.counted(gen, sel.resources.length, push);
  }

  /**
   * Sends a type's resources for this proxy if forced or changed. A proxy that holds the
   * previous entry of a named type (EDS, RDS) gets only the changed resources: SotW
   * clients keep named resources a response leaves out.
   */
  private send(push: PushContext, conn: Connection, call: AdsStream, gen: XdsGenerator, w: WatchState, force: boolean, written: Written): void {
    const entry = this.entryFor(push, conn, gen);
    if (!entry) return;
    const sent = w.sent;
    if (!force && sent?.entry === entry && sent.sub === w.sub) return;
    const full = entry.select(w.sub);
    let sel = full;
    if (!force && sent && sent.hash === full.hash) { sent.entry = entry; sent.sub = w.sub; return; }
    if (!force && !gen.wildcard && sent?.entry && sent.entry === entry.base && sent.sub === w.sub) {
      sel = entry.changesSinceBase(w.sub);
      if (!sel.resources.length) { sent.entry = entry; sent.hash = full.hash; return; }
    }
    const version = `${push.version}-${full.hash.slice(0, 8)}`;
    const encode = (n: string): Buffer => sotwResponse(sel.sotwBody(), version, gen.typeUrl, n);
    const { nonce, bytes } = this.wire(sel, w, `${version}|${gen.typeUrl}`, encode);
    this.write(call, bytes, written);
    w.sent = { version, nonce, hash: full.hash, at: Date.now(), pushVersion: push.version, entry, sub: w.sub, count: sel.resources.length };
    written.nonces.set(gen.typeUrl, nonce);
    this.counted(gen, sel.resources.length, push);
  }

  private counted(gen: XdsGenerator, resources: number, push: PushContext): void {
    this.metrics.pushes.inc({ type: gen.type });
    if (this.record?.version === push.version) this.record.sent(gen.type, resources);
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
  const held = w.sent?.entry ? w.sent.entry.select(w.sent.sub ?? WILDCARD).resources.length : undefined;
  return {
    type: w.typeUrl,
    subscribed: w.sub.names ?? '*',
    sentVersion: w.sent?.version, sentNonce: w.sent?.nonce,
    sentAt: w.sent ? new Date(w.sent.at).toISOString() : undefined,
    resources: held,
    ackedVersion: w.ackedVersion, status,
    lastNack: w.lastNack ? { message: w.lastNack.message, version: w.lastNack.version, at: new Date(w.lastNack.at).toISOString() } : undefined,
  };
}
