// The embedded cluster's "cloud": a LoadBalancer Service is served as a NodePort service
// on this host, so its load balancer address is the host's loopback, published in
// status.loadBalancer.ingress the way a cloud controller publishes its LB address.
import { R, isConflict, isNotFound, type KubeClient } from '../../api/kube/index.js';
import type { Service } from '../../api/kube/types.js';

export const LOOPBACK_INGRESS = '127.0.0.1';

/** The status a Service should have, or undefined when it is already right (or not ours to set). */
export function desiredLoadBalancerStatus(svc: Service): Record<string, unknown> | undefined {
  const status = svc.status ?? {};
  const lb = status.loadBalancer as { ingress?: { ip?: string }[] } | undefined;
  if (svc.spec.type === 'LoadBalancer') {
    const ingress = lb?.ingress ?? [];
    if (ingress.length === 1 && ingress[0].ip === LOOPBACK_INGRESS && Object.keys(ingress[0]).length === 1) return undefined;
    return { ...status, loadBalancer: { ingress: [{ ip: LOOPBACK_INGRESS }] } };
  }
  // No longer a LoadBalancer: withdraw the address we published.
  if (lb?.ingress?.length) return { ...status, loadBalancer: {} };
  return undefined;
}

/** Writes the status; conflicts and vanished services are left to the next event. */
export async function syncLoadBalancerStatus(client: KubeClient, svc: Service): Promise<void> {
  const status = desiredLoadBalancerStatus(svc);
  if (!status) return;
  try {
    await client.updateStatus<Service>(R.services, { ...svc, status });
  } catch (e) {
    if (!isConflict(e) && !isNotFound(e)) throw e;
  }
}
