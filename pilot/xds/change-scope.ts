// What a new snapshot changed relative to the previous one, so the cache regenerates only
// the xDS types (and, for endpoints, only the resources) the change can affect, and only
// for the proxy classes it can affect: an endpoint change re-encodes the
// ClusterLoadAssignments of that service only; a VirtualService change leaves clusters and
// endpoints alone; a Gateway change reaches the gateway proxies it selects, a Sidecar the
// proxies it applies to, a ServiceEntry the proxies that can see (or route to) its hosts.
// Objects are compared by what pilot reads of them (config-view.ts), so a status or
// metadata-only update changes nothing. Anything not understood here (a kind added later,
// a non-list input) means "everything changed".
import type { PushContext } from '../model/push-context.js';
import type { Proxy } from '../model/proxy.js';
import type { Gateway, ServiceEntry, Sidecar, VirtualService } from '../../api/istio/index.js';
import { viewOf } from '../model/config-view.js';
import { appliesToMesh } from '../model/istio-config.js';
import { hostMatches } from '../model/hosts.js';
import { sidecarFor, sidecarScope } from '../model/sidecar-scope.js';
import { parseOutboundClusterName } from './generators/names.js';
import type { XdsTypeName } from './generators/index.js';
import { DESTINATION_READINESS, destinationReadinessChanged } from './readiness-change.js';

export interface ChangeScope {
  /** Everything may have changed (first snapshot, unknown kind). */
  full: boolean;
  /** Input kinds (ConfigInputs keys) with an added, removed or changed object. */
  kinds: ReadonlySet<string>;
  /** When only endpoints/pods changed: the services whose endpoints differ. */
  endpointsOf?: ReadonlySet<string>;
  /**
   * Kinds whose change reaches only some proxies: whether it reaches a proxy's class (a
   * function of what the class keys hold: type, namespace, labels, applicable Sidecar).
   */
  reaches?: ReadonlyMap<string, (proxy: Proxy, push: PushContext) => boolean>;
}

export const FULL_SCOPE: ChangeScope = { full: true, kinds: new Set() };

// The inputs each type's output reads. CDS reads pods/endpoints too: the SAN list of a
// cluster names the service accounts running the service; and PeerAuthentications (a
// namespace with mTLS DISABLE gets no auto mTLS). LDS reads the security policies and the
// pod labels their selectors match (virtualInbound's chains and RBAC filters).
// Gateways shape only the gateway proxies' listeners and routes (a gateway's clusters are
// the mesh's outbound ones); ServiceEntries and Sidecars every type (entries are services;
// a Sidecar scopes what a proxy sees). Routes and TCP listeners also read whether routed
// destinations have ready endpoints (readiness-change.ts), a kind derived from endpoint changes.
const DEPENDS: Record<XdsTypeName, readonly string[]> = {
  cds: ['namespaces', 'services', 'endpoints', 'pods', 'virtualServices', 'destinationRules', 'peerAuthentications', 'serviceEntries', 'sidecars'],
  eds: ['namespaces', 'services', 'endpoints', 'pods', 'virtualServices', 'destinationRules', 'serviceEntries', 'sidecars'],
  lds: ['namespaces', 'services', 'pods', 'virtualServices', 'destinationRules', 'peerAuthentications', 'authorizationPolicies', 'secrets', 'gateways', 'serviceEntries', 'sidecars', DESTINATION_READINESS],
  rds: ['namespaces', 'services', 'virtualServices', 'destinationRules', 'gateways', 'serviceEntries', 'sidecars', DESTINATION_READINESS],
  // Gateway listeners leave out servers whose Secret is missing (LDS reads secrets too).
  sds: ['secrets'],
};
const KNOWN = new Set(Object.values(DEPENDS).flat());
const ENDPOINT_KINDS = new Set(['endpoints', 'pods']);

/** Whether a type's output is the same in both snapshots (for every proxy class). */
export function typeUnaffected(scope: ChangeScope, type: string): boolean {
  if (scope.full) return false;
  const deps = DEPENDS[type as XdsTypeName];
  if (!deps) return false;
  return deps.every((k) => !scope.kinds.has(k));
}

/**
 * Whether a proxy class's entry of a type is the same in both snapshots: no kind the type
 * reads changed, or every changed kind provably does not reach this proxy's class.
 */
export function entryUnaffected(scope: ChangeScope, type: string, proxy: Proxy, push: PushContext): boolean {
  if (scope.full) return false;
  const deps = DEPENDS[type as XdsTypeName];
  if (!deps) return false;
  for (const k of scope.kinds) {
    if (!deps.includes(k)) continue;
    const reaches = scope.reaches?.get(k);
    if (!reaches || reaches(proxy, push)) return false;
  }
  return true;
}

/** Whether a resource's encoded bytes from the previous snapshot can be kept. */
export function resourceUnaffected(scope: ChangeScope, type: string, name: string): boolean {
  if (typeUnaffected(scope, type)) return true;
  if (scope.full || type !== 'eds' || !scope.endpointsOf) return false;
  const parsed = parseOutboundClusterName(name);
  return parsed !== undefined && !scope.endpointsOf.has(parsed.fqdn);
}

type Keyed = { metadata?: { namespace?: string; name?: string } };

