// LDS: virtualOutbound (15001) hands captured connections to the per-port listeners by
// original destination; virtualInbound (15006) serves the proxy's own ports.
import { TYPE_URL } from '../../../api/xds/protos.js';
import type { PushContext } from '../../model/push-context.js';
import type { Proxy } from '../../model/proxy.js';
import { outboundPorts, tcpServicePorts } from './outbound.js';
import { tlsRouteChains } from './tls-route.js';
import { TLS_INSPECTOR } from '../../security/tls-context.js';
import { sidecarScope, type OutboundPolicy, type SidecarScope } from '../../model/sidecar-scope.js';
import { destinationCluster, sourceMatches, weightedDestinations, type RouteProxy } from './http-route.js';
import { fallBack } from './destination-fallback.js';
import { CORS_FILTER, FAULT_FILTER } from './route-policy.js';
import type { ServiceModel } from '../../model/service.js';
import { secureInboundListener } from '../../security/inbound.js';
import type { MeshOptions } from '../../model/mesh-config.js';
import { accessLogConfig } from './access-log.js';
import {
  BLACKHOLE_CLUSTER, INBOUND_CAPTURE_PORT, INBOUND_PASSTHROUGH_CLUSTER, OUTBOUND_CAPTURE_PORT, PASSTHROUGH_CLUSTER,
  VIRTUAL_INBOUND, VIRTUAL_OUTBOUND, inboundClusterName, outboundListenerName, routeConfigName,
} from './names.js';
import {
  ADS_CONFIG_SOURCE, HCM_FILTER, ORIGINAL_DST_FILTER, ORIGINAL_DST_TYPE_URL, routerFilter, socketAddress, tcpProxy, weightedTcpProxy,
  type FilterChain, type Json, type Listener,
} from './envoy.js';

/** Connections to no known listener: passed through (ALLOW_ANY) or to the black hole (REGISTRY_ONLY). */
export function virtualOutboundListener(policy: OutboundPolicy = 'ALLOW_ANY'): Listener {
  const fallback = policy === 'REGISTRY_ONLY' ? BLACKHOLE_CLUSTER : PASSTHROUGH_CLUSTER;
  return {
    name: VIRTUAL_OUTBOUND,
    address: socketAddress('0.0.0.0', OUTBOUND_CAPTURE_PORT),
    trafficDirection: 'OUTBOUND',
    useOriginalDst: { value: true },
    filterChains: [{ name: fallback, filters: [tcpProxy(fallback)] }],
  };
}

export function outboundHttpListener(port: number, mesh?: MeshOptions): Listener {
  const name = outboundListenerName(port);
  return {
    name,
    address: socketAddress('0.0.0.0', port),
    trafficDirection: 'OUTBOUND',
    bindToPort: { value: false },
    filterChains: [{
      filters: [{
        name: HCM_FILTER,
        typedConfig: {
          '@type': TYPE_URL.httpConnectionManager,
          statPrefix: `outbound_${name}`,
          rds: { routeConfigName: routeConfigName(port), configSource: ADS_CONFIG_SOURCE },
          httpFilters: outboundHttpFilters(),
          ...accessLogConfig(mesh),
        },
      }],
    }],
  };
}

/**
 * Istio's outbound filter order: CORS, fault, router. CORS and fault only act on routes
 * that carry their per-filter config; they are optional so a proxy without them still
 * accepts the listener (Envoy's is_optional).
 */
export function outboundHttpFilters(): { name: string; typedConfig: Json; isOptional?: boolean }[] {
  return [
    { name: CORS_FILTER, typedConfig: { '@type': TYPE_URL.cors }, isOptional: true },
    { name: FAULT_FILTER, typedConfig: { '@type': TYPE_URL.fault }, isOptional: true },
    routerFilter(),
  ];
}

