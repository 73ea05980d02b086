// A load process of the pilot benchmark: simulated sidecars over the real ADS protocol with
// @grpc/grpc-js, one HTTP/2 connection each (a local subchannel pool, as separate Envoys
// would have). Each subscribes CDS and LDS (wildcard), then EDS for the EDS clusters and RDS
// for the route names it got, and ACKs every response, as Envoy does. Responses are decoded
// only down to the Any bytes; resource bodies are decoded once per distinct version (the
// version carries the content hash) to learn the names to subscribe to.
// IPC with pilot.ts:
//   <- { cmd: 'connect' }   -> { kind: 'synced', at: (ms | null)[] }  (each proxy's 4th type ACKed)
//   <- { cmd: 'mark' }      -> { kind: 'marked' }; then, once every proxy ACKed new EDS and RDS
//                               (or after the timeout): { kind: 'converged', at, extraTypes, check }
//   <- { cmd: 'delta' }     -> { kind: 'delta', served, detail }
// With mode `delta` the proxies use DeltaAggregatedResources instead: wildcard CDS/LDS by an
// empty first subscription, EDS/RDS subscribed and unsubscribed by name as clusters and
// listeners come and go, every response ACKed by its nonce.
// Run only by pilot.ts: node dist/test/bench/pilot-load.js <port> <M> <from> <to> [sotw|delta]
import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { TYPE_URL, unpackAny, xdsRoot_ } from '../../api/xds/protos.js';
import { CHANGED_EP_SERVICE, CHANGED_VS_SERVICE, SERVICE_PORT, fqdnOf, meshPods, nodeId, type BenchPod } from './pilot-mesh.js';

const [port, m, from, to] = process.argv.slice(2, 6).map(Number);
const MODE = process.argv[6] === 'delta' ? 'delta' : 'sotw';
const SYNC_TIMEOUT_MS = Number(process.env.BENCH_PILOT_SYNC_TIMEOUT_MS ?? 120_000);
// Long: with 1000 services one push can block pilot for tens of seconds on this machine.
const CONVERGE_TIMEOUT_MS = Number(process.env.BENCH_PILOT_CONVERGE_TIMEOUT_MS ?? 120_000);
const SVC = '/envoy.service.discovery.v3.AggregatedDiscoveryService/';

interface WireAny { type_url?: string; typeUrl?: string; value: Uint8Array }
interface WireResponse { versionInfo?: string; typeUrl?: string; nonce?: string; resources?: WireAny[] }
interface WireDeltaResponse { systemVersionInfo?: string; typeUrl?: string; nonce?: string; resources?: { name?: string; version?: string; resource?: WireAny }[]; removedResources?: string[] }

const root = xdsRoot_();
const RequestType = root.lookupType('envoy.service.discovery.v3.DiscoveryRequest');
const ResponseType = root.lookupType('envoy.service.discovery.v3.DiscoveryResponse');
const DeltaRequestType = root.lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
const DeltaResponseType = root.lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse');

const encoder = (t: protobuf.Type) => (o: object): Buffer => Buffer.from(t.encode(t.fromObject(o)).finish());
// Decoded only to the Any level: resource bodies stay bytes.
const decoder = (t: protobuf.Type) => (b: Buffer): unknown => t.decode(b);

const Client = grpc.makeGenericClientConstructor({
  StreamAggregatedResources: {
    path: `${SVC}StreamAggregatedResources`, requestStream: true, responseStream: true,
    requestSerialize: encoder(RequestType), requestDeserialize: decoder(RequestType),
    responseSerialize: encoder(ResponseType), responseDeserialize: decoder(ResponseType),
  },
  DeltaAggregatedResources: {
    path: `${SVC}DeltaAggregatedResources`, requestStream: true, responseStream: true,
    requestSerialize: encoder(DeltaRequestType), requestDeserialize: decoder(DeltaRequestType),
    responseSerialize: encoder(DeltaResponseType), responseDeserialize: decoder(DeltaResponseType),
  },
}, 'AggregatedDiscoveryService');

type Stream = grpc.ClientDuplexStream<object, WireResponse>;
const CHANNEL_OPTS = { 'grpc.use_local_subchannel_pool': 1, 'grpc.max_receive_message_length': -1 };

