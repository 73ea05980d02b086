// What a new snapshot changed relative to the previous one, so the cache regenerates only
// the xDS types (and, for endpoints, only the resources) the change can affect: an
// endpoint change re-encodes the ClusterLoadAssignments of that service only; a
// VirtualService change leaves clusters and endpoints alone. Anything not understood here
// (a kind added later, a non-list input) means "everything changed".
import type { PushContext } from '../model/push-context.js';
import { parseOutboundClusterName } from './generators/names.js';
import type { XdsTypeName } from './generators/index.js';

export interface ChangeScope {
  /** Everything may have changed (first snapshot, unknown kind). */
  full: boolean;
  /** Input kinds (ConfigInputs keys) with an added, removed or changed object. */
  kinds: ReadonlySet<string>;
  /** When only endpoints/pods changed: the services whose endpoints differ. */
  endpointsOf?: ReadonlySet<string>;
}

export const FULL_SCOPE: ChangeScope = { full: true, kinds: new Set() };

// The inputs each type's output reads. CDS reads pods/endpoints too: the SAN list of a
// cluster names the service accounts running the service; and PeerAuthentications (a
// namespace with mTLS DISABLE gets no auto mTLS). LDS reads the security policies and the
// pod labels their selectors match (virtualInbound's chains and RBAC filters). Gateways
// shape only gateway listeners and routes (a gateway's clusters are the mesh's outbound ones).
const DEPENDS: Record<XdsTypeName, readonly string[]> = {
  cds: ['namespaces', 'services', 'endpoints', 'pods', 'virtualServices', 'destinationRules', 'peerAuthentications'],
  eds: ['namespaces', 'services', 'endpoints', 'pods', 'virtualServices', 'destinationRules'],
  lds: ['namespaces', 'services', 'pods', 'virtualServices', 'destinationRules', 'peerAuthentications', 'authorizationPolicies', 'secrets', 'gateways'],
  rds: ['namespaces', 'services', 'virtualServices', 'destinationRules', 'gateways'],
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

/** Whether a resource's encoded bytes from the previous snapshot can be kept. */
export function resourceUnaffected(scope: ChangeScope, type: string, name: string): boolean {
  if (typeUnaffected(scope, type)) return true;
  if (scope.full || type !== 'eds' || !scope.endpointsOf) return false;
  const parsed = parseOutboundClusterName(name);
  return parsed !== undefined && !scope.endpointsOf.has(parsed.fqdn);
}

type Keyed = { metadata?: { namespace?: string; name?: string } };

function keyOf(o: Keyed): string { return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`; }

/** Same objects by key, compared by identity first, then by content. */
function sameList(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  const byKey = new Map((a as Keyed[]).map((o) => [keyOf(o), o]));
  for (const o of b as Keyed[]) {
    const prev = byKey.get(keyOf(o));
    if (prev === o) continue;
    if (prev === undefined || JSON.stringify(prev) !== JSON.stringify(o)) return false;
  }
  return true;
}

export function changeScope(prev: PushContext | undefined, next: PushContext): ChangeScope {
  if (!prev) return FULL_SCOPE;
  const a = prev.inputs as unknown as Record<string, unknown>;
  const b = next.inputs as unknown as Record<string, unknown>;
  const kinds = new Set<string>();
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) if (!sameList(a[k], b[k])) kinds.add(k);
  if ([...kinds].some((k) => !KNOWN.has(k)) || next.domain !== prev.domain) return { full: true, kinds };
  if (!kinds.size || ![...kinds].every((k) => ENDPOINT_KINDS.has(k))) return { full: false, kinds };
  const endpointsOf = new Set<string>();
  for (const svc of next.services()) {
    const before = prev.service(svc.fqdn);
    if (!before || JSON.stringify([...before.endpoints]) !== JSON.stringify([...svc.endpoints])) endpointsOf.add(svc.fqdn);
  }
  for (const svc of prev.services()) if (!next.service(svc.fqdn)) endpointsOf.add(svc.fqdn);
  return { full: false, kinds, endpointsOf };
}
