// The controller manager: every controller of the embedded cluster over one set of shared
// informers, talking to the apiserver only through the public API (like
// kube-controller-manager).
import type { KubeClient } from '../../api/kube/index.js';
import { DaemonSetController } from './daemonset.js';
import { DeploymentController } from './deployment.js';
import { resourcesOf } from './discovery.js';
import { EventRecorder } from './events.js';
import { EndpointsController } from './endpoints.js';
import { GC_MONITORED, GarbageCollector } from './garbage-collector.js';
import { JobController } from './job.js';
import { NamespaceController } from './namespace.js';
import { ReplicaSetController } from './replicaset.js';
import { RootCAPublisher } from './rootca.js';
import { ServiceAccountController } from './serviceaccount.js';
import { SharedInformers } from './shared-informers.js';
import { StatefulSetController } from './statefulset.js';
import { TokenSecretController, type LegacyTokenIssuer } from './token-secrets.js';
import { WR } from './workload-types.js';

export interface ControllerOptions {
  client: KubeClient;
  /** The cluster CA (PEM), published to every namespace as ConfigMap kube-root-ca.crt. */
  rootCAPem: string;
  /**
   * Signs the tokens of service-account-token Secrets (kube-controller-manager's
   * --service-account-private-key-file); without it such Secrets stay empty.
   */
  legacyTokenIssuer?: LegacyTokenIssuer;
  /** Job pod-failure back-off base (default 10 s, as Kubernetes); tests shorten it. */
  jobPodFailureBackoffMs?: number;
}

export async function startControllers(opts: ControllerOptions): Promise<{ stop(): void }> {
  // Workload kinds start only where the apiserver serves them: an informer on a missing
  // resource would never sync.
  const served = await servedWorkloads(opts.client);
  const informers = new SharedInformers(opts.client);
  const rec = (component: string) => new EventRecorder(opts.client, { component });
  const controllers: { stop(): void }[] = [
    new DeploymentController(opts.client, informers, rec('deployment-controller')),
    new ReplicaSetController(opts.client, informers, rec('replicaset-controller')),
    new EndpointsController(opts.client, informers),
    new ServiceAccountController(opts.client, informers),
    new RootCAPublisher(opts.client, informers, opts.rootCAPem),
    new NamespaceController(opts.client, informers),
    // Owners the GC watches: their delete events make it collect the dependents.
    new GarbageCollector(opts.client, informers, [...GC_MONITORED, ...[WR.jobs, WR.statefulSets, WR.daemonSets].filter((r) => served.has(r.resource))]),
  ];
  if (opts.legacyTokenIssuer) controllers.push(new TokenSecretController(opts.client, informers, opts.legacyTokenIssuer, opts.rootCAPem));
  if (served.has('jobs')) controllers.push(new JobController(opts.client, informers, rec('job-controller'), { podFailureBackoffMs: opts.jobPodFailureBackoffMs }));
  if (served.has('statefulsets')) controllers.push(new StatefulSetController(opts.client, informers, rec('statefulset-controller')));
  if (served.has('daemonsets')) controllers.push(new DaemonSetController(opts.client, informers, rec('daemonset-controller')));
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

async function servedWorkloads(client: KubeClient): Promise<Set<string>> {
  const out = new Set<string>();
  for (const r of [WR.jobs, WR.statefulSets, WR.daemonSets]) {
    try {
      if ((await resourcesOf(client, `${r.group}/${r.version}`)).some((x) => x.resource === r.resource)) out.add(r.resource);
    } catch { /* group not served */ }
  }
  return out;
}

export { SharedInformers } from './shared-informers.js';
export { WR, type DaemonSet, type Job, type StatefulSet } from './workload-types.js';
export { EventRecorder, referenceTo, type CoreEvent, type EventSource, type EventType, type ObjectReference } from './events.js';
export { podTemplateHash, TEMPLATE_HASH_LABEL, REVISION_ANNOTATION } from './deployment-util.js';
