// The controller manager: every controller of the embedded cluster over one set of shared
// informers, talking to the apiserver only through the public API (like
// kube-controller-manager).
import type { KubeClient } from '../../api/kube/index.js';
import { DeploymentController } from './deployment.js';
import { EndpointsController } from './endpoints.js';
import { GarbageCollector } from './garbage-collector.js';
import { NamespaceController } from './namespace.js';
import { ReplicaSetController } from './replicaset.js';
import { RootCAPublisher } from './rootca.js';
import { ServiceAccountController } from './serviceaccount.js';
import { SharedInformers } from './shared-informers.js';

export interface ControllerOptions {
  client: KubeClient;
  /** The cluster CA (PEM), published to every namespace as ConfigMap kube-root-ca.crt. */
  rootCAPem: string;
}

export async function startControllers(opts: ControllerOptions): Promise<{ stop(): void }> {
  const informers = new SharedInformers(opts.client);
  const controllers = [
    new DeploymentController(opts.client, informers),
    new ReplicaSetController(opts.client, informers),
    new EndpointsController(opts.client, informers),
    new ServiceAccountController(opts.client, informers),
    new RootCAPublisher(opts.client, informers, opts.rootCAPem),
    new NamespaceController(opts.client, informers),
    new GarbageCollector(opts.client, informers),
  ];
  informers.start();
  try {
    await informers.waitForSync();
  } catch (e) {
    informers.stop();
    for (const c of controllers) c.stop();
    throw e;
  }
  return {
    stop() {
      informers.stop();
      for (const c of controllers) c.stop();
    },
  };
}

export { SharedInformers } from './shared-informers.js';
export { podTemplateHash, TEMPLATE_HASH_LABEL, REVISION_ANNOTATION } from './deployment-util.js';
