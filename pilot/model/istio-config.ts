// VirtualServices and DestinationRules indexed by the service host they apply to, with
// Istio's host resolution, exportTo visibility, and its merge rule: several
// VirtualServices for one host are merged (their routes concatenated, oldest rule first).
import type { DestinationRule, HTTPRoute, Subset, TCPRoute, TLSRoute, TrafficPolicy, VirtualService } from '../../api/istio/index.js';
import { hostMatches, resolveHost } from './hosts.js';

export interface VirtualServiceModel {
  name: string;
  namespace: string;
  /** Hosts resolved to FQDNs (or kept as wildcards). */
  hosts: readonly string[];
  http: readonly HTTPRoute[];
  tcp: readonly TCPRoute[];
  /** SNI routes (pilot/xds/generators/tls-route.ts). */
  tls?: readonly TLSRoute[];
  exportTo?: readonly string[];
}

export interface SubsetModel { name: string; labels: Readonly<Record<string, string>>; trafficPolicy?: TrafficPolicy }

export interface DestinationRuleModel {
  name: string;
  namespace: string;
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets: ReadonlyMap<string, SubsetModel>;
  exportTo?: readonly string[];
}

/** Oldest first, then by namespace/name, so the choice is stable across snapshots. */
export function byAge<T extends { metadata: { creationTimestamp?: string; namespace?: string; name?: string } }>(a: T, b: T): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  const ka = `${a.metadata.namespace}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** Sidecars use rules bound to the reserved gateway `mesh`, the default when none is listed. */
export function appliesToMesh(vs: VirtualService): boolean {
  const gws = vs.spec.gateways ?? [];
  return gws.length === 0 || gws.includes('mesh');
}

/**
 * Istio's exportTo: absent or `*` means every namespace, `.` the rule's own namespace,
 * any other entry a namespace by name.
 */
export function exportedTo(exportTo: readonly string[] | undefined, ownNamespace: string, namespace: string | undefined): boolean {
  if (namespace === undefined || !exportTo || exportTo.length === 0) return true;
  return exportTo.some((e) => e === '*' || e === namespace || (e === '.' && ownNamespace === namespace));
}

export function virtualServiceModel(vs: VirtualService, domain: string): VirtualServiceModel {
  const namespace = vs.metadata.namespace ?? 'default';
  return {
    name: vs.metadata.name ?? '', namespace,
    hosts: (vs.spec.hosts ?? []).map((h) => resolveHost(h, namespace, domain)),
    http: vs.spec.http ?? [],
    tcp: vs.spec.tcp ?? [],
    tls: (vs.spec.tls ?? []) as TLSRoute[],
    exportTo: vs.spec.exportTo,
  };
}

export function destinationRuleModel(dr: DestinationRule, domain: string, warn: (m: string) => void): DestinationRuleModel {
  const namespace = dr.metadata.namespace ?? 'default';
  const id = `DestinationRule ${namespace}/${dr.metadata.name}`;
  const subsets = new Map<string, SubsetModel>();
  (dr.spec.subsets ?? []).forEach((s: Subset, i) => {
    if (!s.name) { warn(`${id}: spec.subsets[${i}].name is required; subset ignored`); return; }
    if (subsets.has(s.name)) { warn(`${id}: spec.subsets[${i}].name '${s.name}' is defined twice; the first one is used`); return; }
    subsets.set(s.name, { name: s.name, labels: s.labels ?? {}, trafficPolicy: s.trafficPolicy });
  });
  return {
    name: dr.metadata.name ?? '', namespace,
    host: resolveHost(dr.spec.host ?? '', namespace, domain),
    trafficPolicy: dr.spec.trafficPolicy, subsets, exportTo: dr.spec.exportTo,
  };
}

/** For each service FQDN, every rule that applies, oldest first: exact hosts, else wildcard hosts. */
export function indexByHost<T>(rules: readonly { model: T; hosts: readonly string[] }[], fqdns: readonly string[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const fqdn of fqdns) {
    const exact = rules.filter((r) => r.hosts.includes(fqdn));
    const candidates = exact.length ? exact : rules.filter((r) => r.hosts.some((h) => hostMatches(h, fqdn)));
    if (candidates.length) out.set(fqdn, candidates.map((c) => c.model));
  }
  return out;
}