const typeOf = (a: WireAny): string => a.type_url ?? a.typeUrl ?? '';

// Names a response implies (EDS clusters from CDS, route names from LDS), once per version.
const namesMemo = new Map<string, string[]>();
function edsNames(r: WireResponse): string[] {
  const key = `cds|${r.versionInfo}`;
  let names = namesMemo.get(key);
  if (!names) {
    names = (r.resources ?? []).map((a) => unpackAny<{ name?: string; type?: string }>({ typeUrl: typeOf(a), value: a.value }))
      .filter((c) => c.type === 'EDS').map((c) => String(c.name)).sort();
    namesMemo.set(key, names);
  }
  return names;
}
function collectRouteNames(o: unknown, out: Set<string>): void {
  if (Array.isArray(o)) { for (const x of o) collectRouteNames(x, out); return; }
  if (!o || typeof o !== 'object') return;
  for (const [k, v] of Object.entries(o)) {
    if (k === 'routeConfigName' && typeof v === 'string') out.add(v);
    else collectRouteNames(v, out);
  }
}
function rdsNames(r: WireResponse): string[] {
  const key = `lds|${r.versionInfo}`;
  let names = namesMemo.get(key);
  if (!names) {
    const set = new Set<string>();
    for (const a of r.resources ?? []) collectRouteNames(unpackAny({ typeUrl: typeOf(a), value: a.value }), set);
    names = [...set].sort();
    namesMemo.set(key, names);
  }
  return names;
}

/** What proxy 0 of this process received after the change, checked against the change. */
function checkChange(r: WireResponse): string | undefined {
  const objs = (r.resources ?? []).map((a) => unpackAny<Record<string, unknown>>({ typeUrl: typeOf(a), value: a.value }));
  if (r.typeUrl === TYPE_URL.routeConfiguration) {
    const vhName = `${fqdnOf(CHANGED_VS_SERVICE)}:${SERVICE_PORT}`;
    for (const rc of objs as { virtualHosts?: { name: string; routes?: { route?: { weightedClusters?: { clusters: { weight?: number | { value: number } }[] } } }[] }[] }[]) {
      const vh = rc.virtualHosts?.find((v) => v.name === vhName);
      const ws = vh?.routes?.[0]?.route?.weightedClusters?.clusters.map((c) => (typeof c.weight === 'object' ? c.weight.value : c.weight));
      if (ws) return `RDS ${vhName} weights ${ws.join('/')}`;
    }
    return `RDS: no weighted route for ${vhName}`;
  }
  if (r.typeUrl === TYPE_URL.clusterLoadAssignment) {
    const name = `outbound|${SERVICE_PORT}||${fqdnOf(CHANGED_EP_SERVICE)}`;
    const cla = (objs as { clusterName?: string; endpoints?: { lbEndpoints?: unknown[] }[] }[]).find((c) => c.clusterName === name);
    return `EDS ${name} ${(cla?.endpoints ?? []).reduce((n, l) => n + (l.lbEndpoints?.length ?? 0), 0)} endpoints`;
  }
  return undefined;
}

function nodeOf(p: BenchPod): object {
  const str = (s: string) => ({ stringValue: s });
  return {
    id: nodeId(p), cluster: p.labels.app,
    metadata: { fields: {
      NAMESPACE: str(p.namespace), WORKLOAD_NAME: str(p.labels.app), INSTANCE_IPS: str(p.ip),
      LABELS: { structValue: { fields: Object.fromEntries(Object.entries(p.labels).map(([k, v]) => [k, str(v)])) } },
    } },
  };
}

/** Progress shared by both protocols: the initial sync and the ACKs after the change. */
abstract class SimBase {
  protected readonly client: grpc.Client;
  private readonly acked = new Set<string>();
  syncedAt?: number;
  // After the mark: when the proxy ACKed each type.
  changeAcks?: Map<string, number>;
  checks: string[] = [];
  error?: string;

