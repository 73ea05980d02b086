// Which ports get outbound listeners and route configurations, and which clusters the
// routes reference: shared by LDS, RDS, CDS and EDS so they always agree.
import type { PushContext } from '../../model/push-context.js';
import type { ServiceModel } from '../../model/service.js';
import { serviceRoutes } from './http-route.js';
import { outboundClusterName } from './names.js';

/** Ports of TCP service ports, ascending: one listener and one route configuration each. */
export function outboundPorts(push: PushContext): number[] {
  const ports = new Set<number>();
  for (const svc of push.services()) for (const p of svc.ports) if (p.protocol === 'TCP') ports.add(p.port);
  return [...ports].sort((a, b) => a - b);
}

export function servicesOnPort(push: PushContext, port: number): ServiceModel[] {
  return push.services().filter((s) => s.ports.some((p) => p.port === port && p.protocol === 'TCP'));
}

/** Clusters that exist because a service port (and a DestinationRule subset) exists. */
export function serviceClusterNames(push: PushContext): string[] {
  const names: string[] = [];
  for (const svc of push.services()) {
    const subsets = [...(push.destinationRuleFor(svc.fqdn)?.subsets.keys() ?? [])];
    for (const p of svc.ports) {
      if (p.protocol !== 'TCP') continue;
      names.push(outboundClusterName(p.port, '', svc.fqdn));
      for (const s of subsets) names.push(outboundClusterName(p.port, s, svc.fqdn));
    }
  }
  return names;
}

const danglingCache = new WeakMap<PushContext, string[]>();

/**
 * Clusters that routes point at but that no service or subset defines (a typo'd subset, a
 * host with no service). They are still sent, with no endpoints, so the proxy accepts the
 * routes and answers such requests with a 503 instead of rejecting the whole config.
 */
export function danglingClusterNames(push: PushContext): string[] {
  const cached = danglingCache.get(push);
  if (cached) return cached;
  const known = new Set(serviceClusterNames(push));
  const dangling = new Set<string>();
  for (const port of outboundPorts(push)) {
    for (const svc of servicesOnPort(push, port)) {
      for (const r of serviceRoutes(push, svc, port)) {
        const names = r.route?.cluster ? [r.route.cluster] : (r.route?.weightedClusters?.clusters ?? []).map((c) => c.name);
        for (const n of names) if (!known.has(n)) dangling.add(n);
      }
    }
  }
  const out = [...dangling].sort();
  danglingCache.set(push, out);
  return out;
}