function keyOf(o: Keyed): string { return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`; }

/** Same objects by key, compared by identity first, then by what pilot reads of them. */
function sameList(kind: string, a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  return changedKeys(kind, a as Keyed[], b as Keyed[]).size === 0;
}

/** Keys of the objects added, removed or changed (by their view) between two lists. */
function changedKeys(kind: string, a: readonly Keyed[], b: readonly Keyed[]): Set<string> {
  const out = new Set<string>();
  const byKey = new Map(a.map((o) => [keyOf(o), o]));
  for (const o of b) {
    const k = keyOf(o);
    const prev = byKey.get(k);
    byKey.delete(k);
    if (prev === o) continue;
    if (prev === undefined || JSON.stringify(viewOf(kind, prev)) !== JSON.stringify(viewOf(kind, o))) out.add(k);
  }
  for (const k of byKey.keys()) out.add(k);
  return out;
}

/** The old and new versions of the objects of a kind that changed. */
function changedObjects<T extends Keyed>(kind: string, prev: readonly T[] | undefined, next: readonly T[] | undefined): T[] {
  const keys = changedKeys(kind, prev ?? [], next ?? []);
  return [...(prev ?? []), ...(next ?? [])].filter((o) => keys.has(keyOf(o)));
}

/** Which proxy classes a change of the narrowable kinds reaches. */
function reachers(prev: PushContext, next: PushContext, kinds: ReadonlySet<string>): Map<string, (proxy: Proxy, push: PushContext) => boolean> {
  const out = new Map<string, (proxy: Proxy, push: PushContext) => boolean>();
  if (kinds.has('gateways')) {
    // Only gateway proxies whose labels a changed Gateway selects (before or after the change).
    const gws = changedObjects<Gateway>('gateways', prev.inputs.gateways, next.inputs.gateways);
    out.set('gateways', (p) => p.type === 'router' && gws.some((g) => Object.entries(g.spec?.selector ?? {}).every(([k, v]) => p.workload.labels[k] === v)));
  }
  if (kinds.has('virtualServices')) {
    // Sidecars read only VirtualServices bound to `mesh` (delegates: no hosts, bound by their root).
    const vss = changedObjects<VirtualService>('virtualServices', prev.inputs.virtualServices, next.inputs.virtualServices);
    const mesh = vss.some((v) => appliesToMesh(v) || !v.spec?.hosts?.length);
    out.set('virtualServices', (p) => p.type === 'router' || mesh);
  }
  if (kinds.has('sidecars')) {
    // A Sidecar shapes the proxies it applies to; which one applies is part of their class.
    const changed = new Set(changedObjects<Sidecar>('sidecars', prev.inputs.sidecars, next.inputs.sidecars).map(keyOf));
    out.set('sidecars', (p, push) => {
      if (p.type === 'router') return false;
      const sc = sidecarFor(push, p);
      return sc !== undefined && changed.has(keyOf(sc));
    });
  }
  if (kinds.has('serviceEntries')) {
    const hosts = changedObjects<ServiceEntry>('serviceEntries', prev.inputs.serviceEntries, next.inputs.serviceEntries).flatMap((e) => e.spec?.hosts ?? []);
    const touches = (fqdn: string): boolean => hosts.some((h) => h === fqdn || hostMatches(h, fqdn) || hostMatches(fqdn, h));
    const before = prev.services().filter((s) => touches(s.fqdn));
    const after = next.services().filter((s) => touches(s.fqdn));
    // A VirtualService may route to an entry's host that the proxy's scope does not list.
    const routed = [prev, next].some((push) => routedHosts(push).some(touches));
    out.set('serviceEntries', (p, push) => {
      if (p.type === 'router' || routed) return true;
      const nowSees = sidecarScope(push, p);
      const sawBefore = sidecarScope(prev, p);
      return after.some((s) => nowSees.visible(s)) || before.some((s) => sawBefore.visible(s));
    });
  }
  return out;
}

/** Every destination host (resolved) of every VirtualService route. */
function routedHosts(push: PushContext): string[] {
  const out: string[] = [];
  for (const vs of push.inputs.virtualServices) {
    const ns = vs.metadata.namespace ?? 'default';
    const spec = vs.spec ?? {};
    const dests = [
      ...(spec.http ?? []).flatMap((r) => [...(r.route ?? []).map((d) => d.destination), r.mirror, ...(r.mirrors ?? []).map((m) => m.destination)]),
      ...(spec.tcp ?? []).flatMap((r) => (r.route ?? []).map((d) => d.destination)),
      ...((spec.tls ?? []) as { route?: { destination?: { host?: string } }[] }[]).flatMap((r) => (r.route ?? []).map((d) => d.destination)),
    ];
    for (const d of dests) if (d?.host) out.push(push.resolve(d.host, ns));
  }
  return out;
}

export function changeScope(prev: PushContext | undefined, next: PushContext): ChangeScope {
  if (!prev) return FULL_SCOPE;
  const a = prev.inputs as unknown as Record<string, unknown>;
  const b = next.inputs as unknown as Record<string, unknown>;
  const kinds = new Set<string>();
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) if (!sameList(k, a[k] ?? [], b[k] ?? [])) kinds.add(k);
  if ([...kinds].some((k) => !KNOWN.has(k)) || next.domain !== prev.domain) return { full: true, kinds };
  if (![...kinds].some((k) => ENDPOINT_KINDS.has(k))) return { full: false, kinds, reaches: reachers(prev, next, kinds) };
  const endpointsOf = new Set<string>();
  for (const svc of next.services()) {
    const before = prev.service(svc.fqdn);
    if (!before || JSON.stringify([...before.endpoints]) !== JSON.stringify([...svc.endpoints])) endpointsOf.add(svc.fqdn);
  }
  for (const svc of prev.services()) if (!next.service(svc.fqdn)) endpointsOf.add(svc.fqdn);
  const endpointsOnly = [...kinds].every((k) => ENDPOINT_KINDS.has(k));
  if (destinationReadinessChanged(prev, next, endpointsOf)) kinds.add(DESTINATION_READINESS);
  return endpointsOnly ? { full: false, kinds, endpointsOf } : { full: false, kinds, reaches: reachers(prev, next, kinds) };
}
