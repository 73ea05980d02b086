// EDS: a ClusterLoadAssignment for every outbound cluster, subset clusters narrowed to the
// endpoints whose pod labels match the subset.
import type { PushContext } from '../../model/push-context.js';
import { proxyClusterNames } from './outbound.js';
import type { SidecarScope } from '../../model/sidecar-scope.js';
import { parseOutboundClusterName } from './names.js';
import { socketAddress, type ClusterLoadAssignment } from './envoy.js';
import { withTlsModeMetadata } from '../../security/outbound.js';

export function loadAssignment(push: PushContext, clusterName: string, namespace?: string): ClusterLoadAssignment {
  const parsed = parseOutboundClusterName(clusterName);
  const eps = parsed && push.service(parsed.fqdn)?.ports.some((p) => p.port === parsed.port)
    ? push.endpoints(parsed.fqdn, parsed.port, parsed.subset || undefined, namespace)
    : [];
  return {
    clusterName,
    endpoints: eps.length ? [{ lbEndpoints: eps.map((ep) => withTlsModeMetadata(push, ep, { endpoint: { address: socketAddress(ep.address, ep.port) } })) }] : [],
  };
}

/** Subsets are looked up in the DestinationRule the proxy's namespace sees (exportTo). */
export function generateEndpoints(push: PushContext, namespace?: string, scope?: SidecarScope): ClusterLoadAssignment[] {
  return proxyClusterNames(push, scope, namespace).map((name) => loadAssignment(push, name, namespace));
}
