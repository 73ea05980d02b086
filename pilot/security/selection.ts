// Which security policies apply to a workload: Istio's scopes (mesh = root namespace without
// selector, namespace = the workload's namespace without selector, workload = a selector
// that matches its labels), and the oldest-wins rule when one scope holds several.
import type { KubeObject } from '../../api/kube/index.js';
import type { WorkloadSelector } from '../../api/istio/index.js';
import { byAge } from '../model/istio-config.js';

export interface Selectable extends KubeObject { spec: { selector?: WorkloadSelector } }

export const hasSelector = (o: Selectable): boolean => Object.keys(o.spec?.selector?.matchLabels ?? {}).length > 0;

export function selects(o: Selectable, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(o.spec?.selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

export const policyKey = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;

/** Policies by namespace, oldest first inside each. */
export function byNamespace<T extends Selectable>(list: readonly T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const o of [...list].sort(byAge)) {
    const ns = o.metadata.namespace ?? 'default';
    const l = out.get(ns) ?? [];
    l.push(o);
    out.set(ns, l);
  }
  return out;
}