  constructor(protected readonly pod: BenchPod, private readonly checker: boolean, protected readonly onProgress: () => void) {
    this.client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), CHANNEL_OPTS);
  }

  /** Called right after a response of type t was ACKed; `asSotw` builds the checker's view. */
  protected acknowledged(t: string, asSotw: () => WireResponse): void {
    const now = Date.now();
    if (this.changeAcks && !this.changeAcks.has(t)) {
      this.changeAcks.set(t, now);
      if (this.checker) { const c = checkChange(asSotw()); if (c) this.checks.push(c); }
    }
    if (this.syncedAt === undefined) {
      this.acked.add(t);
      if (this.acked.size === 4) { this.syncedAt = now; this.onProgress(); }
    } else if (this.changeAcks) this.onProgress();
  }

  converged(): boolean {
    return !!this.changeAcks?.has(TYPE_URL.clusterLoadAssignment) && this.changeAcks.has(TYPE_URL.routeConfiguration);
  }

  abstract close(): void;
}

class DeltaSimProxy extends SimBase {
  private readonly stream: Stream;
  // Per type: resource name -> the names it implies (EDS clusters for CDS, route names for LDS).
  private readonly held = new Map<string, Map<string, string[]>>();
  private readonly subscribed = new Map<string, Set<string>>();

  constructor(pod: BenchPod, checker: boolean, onProgress: () => void) {
    super(pod, checker, onProgress);
    this.stream = (this.client as unknown as { DeltaAggregatedResources(): Stream }).DeltaAggregatedResources();
    this.stream.on('data', (r: WireDeltaResponse) => this.onResponse(r));
    this.stream.on('error', (e: Error) => { this.error = e.message; this.onProgress(); });
    this.stream.write({ node: nodeOf(pod), typeUrl: TYPE_URL.cluster });
    this.stream.write({ typeUrl: TYPE_URL.listener });
  }

  private onResponse(r: WireDeltaResponse): void {
    const t = r.typeUrl ?? '';
    this.stream.write({ typeUrl: t, responseNonce: r.nonce ?? '' }); // the ACK
    const follow = t === TYPE_URL.cluster ? TYPE_URL.clusterLoadAssignment : t === TYPE_URL.listener ? TYPE_URL.routeConfiguration : undefined;
    if (follow) {
      const held = this.held.get(t) ?? new Map<string, string[]>();
      this.held.set(t, held);
      for (const res of r.resources ?? []) {
        const key = `${t}|${res.name}|${res.version}`;
        let implied = namesMemo.get(key);
        if (!implied) {
          const one: WireResponse = { versionInfo: key, resources: res.resource ? [res.resource] : [] };
          implied = t === TYPE_URL.cluster ? edsNames(one) : rdsNames(one);
          namesMemo.set(key, implied);
        }
        held.set(String(res.name), implied);
      }
      for (const n of r.removedResources ?? []) held.delete(n);
      const want = new Set([...held.values()].flat());
      const have = this.subscribed.get(follow) ?? new Set<string>();
      const add = [...want].filter((n) => !have.has(n));
      const drop = [...have].filter((n) => !want.has(n));
      if (add.length || drop.length || !this.subscribed.has(follow)) {
        this.subscribed.set(follow, want);
        this.stream.write({ typeUrl: follow, resourceNamesSubscribe: add, resourceNamesUnsubscribe: drop });
      }
    }
    this.acknowledged(t, () => ({ typeUrl: t, resources: (r.resources ?? []).flatMap((x) => (x.resource ? [x.resource] : [])) }));
  }

  close(): void { this.stream.cancel(); this.client.close(); }
}

class SimProxy extends SimBase {
  private readonly stream: Stream;
  private names = new Map<string, string[]>();
  private last = new Map<string, { version: string; nonce: string }>();

  constructor(pod: BenchPod, checker: boolean, onProgress: () => void) {
    super(pod, checker, onProgress);
    this.stream = (this.client as unknown as { StreamAggregatedResources(): Stream }).StreamAggregatedResources();
    this.stream.on('data', (r: WireResponse) => this.onResponse(r));
    this.stream.on('error', (e: Error) => { this.error = e.message; this.onProgress(); });
    this.send(TYPE_URL.cluster, [], true);
    this.send(TYPE_URL.listener, []);
  }

  private send(typeUrl: string, names: string[], withNode = false): void {
    const last = this.last.get(typeUrl);
    const req: Record<string, unknown> = { typeUrl, resourceNames: names, versionInfo: last?.version ?? '', responseNonce: last?.nonce ?? '' };
    if (withNode) req.node = nodeOf(this.pod);
    this.stream.write(req);
  }

