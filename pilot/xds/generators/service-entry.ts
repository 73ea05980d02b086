// Cluster shapes of ServiceEntry hosts by resolution: STATIC stays an EDS cluster (its
// endpoints come from the entry), DNS becomes STRICT_DNS with the names to resolve in the
// cluster itself, NONE becomes ORIGINAL_DST (the proxy forwards to where the client
// connected).
import type { PushContext } from '../../model/push-context.js';
import { parseOutboundClusterName } from './names.js';
import { socketAddress, type Cluster } from './envoy.js';

export function serviceEntryClusterShape(push: PushContext, name: string): Partial<Cluster> | undefined {
  const parsed = parseOutboundClusterName(name);
  const svc = parsed && push.service(parsed.fqdn);
  if (!parsed || !svc?.entry) return undefined;
  if (svc.entry.resolution === 'NONE') return { type: 'ORIGINAL_DST', lbPolicy: 'CLUSTER_PROVIDED', edsClusterConfig: undefined };
  if (svc.entry.resolution === 'DNS') {
    const eps = push.endpoints(parsed.fqdn, parsed.port, parsed.subset || undefined);
    return {
      type: 'STRICT_DNS', edsClusterConfig: undefined, dnsLookupFamily: 'V4_ONLY',
      loadAssignment: { clusterName: name, endpoints: eps.length ? [{ lbEndpoints: eps.map((ep) => ({ endpoint: { address: socketAddress(ep.address, ep.port) } })) }] : [] },
    };
  }
  return undefined;
}
