// Generators for proxyless gRPC clients (@grpc/grpc-js-xds, grpc-go's xds resolver): the
// client asks for `xds:///<host>:<port>` by name, so every type is requested by name. LDS
// answers with an API listener (HttpConnectionManager -> RDS) per service port named
// `<fqdn>:<port>`; RDS with one virtual host for that authority; CDS with EDS clusters in
// the subset gRPC accepts (ROUND_ROBIN, no Envoy-only fields); EDS with one locality.
import { TYPE_URL } from '../../../api/xds/protos.js';
import type { PushContext } from '../../model/push-context.js';
import type { Proxy } from '../../model/proxy.js';
import type { ServiceModel } from '../../model/service.js';
import { labelsKey } from './index.js';
import type { XdsGenerator } from './index.js';
import { outboundCluster } from './cds.js';
import { loadAssignment } from './eds.js';
import { danglingClusterNames, serviceClusterNames } from './outbound.js';
import { serviceRoutes, type RouteProxy } from './http-route.js';
import { serviceDomains } from './rds.js';
import { FAULT_FILTER } from './route-policy.js';
import { ADS_CONFIG_SOURCE, routerFilter, type Cluster, type Json, type Route, type RouteConfiguration } from './envoy.js';

/** Node id types other than Istio's sidecar/router (e.g. `proxyless~...`) are gRPC clients. */
export function isProxylessType(type: string): boolean { return type !== 'sidecar' && type !== 'router'; }

/** The listener (and route configuration) name a gRPC client uses for a service port. */
export function proxylessListenerName(fqdn: string, port: number): string { return `${fqdn}:${port}`; }

function tcpPorts(push: PushContext): { svc: ServiceModel; port: number }[] {
  return push.services().flatMap((svc) => svc.ports.filter((p) => p.protocol === 'TCP').map((p) => ({ svc, port: p.port })));
}

export function proxylessListeners(push: PushContext): { name: string; resource: Json }[] {
  return tcpPorts(push).map(({ svc, port }) => {
    const name = proxylessListenerName(svc.fqdn, port);
    return {
      name,
      resource: {
        name,
        apiListener: {
          apiListener: {
            '@type': TYPE_URL.httpConnectionManager,
            statPrefix: name,
            rds: { routeConfigName: name, configSource: ADS_CONFIG_SOURCE },
            httpFilters: [routerFilter()],
          },
        },
      },
    };
  });
}

/**
 * gRPC rejects a whole RouteConfiguration for one route it cannot run, so routes with a
 * non-route action (redirect) are left out and per-filter configs other than fault (which
 * gRPC implements) are dropped; Envoy-only fields it ignores are kept.
 */
function grpcRoute(r: Route): Route | undefined {
  if (!r.route) return undefined;
  const out: Route = { ...r };
  if (r.typedPerFilterConfig) {
    const kept = Object.fromEntries(Object.entries(r.typedPerFilterConfig).filter(([k]) => k === FAULT_FILTER));
    if (Object.keys(kept).length) out.typedPerFilterConfig = kept; else delete out.typedPerFilterConfig;
  }
  return out;
}

export function proxylessRoutes(push: PushContext, proxy: RouteProxy): RouteConfiguration[] {
  return tcpPorts(push).map(({ svc, port }) => {
    const name = proxylessListenerName(svc.fqdn, port);
    const routes = serviceRoutes(push, svc, port, proxy).flatMap((r) => { const g = grpcRoute(r); return g ? [g] : []; });
    return { name, virtualHosts: [{ name, domains: serviceDomains(svc, port, proxy.namespace), routes }] };
  });
}

/** The DestinationRule's circuit breaker and outlier detection carry over; the LB is gRPC's round robin. */
export function proxylessClusters(push: PushContext, namespace: string): Cluster[] {
  return [...serviceClusterNames(push), ...danglingClusterNames(push)].map((name) => {
    const full = outboundCluster(push, name, namespace);
    const c: Cluster = { name, type: 'EDS', edsClusterConfig: full.edsClusterConfig, lbPolicy: 'ROUND_ROBIN', connectTimeout: full.connectTimeout };
    if (full.circuitBreakers) c.circuitBreakers = full.circuitBreakers;
    if (full.outlierDetection) c.outlierDetection = full.outlierDetection;
    return c;
  });
}

/** gRPC's weighted-locality balancer needs a locality and a non-zero weight on each group. */
export function proxylessEndpoints(push: PushContext, namespace: string): Json[] {
  return [...serviceClusterNames(push), ...danglingClusterNames(push)].map((name) => {
    const cla = loadAssignment(push, name, namespace);
    return { ...cla, endpoints: cla.endpoints.map((e) => ({ ...e, locality: {}, loadBalancingWeight: { value: 1 } })) };
  });
}

const rp = (p: Proxy): RouteProxy => ({ namespace: p.namespace, labels: p.workload.labels });

export const PROXYLESS_GENERATORS: readonly XdsGenerator[] = [
  {
    type: 'cds', typeUrl: TYPE_URL.cluster, wildcard: false, proxyClass: (p) => `proxyless|${p.namespace}`,
    generate: (push, proxy) => proxylessClusters(push, proxy.namespace).map((c) => ({ name: c.name, resource: c })),
  },
  {
    type: 'eds', typeUrl: TYPE_URL.clusterLoadAssignment, wildcard: false, proxyClass: (p) => `proxyless|${p.namespace}`,
    generate: (push, proxy) => proxylessEndpoints(push, proxy.namespace).map((c) => ({ name: String(c.clusterName), resource: c })),
  },
  {
    type: 'lds', typeUrl: TYPE_URL.listener, wildcard: false, proxyClass: () => 'proxyless',
    generate: (push) => proxylessListeners(push),
  },
  {
    type: 'rds', typeUrl: TYPE_URL.routeConfiguration, wildcard: false, proxyClass: (p, push) => `proxyless|${p.namespace}|${labelsKey(p, push)}`,
    generate: (push, proxy) => proxylessRoutes(push, rp(proxy)).map((r) => ({ name: r.name, resource: r })),
  },
];
