// Turns ADS responses into snapshots: decode + validate every resource of a response,
// then apply all of it or none of it (a NACK keeps the last good config).
import { EventEmitter } from 'node:events';
import { TYPE_URL } from '../../api/xds/protos.js';
import { decodeCluster, type ClusterConfig } from './resources/cluster.js';
import { decodeLoadAssignment, type LoadAssignment } from './resources/endpoint.js';
import type { Obj } from './resources/fields.js';
import type { DeltaDetail } from './xds-transport.js';
import { decodeListener, rdsNames, type ListenerConfig } from './resources/listener.js';
import { decodeRouteConfiguration, type RouteTable } from './resources/route.js';
import { decodeSecret, type TlsSecret } from './resources/secret.js';
import { remoteSdsNames } from './resources/tls-context.js';
import { EMPTY_SNAPSHOT, indexListeners, type ConfigSnapshot, type Versioned, type XdsKind } from './snapshot.js';

/** Envoy's default initial_fetch_timeout: how long a missing resource may hold up readiness. */
const INITIAL_FETCH_TIMEOUT_MS = 15_000;

interface Decoded<T> {
  name: string;
  value?: T;
  errors: string[];
}

const KIND_OF: Record<string, XdsKind> = {
  [TYPE_URL.listener]: 'lds',
  [TYPE_URL.routeConfiguration]: 'rds',
  [TYPE_URL.cluster]: 'cds',
  [TYPE_URL.clusterLoadAssignment]: 'eds',
  [TYPE_URL.secret]: 'sds',
};

export interface XdsConfigEvents {
  change: [ConfigSnapshot];
}

export class XdsConfig extends EventEmitter<XdsConfigEvents> {
  private snapshot: ConfigSnapshot = EMPTY_SNAPSHOT;
  private readonly applied = new Set<XdsKind>();
  private initialized = false;
  private firstConfigAt: number | undefined;
  readonly stats: Record<XdsKind, { updateSuccess: number; updateRejected: number }> = {
    lds: { updateSuccess: 0, updateRejected: 0 },
    rds: { updateSuccess: 0, updateRejected: 0 },
    cds: { updateSuccess: 0, updateRejected: 0 },
    eds: { updateSuccess: 0, updateRejected: 0 },
    sds: { updateSuccess: 0, updateRejected: 0 },
  };

  get current(): ConfigSnapshot {
    return this.snapshot;
  }

  /**
   * Initialized: a first CDS and LDS applied and the listeners they brought warmed (every RDS
   * name has its RouteConfiguration), so a request arriving once ready finds its route instead
   * of a 404 NR. A cluster still waiting for its endpoints does not hold readiness up: it stays
   * warming and is not used until they arrive. Like Envoy's initial_fetch_timeout, a route that
   * never comes stops blocking after a while. Once initialized the proxy stays so: later
   * pushes never take readiness back.
   */
  get ready(): boolean {
    if (this.initialized) return true;
    if (!this.applied.has('cds') || !this.applied.has('lds')) return false;
    this.firstConfigAt ??= Date.now();
    const warmed = this.rdsNames().every((n) => this.snapshot.routes.has(n)) && this.sdsNames().every((n) => this.snapshot.secrets.has(n));
    this.initialized = warmed || Date.now() - this.firstConfigAt >= INITIAL_FETCH_TIMEOUT_MS;
    return this.initialized;
  }

  /** ClusterLoadAssignment names to subscribe to over EDS. */
  edsNames(): string[] {
    const names: string[] = [];
    for (const { value } of this.snapshot.clusters.values()) if (value.edsServiceName) names.push(value.edsServiceName);
    return names;
  }

  /** RouteConfiguration names to subscribe to over RDS. */
  rdsNames(): string[] {
    return [...this.snapshot.listeners.values()].flatMap((l) => rdsNames(l.value));
  }

  /** SDS secret names the listeners' TLS contexts need from the control plane (not `default`/`ROOTCA`). */
  sdsNames(): string[] {
    const names = new Set<string>();
    for (const { value } of this.snapshot.listeners.values()) for (const n of listenerSdsNames(value)) names.add(n);
    return [...names];
  }

  /** Applies one response; returns the NACK message or undefined on success. */
  apply(typeUrl: string, resources: Obj[], version: string, delta?: DeltaDetail): string | undefined {
    const kind = KIND_OF[typeUrl];
    if (!kind) return `unsupported type ${typeUrl}`;
    const error = this.applyKind(kind, resources, version, delta);
    if (error) this.stats[kind].updateRejected++;
    else {
      this.stats[kind].updateSuccess++;
      this.applied.add(kind);
      this.emit('change', this.snapshot);
    }
    return error;
  }

