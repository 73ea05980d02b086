// EDS: a ClusterLoadAssignment for every outbound cluster, subset clusters narrowed to the
// endpoints whose pod labels match the subset.
import type { PushContext } from '../../model/push-context.js';
import { danglingClusterNames, serviceClusterNames } from './outbound.js';
import { parseOutboundClusterName } from './names.js';
import { socketAddress, type ClusterLoadAssignment } from './envoy.js';

export function loadAssignment(push: PushContext, clusterName: string): ClusterLoadAssignment {
  const parsed = parseOutboundClusterName(clusterName);
  const eps = parsed && push.service(parsed.fqdn)?.ports.some((p) => p.port === parsed.port)
    ? push.endpoints(parsed.fqdn, parsed.port, parsed.subset || undefined)
    : [];
  return {
    clusterName,
    endpoints: eps.length ? [{ lbEndpoints: eps.map((ep) => ({ endpoint: { address: socketAddress(ep.address, ep.port) } })) }] : [],
  };
}

export function generateEndpoints(push: PushContext): ClusterLoadAssignment[] {
  return [...serviceClusterNames(push), ...danglingClusterNames(push)].map((name) => loadAssignment(push, name));
}
