// xDS for gateway proxies (node type `router`): one listener per gateway port bound to
// 0.0.0.0:<port> (no interception), its HCM reading route configuration `http.<port>`,
// whose virtual hosts come from the VirtualServices bound to the Gateways' servers.
// Clusters and endpoints are the mesh's outbound ones; a gateway has no inbound side.
import { TYPE_URL } from '../../../api/xds/protos.js';
import type { PushContext } from '../../model/push-context.js';
import type { Proxy } from '../../model/proxy.js';
import { gatewayPorts, serverVirtualHosts, type GatewayPortModel } from '../../model/gateway.js';
import type { VirtualServiceModel } from '../../model/istio-config.js';
import { virtualServiceRoutes, type RouteProxy } from './http-route.js';
import { outboundHttpFilters } from './lds.js';
import { generateOutboundClusters } from './cds.js';
import { outboundListenerName } from './names.js';
import { ADS_CONFIG_SOURCE, HCM_FILTER, socketAddress, type Cluster, type Listener, type RouteConfiguration, type VirtualHost } from './envoy.js';

export type GatewayProxy = Pick<Proxy, 'namespace' | 'workload' | 'inbound'>;

const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB']);

/** Istio's gateway route configuration name. */
export function gatewayRouteName(port: number): string {
  return `http.${port}`;
}

function httpPorts(push: PushContext, proxy: GatewayProxy): GatewayPortModel[] {
  return gatewayPorts(push, proxy).filter((p) => HTTP_PROTOCOLS.has(p.protocol));
}

export function gatewayListeners(push: PushContext, proxy: GatewayProxy): Listener[] {
  return httpPorts(push, proxy).map(({ port }) => ({
    name: outboundListenerName(port),
    address: socketAddress('0.0.0.0', port),
    trafficDirection: 'OUTBOUND',
    filterChains: [{
      filters: [{
        name: HCM_FILTER,
        typedConfig: {
          '@type': TYPE_URL.httpConnectionManager,
          statPrefix: `outbound_0.0.0.0_${port}`,
          rds: { routeConfigName: gatewayRouteName(port), configSource: ADS_CONFIG_SOURCE },
          httpFilters: outboundHttpFilters(),
        },
      }],
    }],
  }));
}

function domainsFor(host: string): string[] {
  return host === '*' ? ['*'] : [host, `${host}:*`];
}

export function gatewayRoutes(push: PushContext, proxy: GatewayProxy): RouteConfiguration[] {
  return httpPorts(push, proxy).map(({ port, serverPort, servers }) => {
    // Hosts of every server on the port, each with its VirtualServices (merged, oldest first).
    const hosts = new Map<string, { vss: VirtualServiceModel[]; gateway: string }>();
    for (const server of servers) {
      for (const [host, vss] of serverVirtualHosts(push, server, proxy.namespace)) {
        const seen = hosts.get(host);
        if (!seen) hosts.set(host, { vss: [...vss], gateway: server.gateway });
        else for (const vs of vss) if (!seen.vss.includes(vs)) seen.vss.push(vs);
      }
    }
    const virtualHosts: VirtualHost[] = [...hosts.entries()].map(([host, { vss, gateway }]) => {
      const rp: RouteProxy = { namespace: proxy.namespace, labels: proxy.workload.labels, gateway };
      return { name: `${host}:${serverPort}`, domains: domainsFor(host), routes: vss.flatMap((vs) => virtualServiceRoutes(push, vs, serverPort, rp)) };
    });
    // Istio answers requests for hosts no VirtualService serves with 404.
    if (!virtualHosts.length) {
      virtualHosts.push({ name: `blackhole:${serverPort}`, domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, directResponse: { status: 404 } }] });
    }
    return { name: gatewayRouteName(port), virtualHosts };
  });
}

export function gatewayClusters(push: PushContext, proxy: GatewayProxy): Cluster[] {
  return generateOutboundClusters(push, proxy.namespace);
}