  /**
   * SotW: LDS/CDS responses are the whole set, RDS/EDS update the names they carry. Delta:
   * the transport hands over the type's whole held state, so every type is replaced, and
   * each resource keeps its own version.
   */
  private applyKind(kind: XdsKind, resources: Obj[], version: string, delta?: DeltaDetail): string | undefined {
    const now = new Date();
    const s = this.snapshot;
    switch (kind) {
      case 'lds': {
        const r = decodeAll(resources, decodeListener, 'Listener');
        if (typeof r === 'string') return r;
        // State of the world: listeners not in the response are removed.
        const listeners = versioned<ListenerConfig>(r, version, now, s.listeners, delta);
        const wanted = new Set([...listeners.values()].flatMap((l) => rdsNames(l.value)));
        const routes = new Map([...s.routes].filter(([name]) => wanted.has(name)));
        const wantedSecrets = new Set([...listeners.values()].flatMap((l) => listenerSdsNames(l.value)));
        const secrets = new Map([...s.secrets].filter(([name]) => wantedSecrets.has(name)));
        this.snapshot = { ...s, listeners, listenersByAddress: indexListeners(listeners), routes, secrets, versions: { ...s.versions, lds: version } };
        return undefined;
      }
      case 'cds': {
        const r = decodeAll(resources, decodeCluster, 'Cluster');
        if (typeof r === 'string') return r;
        const clusters = versioned<ClusterConfig>(r, version, now, s.clusters, delta);
        // Assignments stay for clusters that still use them, so an updated cluster keeps serving.
        const wanted = new Set([...clusters.values()].flatMap((c) => (c.value.edsServiceName ? [c.value.edsServiceName] : [])));
        const assignments = new Map([...s.assignments].filter(([name]) => wanted.has(name)));
        this.snapshot = { ...s, clusters, assignments, versions: { ...s.versions, cds: version } };
        return undefined;
      }
      case 'rds': {
        const r = decodeAll(resources, decodeRouteConfiguration, 'RouteConfiguration');
        if (typeof r === 'string') return r;
        // Named resources: a response updates the ones it carries; others keep their last value.
        const routes = delta ? new Map<string, Versioned<RouteTable>>() : new Map(s.routes);
        for (const [name, v] of versioned<RouteTable>(r, version, now, s.routes, delta)) routes.set(name, v);
        this.snapshot = { ...s, routes, versions: { ...s.versions, rds: version } };
        return undefined;
      }
      case 'eds': {
        const r = decodeAll(resources, decodeLoadAssignment, 'ClusterLoadAssignment');
        if (typeof r === 'string') return r;
        const assignments = delta ? new Map<string, Versioned<LoadAssignment>>() : new Map(s.assignments);
        for (const [name, v] of versioned<LoadAssignment>(r, version, now, s.assignments, delta)) assignments.set(name, v);
        this.snapshot = { ...s, assignments, versions: { ...s.versions, eds: version } };
        return undefined;
      }
      case 'sds': {
        const r = decodeAll(resources, decodeSecret, 'Secret');
        if (typeof r === 'string') return r;
        // Named like RDS: a response updates the secrets it carries.
        const secrets = delta ? new Map<string, Versioned<TlsSecret>>() : new Map(s.secrets);
        for (const [name, v] of versioned<TlsSecret>(r, version, now, s.secrets, delta)) secrets.set(name, v);
        this.snapshot = { ...s, secrets, versions: { ...s.versions, sds: version } };
        return undefined;
      }
    }
  }
}

/** The SDS names a listener's TLS filter chains fetch over ADS. */
export function listenerSdsNames(l: ListenerConfig): string[] {
  const chains = l.defaultFilterChain ? [...l.filterChains, l.defaultFilterChain] : l.filterChains;
  return chains.flatMap((c) => (c.tls ? remoteSdsNames(c.tls) : []));
}

interface DecodedResource<T> {
  name: string;
  value: T;
  raw: Obj;
}

function decodeAll<T>(resources: Obj[], decode: (raw: Obj) => Decoded<T>, kind: string): DecodedResource<T>[] | string {
  const errors: string[] = [];
  const out: DecodedResource<T>[] = [];
  const seen = new Set<string>();
  resources.forEach((raw) => {
    const d = decode(raw);
    if (d.errors.length > 0 || d.value === undefined) errors.push(...d.errors);
    else if (seen.has(d.name)) errors.push(`${kind} "${d.name}": duplicate name in one response`);
    else {
      seen.add(d.name);
      out.push({ name: d.name, value: d.value, raw });
    }
  });
  return errors.length > 0 ? errors.join('; ') : out;
}

/** Keeps lastUpdated of resources whose content did not change. */
function versioned<T>(decoded: DecodedResource<T>[], version: string, now: Date, previous: ReadonlyMap<string, Versioned<T>>, delta?: DeltaDetail): Map<string, Versioned<T>> {
  const out = new Map<string, Versioned<T>>();
  for (const d of decoded) {
    const prev = previous.get(d.name);
    const same = prev !== undefined && JSON.stringify(prev.raw) === JSON.stringify(d.raw);
    out.set(d.name, same && prev ? prev : { value: d.value, version: delta?.versions.get(d.name) ?? version, lastUpdated: now, raw: d.raw });
  }
  return out;
}
