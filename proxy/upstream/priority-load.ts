// Envoy's priority and locality load balancing over a ClusterLoadAssignment: each priority
// gets load by its healthy share times the overprovisioning factor (1.4 by default), so
// traffic only spills to priority 1 once priority 0 drops below ~71% healthy; within a
// priority, localities with weights share load by weight times their own healthy share.
import type { Endpoint, LocalityGroup } from '../xds/resources/endpoint.js';

/** Per-priority load (percent, summing to 100) from their health. */
export function priorityLoads(health: readonly number[]): number[] {
  const total = health.reduce((s, h) => s + h, 0);
  if (total === 0) return health.map((_, i) => (i === 0 ? 100 : 0));
  // Not enough healthy capacity anywhere: spread by health (Envoy's normalisation).
  if (total < 100) return health.map((h) => (h * 100) / total);
  let remaining = 100;
  return health.map((h) => {
    const load = Math.min(remaining, h);
    remaining -= load;
    return load;
  });
}

function healthPercent(healthy: number, total: number, overprovisioning: number): number {
  return total === 0 ? 0 : Math.min(100, (100 * overprovisioning * healthy) / total);
}

/** The hosts to balance over for one request, or undefined when there are none at all. */
export function choosePriorityHosts(groups: readonly LocalityGroup[], overprovisioning: number, isHealthy: (e: Endpoint) => boolean, random = Math.random): Endpoint[] | undefined {
  const priorities = [...new Set(groups.map((g) => g.priority))].sort((a, b) => a - b);
  const byPriority = priorities.map((p) => groups.filter((g) => g.priority === p));
  const health = byPriority.map((gs) => {
    const healthy = gs.reduce((s, g) => s + g.hosts.filter(isHealthy).length, 0);
    return healthPercent(healthy, gs.reduce((s, g) => s + g.total, 0), overprovisioning);
  });
  const loads = priorityLoads(health);
  let r = random() * 100;
  let chosen = loads.length - 1;
  for (let i = 0; i < loads.length; i++) {
    if (r < loads[i]) { chosen = i; break; }
    r -= loads[i];
  }
  const gs = byPriority[chosen] ?? [];
  if (gs.some((g) => g.weight !== undefined)) {
    const effective = gs.map((g) => (g.weight ?? 0) * healthPercent(g.hosts.filter(isHealthy).length, g.total, overprovisioning));
    const sum = effective.reduce((s, w) => s + w, 0);
    if (sum > 0) {
      let x = random() * sum;
      for (let i = 0; i < gs.length; i++) {
        if (x < effective[i]) return gs[i].hosts.filter(isHealthy);
        x -= effective[i];
      }
    }
  }
  const all = gs.flatMap((g) => g.hosts);
  const healthy = all.filter(isHealthy);
  return healthy.length > 0 ? healthy : all.length > 0 ? all : undefined;
}
