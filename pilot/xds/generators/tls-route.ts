// VirtualService `tls` rules on an outbound TLS/HTTPS service port: the connection is not
// terminated; the tls_inspector reads its SNI and a filter chain per rule matches it by
// filterChainMatch.serverNames, then TCP-proxies to the rule's destinations. Connections
// matching no rule take the service's own chain.
import type { PushContext } from '../../model/push-context.js';
import type { ServiceModel } from '../../model/service.js';
import { destinationCluster, sourceMatches, weightedDestinations, type RouteProxy } from './http-route.js';
import { fallBack } from './destination-fallback.js';
import { tcpProxy, weightedTcpProxy, type FilterChain } from './envoy.js';

export function tlsRouteChains(push: PushContext, svc: ServiceModel, port: number, proxy: RouteProxy): FilterChain[] {
  const chains: FilterChain[] = [];
  const seen = new Set<string>();
  for (const vs of push.virtualServicesFor(svc.fqdn, proxy.namespace)) {
    (vs.tls ?? []).forEach((rule, i) => {
      const dests = (rule.route ?? []).filter((d) => d.destination?.host);
      if (!dests.length) return;
      const statPrefix = `outbound|${port}||${svc.fqdn}`;
      const weighted = fallBack(push, vs.namespace, weightedDestinations(dests), port).map(({ d, weight }) => ({ name: destinationCluster(push, vs.namespace, d.destination, port), weight }));
      const filter = weighted.length === 1 ? { ...tcpProxy(weighted[0].name), typedConfig: { ...tcpProxy(weighted[0].name).typedConfig, statPrefix } } : weightedTcpProxy(statPrefix, weighted);
      for (const m of rule.match ?? []) {
        if ((m.port !== undefined && m.port !== port) || !sourceMatches(m, proxy)) continue;
        if (m.gateways?.length && !m.gateways.includes('mesh')) continue;
        // Envoy refuses two chains with the same match: the first rule for a name wins.
        const names = (m.sniHosts ?? []).filter((h) => !seen.has(h));
        if (!names.length) continue;
        for (const h of names) seen.add(h);
        chains.push({ name: `${vs.namespace}/${vs.name}.tls[${i}]`, filterChainMatch: { serverNames: names }, filters: [filter] });
      }
    });
  }
  return chains;
}
