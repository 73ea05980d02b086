// What a sidecar may see of the registry (Istio's SidecarScope): the Sidecar resource that
// applies to the proxy (one in its namespace selecting its labels, else its namespace's
// default without selector, else the root namespace's default), whose egress hosts
// (`ns/host`, `./host`, `*/host`, `~/host`) limit the services it gets listeners, routes,
// clusters and endpoints for; the services' own exportTo; and the outbound traffic policy
// for destinations outside the registry (ALLOW_ANY passes them through, REGISTRY_ONLY
// refuses them).
import type { Sidecar } from '../../api/istio/index.js';
import type { PushContext, Workload } from './push-context.js';
import type { ServiceModel } from './service.js';
import { hostMatches } from './hosts.js';
import { byAge, exportedTo } from './istio-config.js';

/** Istio's root namespace (istio-system there); Trellis installs the mesh in trellis-system. */
export const ROOT_NAMESPACE = 'trellis-system';

export type OutboundPolicy = 'ALLOW_ANY' | 'REGISTRY_ONLY';

export interface SidecarScope {
  /** Identifies the scope within a snapshot (part of the proxy classes). */
  key: string;
  outboundPolicy: OutboundPolicy;
  visible(svc: ServiceModel): boolean;
}

export interface ScopedProxy { namespace: string; workload?: Workload; labels?: Readonly<Record<string, string>> }

const cache = new WeakMap<PushContext, Map<string, SidecarScope>>();

function selects(sc: Sidecar, labels: Readonly<Record<string, string>>): boolean {
  const sel = sc.spec?.workloadSelector?.labels;
  return !!sel && Object.keys(sel).length > 0 && Object.entries(sel).every(([k, v]) => labels[k] === v);
}

/** The Sidecar resource that applies to a proxy, if any. */
export function sidecarFor(push: PushContext, proxy: ScopedProxy): Sidecar | undefined {
  const all = [...(push.inputs.sidecars ?? [])].sort(byAge);
  const labels = proxy.workload?.labels ?? proxy.labels ?? {};
  const noSelector = (sc: Sidecar): boolean => !sc.spec?.workloadSelector?.labels || !Object.keys(sc.spec.workloadSelector.labels).length;
  const own = all.filter((sc) => sc.metadata.namespace === proxy.namespace);
  return own.find((sc) => selects(sc, labels)) ?? own.find(noSelector)
    ?? all.find((sc) => sc.metadata.namespace === ROOT_NAMESPACE && noSelector(sc));
}

interface EgressHost { namespace: string; host: string }

function parseEgressHost(h: string, proxyNamespace: string): EgressHost | undefined {
  const i = h.indexOf('/');
  if (i < 0) return undefined; // Istio requires the namespace part
  const ns = h.slice(0, i);
  return { namespace: ns === '.' ? proxyNamespace : ns, host: h.slice(i + 1) };
}

export function sidecarScope(push: PushContext, proxy: ScopedProxy): SidecarScope {
  const sc = sidecarFor(push, proxy);
  const key = sc ? `${sc.metadata.namespace}/${sc.metadata.name}@${proxy.namespace}` : `@${proxy.namespace}`;
  let perPush = cache.get(push);
  if (!perPush) { perPush = new Map(); cache.set(push, perPush); }
  const hit = perPush.get(key);
  if (hit) return hit;
  const egress = sc?.spec?.egress;
  const hosts = egress?.length
    ? egress.flatMap((l) => (l.hosts ?? []).map((h) => parseEgressHost(h, proxy.namespace)).filter((h): h is EgressHost => !!h))
    : undefined;
  const scope: SidecarScope = {
    key,
    outboundPolicy: sc?.spec?.outboundTrafficPolicy?.mode === 'REGISTRY_ONLY' ? 'REGISTRY_ONLY' : 'ALLOW_ANY',
    visible: (svc) => {
      if (svc.entry && !exportedTo(svc.entry.exportTo, svc.namespace, proxy.namespace)) return false;
      if (!hosts) return true;
      // `~` matches no namespace; `*` every one. Wildcard entry hosts are matched as written.
      return hosts.some((h) => (h.namespace === '*' || h.namespace === svc.namespace) && (h.host === svc.fqdn || hostMatches(h.host, svc.fqdn)));
    },
  };
  perPush.set(key, scope);
  return scope;
}
