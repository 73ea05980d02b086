// Which ports get outbound HTTP listeners and route configurations, which service ports get
// TCP listeners, and which clusters the routes reference: shared by LDS, RDS, CDS and EDS
// so they always agree.
import type { PushContext } from '../../model/push-context.js';
import { isHttpProtocol, type ServiceModel, type ServicePortModel } from '../../model/service.js';
import { destinationCluster } from './http-route.js';
import { outboundClusterName } from './names.js';
import type { SidecarScope } from '../../model/sidecar-scope.js';

/** The services a proxy sees: all of them, or those its SidecarScope lets through. */
export function scopedServices(push: PushContext, scope?: SidecarScope): readonly ServiceModel[] {
  return scope ? push.services().filter((s) => scope.visible(s)) : push.services();
}

const isHttpPort = (p: ServicePortModel): boolean => p.protocol === 'TCP' && isHttpProtocol(p.appProtocol);
const isTcpPort = (p: ServicePortModel): boolean => p.protocol === 'TCP' && !isHttpProtocol(p.appProtocol);

/** Ports of HTTP service ports, ascending: one `0.0.0.0_<port>` listener and one route configuration each. */
export function outboundPorts(push: PushContext, scope?: SidecarScope): number[] {
  const ports = new Set<number>();
  for (const svc of scopedServices(push, scope)) for (const p of svc.ports) if (isHttpPort(p)) ports.add(p.port);
  return [...ports].sort((a, b) => a - b);
}

export function servicesOnPort(push: PushContext, port: number, scope?: SidecarScope): ServiceModel[] {
  return scopedServices(push, scope).filter((s) => s.ports.some((p) => p.port === port && isHttpPort(p)));
}

/**
 * TCP service ports cannot be told apart by Host header, so each gets its own listener on
 * `<clusterIP>:<port>` (Istio's shape); headless services have none (passthrough).
 */
export function tcpServicePorts(push: PushContext, scope?: SidecarScope): { svc: ServiceModel; port: number }[] {
  const out: { svc: ServiceModel; port: number }[] = [];
  for (const svc of scopedServices(push, scope)) {
    if (!svc.clusterIP) continue;
    for (const p of svc.ports) if (isTcpPort(p)) out.push({ svc, port: p.port });
  }
  return out;
}

/** Clusters that exist because a service port (and a DestinationRule subset) exists. */
export function serviceClusterNames(push: PushContext, scope?: SidecarScope): string[] {
  const names: string[] = [];
  for (const svc of scopedServices(push, scope)) {
    const subsets = push.subsetNames(svc.fqdn);
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
 * Computed over every VirtualService whatever its visibility: a superset is harmless.
 */
export function danglingClusterNames(push: PushContext): string[] {
  const cached = danglingCache.get(push);
  if (cached) return cached;
  const known = new Set(serviceClusterNames(push));
  const dangling = new Set<string>();
  for (const { fqdn, vs } of push.allVirtualServices()) {
    const ports = push.service(fqdn)?.ports.filter((p) => p.protocol === 'TCP').map((p) => p.port) ?? [];
    const dests = [
      ...vs.http.flatMap((r) => [...(r.route ?? []).map((d) => d.destination), r.mirror, ...(r.mirrors ?? []).map((m) => m.destination)]),
      ...vs.tcp.flatMap((r) => (r.route ?? []).map((d) => d.destination)),
      ...(vs.tls ?? []).flatMap((r) => (r.route ?? []).map((d) => d.destination)),
    ];
    for (const port of ports) {
      for (const d of dests) {
        if (!d?.host) continue;
        const n = destinationCluster(push, vs.namespace, d, port);
        if (!known.has(n)) dangling.add(n);
      }
    }
  }
  const out = [...dangling].sort();
  danglingCache.set(push, out);
  return out;
}

/**
 * The clusters a scoped proxy needs: those of the services it sees, those its routes point
 * at (a visible VirtualService may send to a service outside the scope, as in Istio), and
 * the dangling ones. Unscoped, the same list the sidecar has always had.
 */
export function proxyClusterNames(push: PushContext, scope?: SidecarScope, namespace?: string): string[] {
  if (!scope) return [...serviceClusterNames(push), ...danglingClusterNames(push)];
  const names = new Set(serviceClusterNames(push, scope));
  for (const svc of scopedServices(push, scope)) {
    for (const vs of push.virtualServicesFor(svc.fqdn, namespace)) {
      const dests = [
        ...vs.http.flatMap((r) => [...(r.route ?? []).map((d) => d.destination), r.mirror, ...(r.mirrors ?? []).map((m) => m.destination)]),
        ...vs.tcp.flatMap((r) => (r.route ?? []).map((d) => d.destination)),
        ...(vs.tls ?? []).flatMap((r) => (r.route ?? []).map((d) => d.destination)),
      ];
      for (const p of svc.ports) {
        if (p.protocol !== 'TCP') continue;
        for (const d of dests) if (d?.host) names.add(destinationCluster(push, vs.namespace, d, p.port));
      }
    }
  }
  const all = [...serviceClusterNames(push), ...danglingClusterNames(push)];
  return all.filter((n) => names.has(n)).concat([...names].filter((n) => !all.includes(n)).sort());
}
