// RDS: one RouteConfiguration per outbound port, one virtual host per service on it.
import type { PushContext } from '../../model/push-context.js';
import type { Proxy } from '../../model/proxy.js';
import type { ServiceModel } from '../../model/service.js';
import { serviceRoutes, type RouteProxy } from './http-route.js';
import { outboundPorts, servicesOnPort } from './outbound.js';
import { sidecarScope } from '../../model/sidecar-scope.js';
import { PASSTHROUGH_CLUSTER, routeConfigName } from './names.js';
import type { RouteConfiguration, VirtualHost } from './envoy.js';

/**
 * The names a client may use for a service. Short names resolve only inside the service's
 * own namespace (the pod's DNS search path), so they are offered to proxies there only;
 * offering them everywhere would give two services the same domain, which Envoy rejects.
 */
export function serviceDomains(svc: ServiceModel, port: number, proxyNamespace: string): string[] {
  // A ServiceEntry host is used as written (no namespace short forms).
  if (svc.entry) return [svc.fqdn, ...(svc.clusterIP ? [svc.clusterIP] : [])].flatMap((n) => [n, `${n}:${port}`]);
  const names = [svc.fqdn];
  if (svc.namespace === proxyNamespace) names.push(svc.name);
  names.push(`${svc.name}.${svc.namespace}`, `${svc.name}.${svc.namespace}.svc`);
  if (svc.clusterIP) names.push(svc.clusterIP);
  return names.flatMap((n) => [n, `${n}:${port}`]);
}

export function virtualHost(push: PushContext, svc: ServiceModel, port: number, proxy: RouteProxy): VirtualHost {
  return { name: `${svc.fqdn}:${port}`, domains: serviceDomains(svc, port, proxy.namespace), routes: serviceRoutes(push, svc, port, proxy) };
}

/** Hosts that are not services go out as they came (outbound traffic policy ALLOW_ANY). */
function allowAnyVirtualHost(): VirtualHost {
  return { name: 'allow_any', domains: ['*'], routes: [{ name: 'allow_any', match: { prefix: '/' }, route: { cluster: PASSTHROUGH_CLUSTER } }] };
}

/** REGISTRY_ONLY: hosts outside the registry get 502, as Istio's block_all virtual host answers. */
function blockAllVirtualHost(): VirtualHost {
  return { name: 'block_all', domains: ['*'], routes: [{ name: 'block_all', match: { prefix: '/' }, directResponse: { status: 502 } }] };
}

export function generateRoutes(push: PushContext, proxy: Pick<Proxy, 'namespace'> & { labels?: Proxy['labels']; workload?: Proxy['workload'] }): RouteConfiguration[] {
  const rp: RouteProxy = { namespace: proxy.namespace, labels: proxy.workload?.labels ?? proxy.labels ?? {} };
  const scope = sidecarScope(push, proxy);
  const fallback = scope.outboundPolicy === 'REGISTRY_ONLY' ? blockAllVirtualHost() : allowAnyVirtualHost();
  return outboundPorts(push, scope).map((port) => ({
    name: routeConfigName(port),
    virtualHosts: [...servicesOnPort(push, port, scope).map((svc) => virtualHost(push, svc, port, rp)), fallback],
  }));
}
