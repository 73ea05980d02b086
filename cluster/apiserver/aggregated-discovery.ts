// Aggregated discovery (apidiscovery.k8s.io v2 and v2beta1): /api and /apis answer with every
// group, version and resource in one APIGroupDiscoveryList when the client asks for it in
// Accept, as kube-apiserver does; kubectl 1.32 then needs no per-group-version requests.
// Built from the same registry as the legacy documents, so both forms always agree.
import type { Registry } from './registry/registry.js';
import type { KindInfo } from './registry/types.js';
import type { Json } from './util.js';

export type DiscoveryVersion = 'v2' | 'v2beta1';

/**
 * The aggregated form the client asked for, if any: the first entry of Accept (in order)
 * that is `application/json;g=apidiscovery.k8s.io;v=<v2|v2beta1>;as=APIGroupDiscoveryList`.
 */
export function wantsAggregated(accept: string | undefined): DiscoveryVersion | undefined {
  for (const entry of (accept ?? '').split(',')) {
    const [type, ...rawParams] = entry.split(';').map((x) => x.trim());
    if (type !== 'application/json') continue;
    const params = new Map(rawParams.map((p) => { const i = p.indexOf('='); return [p.slice(0, i).trim(), p.slice(i + 1).trim()]; }));
    if (params.get('g') !== 'apidiscovery.k8s.io' || params.get('as') !== 'APIGroupDiscoveryList') continue;
    const v = params.get('v');
    if (v === 'v2' || v === 'v2beta1') return v;
  }
  return undefined;
}

export function aggregatedContentType(v: DiscoveryVersion): string {
  return `application/json;g=apidiscovery.k8s.io;v=${v};as=APIGroupDiscoveryList`;
}

function resourceOf(k: KindInfo, version: string): Json {
  const responseKind = { group: k.group, version, kind: k.kind };
  const subresources: Json[] = [];
  if (k.status) subresources.push({ subresource: 'status', responseKind, verbs: ['get', 'patch', 'update'] });
  if (k.scale) subresources.push({ subresource: 'scale', responseKind: { group: 'autoscaling', version: 'v1', kind: 'Scale' }, verbs: ['get', 'patch', 'update'] });
  for (const s of k.extraSubresources ?? []) {
    subresources.push({ subresource: s.name, responseKind: { group: s.group ?? k.group, version: s.version ?? version, kind: s.kind }, verbs: s.verbs });
  }
  const r: Json = {
    resource: k.resource, responseKind, scope: k.namespaced ? 'Namespaced' : 'Cluster',
    singularResource: k.singular, verbs: k.verbs,
  };
  if (k.shortNames.length) r.shortNames = k.shortNames;
  if (k.categories.length) r.categories = k.categories;
  if (subresources.length) r.subresources = subresources;
  return r;
}

function groupItem(reg: Registry, group: string, versions: string[]): Json {
  return {
    metadata: { name: group, creationTimestamp: null },
    // Preferred version first, as in the legacy APIGroup's preferredVersion.
    versions: versions.map((version) => ({
      version,
      resources: reg.kindsIn(group, version).map((k) => resourceOf(k, version)),
      freshness: 'Current',
    })),
  };
}

/** /api (legacy: the core group only) or /apis (every named group) in aggregated form. */
export function aggregatedDiscovery(reg: Registry, legacy: boolean, v: DiscoveryVersion): Json {
  const groups = reg.groups().filter((g) => (g.group === '') === legacy);
  return {
    kind: 'APIGroupDiscoveryList', apiVersion: `apidiscovery.k8s.io/${v}`, metadata: {},
    items: groups.map((g) => groupItem(reg, g.group, g.versions)),
  };
}
