// The workload a pod belongs to, as Istio derives it (kube.GetDeployMetaFromPod): the
// Deployment's name for ReplicaSet pods, else the controller's name, else the app label.
import type { Pod } from '../api/kube/index.js';

function trimHash(name: string, hash: string | undefined): string {
  if (hash && name.endsWith(`-${hash}`)) return name.slice(0, -(hash.length + 1));
  return name;
}

export function workloadName(pod: Pod): string {
  const labels = pod.metadata.labels ?? {};
  const hash = labels['pod-template-hash'];
  const controller = pod.metadata.ownerReferences?.find((o) => o.controller) ?? pod.metadata.ownerReferences?.[0];
  if (controller) {
    if (controller.kind === 'ReplicaSet') {
      if (hash) return trimHash(controller.name, hash);
      // A ReplicaSet not made by a Deployment is its own workload.
      return controller.name;
    }
    return controller.name;
  }
  const generateName = pod.metadata.generateName?.replace(/-$/, '');
  if (generateName) {
    return trimHash(generateName, hash);
  }
  return labels.app ?? labels['app.kubernetes.io/name'] ?? pod.metadata.name ?? '';
}
