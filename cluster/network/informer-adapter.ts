import { Informer, R, type KubeClient } from '../../api/kube/index.js';
import type { Endpoints, Pod, Service } from '../../api/kube/types.js';
import type { ServiceProxy } from './service-proxy.js';
import type { ClusterDNS } from './dns.js';
import type { Pod as DnsPod } from './kube-types.js';
import { syncLoadBalancerStatus } from './loadbalancer-status.js';

export interface NetworkControllers {
  /** Resolves once the informers have listed and the first state was handed over. */
  ready: Promise<void>;
  stop(): void;
}

export interface NetworkTargets {
  proxy?: ServiceProxy;
  dns?: ClusterDNS;
  /** Publish 127.0.0.1 in status.loadBalancer.ingress of LoadBalancer services. Default true. */
  loadBalancerStatus?: boolean;
}

/**
 * Feeds the service proxy and the cluster DNS from Service, Endpoints (and, for DNS, Pod)
 * informers. Both consumers are level-triggered (they take the whole state), so every event
 * just hands over the current caches; the proxy debounces, the DNS zone rebuild is cheap.
 */
export function runNetworkControllers(client: KubeClient, targets: NetworkTargets): NetworkControllers {
  const services = new Informer<Service>(client, R.services);
  const endpoints = new Informer<Endpoints>(client, R.endpoints);
  // Pods only matter for DNS (`<hostname>.<subdomain>` records).
  const pods = targets.dns ? new Informer<Pod>(client, R.pods) : undefined;
  const publishLB = targets.loadBalancerStatus ?? true;
  let synced = false;
  // The api types declare no hostname/subdomain on PodSpec; the DNS reads them structurally.
  const podList = (): DnsPod[] => (pods?.list() ?? []) as unknown as DnsPod[];
  const pushDNS = (): void => {
    if (synced) targets.dns?.update(services.list(), endpoints.list(), podList());
  };
  const push = (): void => {
    // Never program a partial view: before both lists arrived, services would look endpoint-less.
    if (!synced) return;
    const svcs = services.list();
    const eps = endpoints.list();
    targets.proxy?.update(svcs, eps);
    targets.dns?.update(svcs, eps, podList());
  };
  const lb = (svc: Service): void => {
    if (!publishLB) return;
    syncLoadBalancerStatus(client, svc).catch((e: Error) => {
      console.error(`network: service ${svc.metadata.namespace}/${svc.metadata.name} status.loadBalancer: ${e.message}`);
    });
  };
  services.on({ add: (s) => { lb(s); push(); }, update: (_o, s) => { lb(s); push(); }, delete: push }).start();
  endpoints.on({ add: push, update: push, delete: push }).start();
  pods?.on({ add: pushDNS, update: pushDNS, delete: pushDNS }).start();
  const ready = Promise.all([services.waitForSync(), endpoints.waitForSync(), pods?.waitForSync()]).then(async () => {
    synced = true;
    const svcs = services.list();
    const eps = endpoints.list();
    targets.dns?.update(svcs, eps, podList());
    await targets.proxy?.sync(svcs, eps);
  });
  return {
    ready,
    stop: () => {
      services.stop();
      endpoints.stop();
      pods?.stop();
      targets.proxy?.stop();
    },
  };
}
