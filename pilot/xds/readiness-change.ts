// Routes fall back away from destinations with no ready endpoint
// (generators/destination-fallback.ts), so an endpoint change that empties or refills the
// endpoints of a routed destination changes routes and listeners too, not only EDS. Such
// flips are rare (a canary's first pod becoming ready, the last one going away); the steady
// churn of endpoints within a non-empty set keeps its EDS-only push.
import type { VirtualService } from '../../api/istio/index.js';
import type { PushContext } from '../model/push-context.js';

/** The derived input kind routes and listeners depend on (see change-scope.ts). */
export const DESTINATION_READINESS = 'destinationReadiness';

interface RoutedDestination { namespace: string; host: string; subset?: string; port?: number }

function routedDestinations(push: PushContext): RoutedDestination[] {
  const out: RoutedDestination[] = [];
  for (const vs of push.inputs.virtualServices as readonly VirtualService[]) {
    const namespace = vs.metadata?.namespace ?? 'default';
    const spec = vs.spec as { http?: { route?: { destination?: { host?: string; subset?: string; port?: { number?: number } } }[] }[]; tcp?: unknown[]; tls?: unknown[] } | undefined;
    for (const section of [spec?.http, spec?.tcp, spec?.tls] as { route?: { destination?: { host?: string; subset?: string; port?: { number?: number } } }[] }[][]) {
      for (const rule of section ?? []) {
        for (const r of rule.route ?? []) {
          const d = r.destination;
          if (d?.host) out.push({ namespace, host: d.host, subset: d.subset, port: d.port?.number });
        }
      }
    }
  }
  return out;
}

/** Whether some routed destination of a service in `changed` gained its first or lost its last ready endpoint. */
export function destinationReadinessChanged(prev: PushContext, next: PushContext, changed: ReadonlySet<string>): boolean {
  const ready = (push: PushContext, d: RoutedDestination, fqdn: string, port: number) => push.endpoints(fqdn, port, d.subset, d.namespace).length > 0;
  for (const d of [...routedDestinations(prev), ...routedDestinations(next)]) {
    const fqdn = next.resolve(d.host, d.namespace);
    if (!changed.has(fqdn)) continue;
    const ports = d.port !== undefined ? [d.port] : [...new Set([...(prev.service(fqdn)?.ports ?? []), ...(next.service(fqdn)?.ports ?? [])].map((p) => p.port))];
    if (ports.some((p) => ready(prev, d, fqdn, p) !== ready(next, d, fqdn, p))) return true;
  }
  return false;
}
