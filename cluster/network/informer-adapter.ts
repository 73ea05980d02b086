import { Informer, R, type KubeClient } from '../../api/kube/index.js';
import type { Endpoints, Service } from '../../api/kube/types.js';
import type { ServiceProxy } from './service-proxy.js';
import type { ClusterDNS } from './dns.js';

export interface NetworkControllers {
  /** Resolves once both informers have listed and the first state was handed over. */
  ready: Promise<void>;
  stop(): void;
}

/**
 * Feeds the service proxy and the cluster DNS from Service and Endpoints informers. Both
 * consumers are level-triggered (they take the whole state), so every event just hands
 * over the current caches; the proxy debounces, the DNS zone rebuild is cheap.
 */
export function runNetworkControllers(client: KubeClient, targets: { proxy?: ServiceProxy; dns?: ClusterDNS }): NetworkControllers {
  const services = new Informer<Service>(client, R.services);
  const endpoints = new Informer<Endpoints>(client, R.endpoints);
  let synced = false;
  const push = (): void => {
    // Never program a partial view: before both lists arrived, services would look endpoint-less.
    if (!synced) return;
    const svcs = services.list();
    const eps = endpoints.list();
    targets.proxy?.update(svcs, eps);
    targets.dns?.update(svcs, eps);
  };
  const handlers = { add: push, update: push, delete: push };
  services.on(handlers).start();
  endpoints.on(handlers).start();
  const ready = Promise.all([services.waitForSync(), endpoints.waitForSync()]).then(async () => {
    synced = true;
    const svcs = services.list();
    const eps = endpoints.list();
    targets.dns?.update(svcs, eps);
    await targets.proxy?.sync(svcs, eps);
  });
  return {
    ready,
    stop: () => {
      services.stop();
      endpoints.stop();
      targets.proxy?.stop();
    },
  };
}