  private onResponse(r: WireResponse): void {
    const t = r.typeUrl ?? '';
    this.last.set(t, { version: r.versionInfo ?? '', nonce: r.nonce ?? '' });
    this.send(t, this.names.get(t) ?? []); // the ACK
    // New clusters or listeners: (re)subscribe EDS / RDS to what they name.
    const follow = t === TYPE_URL.cluster ? [TYPE_URL.clusterLoadAssignment, edsNames(r)] as const
      : t === TYPE_URL.listener ? [TYPE_URL.routeConfiguration, rdsNames(r)] as const : undefined;
    if (follow) {
      const [ft, names] = follow;
      if ((this.names.get(ft) ?? []).join('\n') !== names.join('\n') || !this.names.has(ft)) {
        this.names.set(ft, names);
        this.send(ft, names);
      }
    }
    this.acknowledged(t, () => r);
  }

  close(): void { this.stream.cancel(); this.client.close(); }
}

const pods = meshPods(m);
const proxies: SimBase[] = [];
let phase: 'idle' | 'sync' | 'change' = 'idle';
let timer: NodeJS.Timeout | undefined;

function progress(): void {
  if (phase === 'sync' && proxies.every((p) => p.syncedAt !== undefined || p.error)) reportSync();
  else if (phase === 'change' && proxies.every((p) => p.converged() || p.error)) reportChange();
}

function reportSync(): void {
  phase = 'idle';
  clearTimeout(timer);
  const errors = proxies.filter((p) => p.error).map((p) => p.error);
  process.send?.({ kind: 'synced', at: proxies.map((p) => p.syncedAt ?? null), errors: errors.slice(0, 3), errorCount: errors.length });
}

function reportChange(): void {
  phase = 'idle';
  clearTimeout(timer);
  const at = proxies.map((p) => (p.converged() ? Math.max(p.changeAcks!.get(TYPE_URL.clusterLoadAssignment)!, p.changeAcks!.get(TYPE_URL.routeConfiguration)!) : null));
  const extraTypes = proxies.reduce((n, p) => n + [...(p.changeAcks?.keys() ?? [])].filter((t) => t !== TYPE_URL.clusterLoadAssignment && t !== TYPE_URL.routeConfiguration).length, 0);
  const errors = proxies.filter((p) => p.error).map((p) => p.error);
  process.send?.({ kind: 'converged', at, extraTypes, check: proxies[0]?.checks ?? [], errors: errors.slice(0, 3), errorCount: errors.length });
}

function probeDelta(): void {
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), CHANNEL_OPTS);
  const stream = (client as unknown as { DeltaAggregatedResources(): Stream }).DeltaAggregatedResources();
  let done = false;
  const finish = (served: boolean, detail: string): void => {
    if (done) return;
    done = true;
    stream.cancel();
    client.close();
    process.send?.({ kind: 'delta', served, detail });
  };
  stream.on('data', () => finish(true, 'answered a CDS wildcard subscription'));
  stream.on('error', (e: Error) => finish(false, e.message));
  const p = pods[0];
  stream.write({ node: { id: nodeId(p) }, typeUrl: TYPE_URL.cluster, resourceNamesSubscribe: ['*'] });
  setTimeout(() => finish(false, 'no answer within 3 s'), 3000);
}

process.on('message', (msg: { cmd?: string }) => {
  if (msg.cmd === 'connect') {
    phase = 'sync';
    timer = setTimeout(reportSync, SYNC_TIMEOUT_MS);
    for (let k = from; k < to; k++) proxies.push(MODE === 'delta' ? new DeltaSimProxy(pods[k % pods.length], k === from, progress) : new SimProxy(pods[k % pods.length], k === from, progress));
  } else if (msg.cmd === 'mark') {
    for (const p of proxies) p.changeAcks = new Map();
    phase = 'change';
    timer = setTimeout(reportChange, CONVERGE_TIMEOUT_MS);
    process.send?.({ kind: 'marked' });
  } else if (msg.cmd === 'delta') {
    probeDelta();
  } else if (msg.cmd === 'close') {
    for (const p of proxies) p.close();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
process.send?.({ kind: 'ready' });
