// LDS: virtualOutbound (15001) hands captured connections to the per-port listeners by
// original destination; virtualInbound (15006) serves the proxy's own ports.
import { TYPE_URL } from '../../../api/xds/protos.js';
import type { PushContext } from '../../model/push-context.js';
import type { Proxy } from '../../model/proxy.js';
import { outboundPorts } from './outbound.js';
import {
  INBOUND_CAPTURE_PORT, INBOUND_PASSTHROUGH_CLUSTER, OUTBOUND_CAPTURE_PORT, PASSTHROUGH_CLUSTER,
  VIRTUAL_INBOUND, VIRTUAL_OUTBOUND, inboundClusterName, outboundListenerName, routeConfigName,
} from './names.js';
import {
  ADS_CONFIG_SOURCE, HCM_FILTER, ORIGINAL_DST_FILTER, ORIGINAL_DST_TYPE_URL, routerFilter, socketAddress, tcpProxy,
  type FilterChain, type Listener,
} from './envoy.js';

export function virtualOutboundListener(): Listener {
  return {
    name: VIRTUAL_OUTBOUND,
    address: socketAddress('0.0.0.0', OUTBOUND_CAPTURE_PORT),
    trafficDirection: 'OUTBOUND',
    useOriginalDst: { value: true },
    filterChains: [{ name: PASSTHROUGH_CLUSTER, filters: [tcpProxy(PASSTHROUGH_CLUSTER)] }],
  };
}

export function outboundHttpListener(port: number): Listener {
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
          httpFilters: [routerFilter()],
        },
      }],
    }],
  };
}

function inboundChain(port: number): FilterChain {
  const cluster = inboundClusterName(port);
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
      },
    }],
  };
}

export function virtualInboundListener(proxy: Pick<Proxy, 'inbound'>): Listener {
  return {
    name: VIRTUAL_INBOUND,
    address: socketAddress('0.0.0.0', INBOUND_CAPTURE_PORT),
    trafficDirection: 'INBOUND',
    listenerFilters: [{ name: ORIGINAL_DST_FILTER, typedConfig: { '@type': ORIGINAL_DST_TYPE_URL } }],
    filterChains: [
      ...proxy.inbound.map(({ port }) => inboundChain(port)),
      { name: INBOUND_PASSTHROUGH_CLUSTER, filters: [tcpProxy(INBOUND_PASSTHROUGH_CLUSTER)] },
    ],
  };
}

export function generateOutboundListeners(push: PushContext): Listener[] {
  return [virtualOutboundListener(), ...outboundPorts(push).map(outboundHttpListener)];
}

export function generateListeners(push: PushContext, proxy: Pick<Proxy, 'inbound'>): Listener[] {
  return [...generateOutboundListeners(push), virtualInboundListener(proxy)];
}