/** The TcpProxy of a TCP service port: the first VirtualService tcp rule that matches, else the service. */
export function tcpServiceFilter(push: PushContext, svc: ServiceModel, port: number, proxy: RouteProxy): { name: string; typedConfig: Json } {
  const statPrefix = `outbound|${port}||${svc.fqdn}`;
  for (const vs of push.virtualServicesFor(svc.fqdn, proxy.namespace)) {
    for (const rule of vs.tcp) {
      const matches = !rule.match?.length || rule.match.some((m) => (m.port === undefined || m.port === port) && sourceMatches(m, proxy));
      const dests = (rule.route ?? []).filter((d) => d.destination?.host);
      if (!matches || !dests.length) continue;
      const weighted = fallBack(push, vs.namespace, weightedDestinations(dests), port).map(({ d, weight }) => ({ name: destinationCluster(push, vs.namespace, d.destination, port), weight }));
      return weighted.length === 1 ? { ...tcpProxy(weighted[0].name), typedConfig: { ...tcpProxy(weighted[0].name).typedConfig, statPrefix } } : weightedTcpProxy(statPrefix, weighted);
    }
  }
  return tcpProxy(statPrefix);
}

export function outboundTcpListener(push: PushContext, svc: ServiceModel, port: number, proxy: RouteProxy): Listener {
  const listener: Listener = {
    name: `${svc.clusterIP}_${port}`,
    address: socketAddress(svc.clusterIP ?? '0.0.0.0', port),
    trafficDirection: 'OUTBOUND',
    bindToPort: { value: false },
    filterChains: [{ filters: [tcpServiceFilter(push, svc, port, proxy)] }],
  };
  // VirtualService tls rules: chains by SNI before the service's own chain.
  const sni = tlsRouteChains(push, svc, port, proxy);
  return sni.length ? { ...listener, listenerFilters: [TLS_INSPECTOR], filterChains: [...sni, ...listener.filterChains] } : listener;
}

function inboundChain(port: number, http: boolean, mesh?: MeshOptions): FilterChain {
  const cluster = inboundClusterName(port);
  if (!http) return { name: cluster, filterChainMatch: { destinationPort: { value: port } }, filters: [tcpProxy(cluster)] };
  return {
    name: cluster,
    filterChainMatch: { destinationPort: { value: port } },
    filters: [{
      name: HCM_FILTER,
      typedConfig: {
        '@type': TYPE_URL.httpConnectionManager,
        statPrefix: `inbound_0.0.0.0_${port}`,
        routeConfig: {
          name: cluster,
          virtualHosts: [{ name: `inbound|http|${port}`, domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster } }] }],
        },
        httpFilters: [routerFilter()],
        ...accessLogConfig(mesh),
      },
    }],
  };
}

/** With a snapshot, the workload's mTLS and authorization apply (pilot/security/inbound.ts). */
export function virtualInboundListener(proxy: Pick<Proxy, 'inbound'> & { workload?: Proxy['workload'] }, push?: PushContext): Listener {
  const listener: Listener = {
    name: VIRTUAL_INBOUND,
    address: socketAddress('0.0.0.0', INBOUND_CAPTURE_PORT),
    trafficDirection: 'INBOUND',
    listenerFilters: [{ name: ORIGINAL_DST_FILTER, typedConfig: { '@type': ORIGINAL_DST_TYPE_URL } }],
    filterChains: [
      ...proxy.inbound.map(({ port, http }) => inboundChain(port, http !== false, push?.mesh)),
      { name: INBOUND_PASSTHROUGH_CLUSTER, filters: [tcpProxy(INBOUND_PASSTHROUGH_CLUSTER)] },
    ],
  };
  return push && proxy.workload ? secureInboundListener(push, { workload: proxy.workload }, listener) : listener;
}

export function generateOutboundListeners(push: PushContext, proxy?: RouteProxy, scope?: SidecarScope): Listener[] {
  const rp = proxy ?? { namespace: '', labels: {} };
  return [
    virtualOutboundListener(scope?.outboundPolicy),
    ...outboundPorts(push, scope).map((port) => outboundHttpListener(port, push.mesh)),
    ...tcpServicePorts(push, scope).map(({ svc, port }) => outboundTcpListener(push, svc, port, rp)),
  ];
}

export function generateListeners(push: PushContext, proxy: Pick<Proxy, 'inbound'> & { namespace?: string; workload?: Proxy['workload']; labels?: Proxy['labels'] }): Listener[] {
  const rp: RouteProxy = { namespace: proxy.namespace ?? '', labels: proxy.workload?.labels ?? proxy.labels ?? {} };
  return [...generateOutboundListeners(push, rp, sidecarScope(push, rp)), virtualInboundListener(proxy, push)];
}
