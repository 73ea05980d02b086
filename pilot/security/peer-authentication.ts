// The effective PeerAuthentication mode of a workload and of each of its ports, with Istio's
// precedence: mesh (root namespace, no selector) -> namespace (no selector) -> workload
// (selector; the oldest when several match) -> its portLevelMtls. UNSET at any level
// inherits from the level above; with no policy at all the mode is PERMISSIVE.
import type { MutualTlsMode, PeerAuthentication } from '../../api/istio/index.js';
import type { PushContext, Workload } from '../model/push-context.js';
import { byNamespace, hasSelector, policyKey, selects } from './selection.js';

export type EffectiveMode = 'PERMISSIVE' | 'STRICT' | 'DISABLE';

export interface WorkloadMtls {
  /** Mode of the workload as a whole (the passthrough chains, ports without a port-level mode). */
  mode: EffectiveMode;
  /** Port-level modes that differ from nothing but their own setting (target port -> mode). */
  ports: ReadonlyMap<number, EffectiveMode>;
  /** The workload-level policy that applied, `ns/name` (for the class key of generated listeners). */
  workloadPolicy?: string;
}

interface PaIndex { byNs: Map<string, PeerAuthentication[]>; warnings: string[] }

const cache = new WeakMap<PushContext, PaIndex>();

function set(mode: MutualTlsMode | undefined): mode is EffectiveMode {
  return mode === 'PERMISSIVE' || mode === 'STRICT' || mode === 'DISABLE';
}

function index(push: PushContext): PaIndex {
  let idx = cache.get(push);
  if (!idx) {
    const list = push.inputs.peerAuthentications ?? [];
    const warnings: string[] = [];
    for (const pa of list) {
      const id = `PeerAuthentication ${policyKey(pa)}`;
      if (!hasSelector(pa) && Object.keys(pa.spec?.portLevelMtls ?? {}).length) {
        warnings.push(`${id}: spec.portLevelMtls needs spec.selector (Istio ignores it on namespace- and mesh-wide policies); ignored`);
      }
    }
    idx = { byNs: byNamespace(list), warnings };
    cache.set(push, idx);
  }
  return idx;
}

export function peerAuthenticationWarnings(push: PushContext): readonly string[] { return index(push).warnings; }

/** The first policy without a selector in a namespace (oldest wins, as in Istio). */
function namespacePolicy(idx: PaIndex, ns: string): PeerAuthentication | undefined {
  return idx.byNs.get(ns)?.find((p) => !hasSelector(p));
}

export function workloadMtls(push: PushContext, w: Pick<Workload, 'namespace' | 'labels'>): WorkloadMtls {
  const idx = index(push);
  let mode: EffectiveMode = 'PERMISSIVE';
  const mesh = namespacePolicy(idx, push.security.rootNamespace);
  if (set(mesh?.spec?.mtls?.mode)) mode = mesh.spec.mtls.mode as EffectiveMode;
  const ns = w.namespace === push.security.rootNamespace ? undefined : namespacePolicy(idx, w.namespace);
  if (set(ns?.spec?.mtls?.mode)) mode = ns.spec.mtls.mode as EffectiveMode;
  // Istio: a workload-level policy has a selector and is not in the root namespace.
  const workload = w.namespace === push.security.rootNamespace ? undefined
    : idx.byNs.get(w.namespace)?.find((p) => hasSelector(p) && selects(p, w.labels));
  const ports = new Map<number, EffectiveMode>();
  if (workload) {
    if (set(workload.spec.mtls?.mode)) mode = workload.spec.mtls.mode as EffectiveMode;
    for (const [port, m] of Object.entries(workload.spec.portLevelMtls ?? {})) {
      const n = Number(port);
      if (!Number.isInteger(n)) continue;
      ports.set(n, set(m?.mode) ? m.mode as EffectiveMode : mode);
    }
  }
  return { mode, ports, workloadPolicy: workload ? policyKey(workload) : undefined };
}

export function portMode(m: WorkloadMtls, port: number): EffectiveMode {
  return m.ports.get(port) ?? m.mode;
}
