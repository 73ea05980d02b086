// ClusterRole aggregation (Kubernetes' clusterrole-aggregation controller): a ClusterRole with
// an aggregationRule gets as its rules the union of the rules of every other ClusterRole that
// one of its clusterRoleSelectors matches, in name order, without duplicates. Its own rules are
// controller-owned: whatever a client writes there is replaced on the next pass.
import { matchesSelector } from '../../../api/kube/labels.js';
import type { LabelSelector } from '../../../api/kube/types.js';
import type { CancelWatch, Store } from '../../store/types.js';
import { isStoreError } from '../../store/types.js';
import { getPath, isObj, type Json } from '../util.js';

export const CLUSTER_ROLES_PREFIX = '/registry/clusterroles.rbac.authorization.k8s.io/';

function selectorsOf(role: Json): LabelSelector[] | undefined {
  const agg = role.aggregationRule;
  if (!isObj(agg)) return undefined;
  return Array.isArray(agg.clusterRoleSelectors) ? agg.clusterRoleSelectors.filter(isObj) as LabelSelector[] : [];
}

const nameOf = (r: Json): string => String(getPath(r, 'metadata.name'));

/** The rules an aggregated role should have, given every ClusterRole. */
export function aggregatedRules(role: Json, all: Json[]): Json[] {
  const selectors = selectorsOf(role) ?? [];
  const out: Json[] = [];
  const seen = new Set<string>();
  const sources = all.filter((r) => nameOf(r) !== nameOf(role))
    .filter((r) => selectors.some((s) => matchesSelector(s, (getPath(r, 'metadata.labels') ?? {}) as Record<string, string>)))
    .sort((a, b) => (nameOf(a) < nameOf(b) ? -1 : nameOf(a) > nameOf(b) ? 1 : 0));
  for (const src of sources) {
    for (const rule of Array.isArray(src.rules) ? src.rules.filter(isObj) : []) {
      const key = JSON.stringify(rule);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(rule);
    }
  }
  return out;
}

export class ClusterRoleAggregator {
  private cancel?: CancelWatch;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;

  constructor(private readonly store: Store) {}

  async start(): Promise<void> {
    const rev = await this.store.revision();
    await this.reconcile();
    this.cancel = await this.store.watch(CLUSTER_ROLES_PREFIX, rev, () => this.schedule());
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
    if (this.timer) clearTimeout(this.timer);
  }

  /** Batches bursts of ClusterRole changes into one pass; a pass in progress is followed by another. */
  private schedule(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.running) { this.again = true; return; }
      this.running = this.reconcile().catch((e: Error) => console.error(`apiserver: clusterrole aggregation: ${e.message}`))
        .finally(() => { this.running = undefined; if (this.again) { this.again = false; this.schedule(); } });
    }, 20);
  }

  /** One pass: rewrites the rules of every aggregated ClusterRole whose rules differ (compare-and-swap). */
  async reconcile(): Promise<void> {
    const { items } = await this.store.list(CLUSTER_ROLES_PREFIX);
    for (const role of items) {
      if (this.stopped) return;
      if (!selectorsOf(role)) continue;
      const rules = aggregatedRules(role, items);
      if (JSON.stringify(role.rules ?? []) === JSON.stringify(rules)) continue;
      try {
        await this.store.update(`${CLUSTER_ROLES_PREFIX}${nameOf(role)}`, { ...role, rules }, Number(getPath(role, 'metadata.resourceVersion')));
      } catch (e) {
        // Changed or deleted meanwhile: its watch event schedules another pass.
        if (!isStoreError(e, 'Conflict') && !isStoreError(e, 'NotFound')) throw e;
      }
    }
  }
}
