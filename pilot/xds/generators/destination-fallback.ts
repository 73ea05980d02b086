// Make-before-break for route destinations (a deliberate difference from Istio, which sends
// such traffic to a cluster with no endpoints, i.e. 503s): a destination whose host has no
// service, whose subset no DestinationRule defines yet, or which has no ready endpoint gets
// no share of a split while another destination of the rule can take it; and a rule whose
// only destinations name undefined subsets goes to the whole service instead. The problems
// stay reported (VirtualService status, `trellis analyze`, /debug/warnings).
import type { Destination } from '../../../api/istio/index.js';
import type { PushContext } from '../../model/push-context.js';

export interface Weighted<T extends { destination: Destination }> { d: T; weight: number }

/** The service port a destination reaches (Istio's rule: the single port, else the listener's). */
export function destinationPort(push: PushContext, namespace: string, dest: Destination, listenerPort: number): number {
  const svc = push.service(push.resolve(dest.host, namespace));
  return dest.port?.number ?? (svc && svc.ports.length === 1 ? svc.ports[0].port : listenerPort);
}

function usable(push: PushContext, namespace: string, dest: Destination, listenerPort: number): boolean {
  const fqdn = push.resolve(dest.host, namespace);
  const svc = push.service(fqdn);
  if (!svc) return false;
  if (dest.subset && !push.subset(fqdn, dest.subset, namespace)) return false;
  // ServiceEntry hosts may be resolved by the proxy (DNS) or passed through: no endpoint list to judge.
  if (svc.entry) return true;
  return push.endpoints(fqdn, destinationPort(push, namespace, dest, listenerPort), dest.subset, namespace).length > 0;
}

/** The destinations a rule's traffic should go to, after falling back (see the header). */
export function fallBack<T extends { destination: Destination }>(push: PushContext, namespace: string, weighted: Weighted<T>[], listenerPort: number): Weighted<T>[] {
  const ok = weighted.filter((w) => usable(push, namespace, w.d.destination, listenerPort));
  if (ok.length > 0) return ok.length === weighted.length ? weighted : ok;
  // Nothing usable: an undefined subset of an existing service falls back to the service.
  return weighted.map((w) => {
    const { host, subset } = w.d.destination;
    const fqdn = push.resolve(host, namespace);
    if (!subset || !push.service(fqdn) || push.subset(fqdn, subset, namespace)) return w;
    const { subset: _dropped, ...whole } = w.d.destination;
    return { ...w, d: { ...w.d, destination: whole } };
  });
}
