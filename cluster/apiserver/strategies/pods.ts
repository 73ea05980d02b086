// Pods: defaults, the ServiceAccount admission step, validation, graceful deletion, table.
import type { StatusCause } from '../../../api/kube/types.js';
import { fieldForbidden } from '../errors.js';
import { child, childArray, clone, deepEqual, getPath, isObj, randomSuffix, str, type Json } from '../util.js';
import type { KindInfo, Strategy } from '../registry/types.js';
import { age, col, kind, nameColumn, podSpecDefaults, validatePodSpec } from './common.js';

export const SA_MOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Kubernetes' ServiceAccount admission plugin: default SA and the projected token volume. */
function admitServiceAccount(pod: Json): void {
  const spec = child(pod, 'spec');
  const sa = str(spec.serviceAccountName) || str(spec.serviceAccount) || 'default';
  spec.serviceAccountName = sa;
  spec.serviceAccount = sa;
  if (spec.automountServiceAccountToken === false) return;
  const containers = [...childArray(spec, 'initContainers'), ...childArray(spec, 'containers')].filter(isObj);
  const needs = containers.filter((c) => !childArray(c, 'volumeMounts').some((m) => isObj(m) && m.mountPath === SA_MOUNT_PATH));
  if (needs.length === 0) return;
  const volumes = childArray(spec, 'volumes');
  const existing = volumes.find((v) => isObj(v) && typeof v.name === 'string' && v.name.startsWith('kube-api-access-'));
  const name = isObj(existing) && typeof existing.name === 'string' ? existing.name : `kube-api-access-${randomSuffix(5)}`;
  if (!existing) {
    volumes.push({
      name,
      projected: {
        defaultMode: 420,
        sources: [
          { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
        ],
      },
    });
    spec.volumes = volumes;
  }
  for (const c of needs) {
    const mounts = childArray(c, 'volumeMounts');
    mounts.push({ name, readOnly: true, mountPath: SA_MOUNT_PATH });
    c.volumeMounts = mounts;
  }
}

/** Pod spec fields that may change after creation (as in Kubernetes' ValidatePodUpdate). */
function validatePodSpecUpdate(spec: unknown, old: unknown): StatusCause[] {
  if (!isObj(spec) || !isObj(old)) return [];
  const a = clone(spec);
  const b = clone(old);
  for (const s of [a, b]) {
    delete s.activeDeadlineSeconds;
    delete s.tolerations;
    for (const list of ['containers', 'initContainers']) for (const c of childArray(s, list)) if (isObj(c)) delete c.image;
  }
  if (deepEqual(a, b)) return [];
  return [fieldForbidden('spec', 'pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds` or `spec.tolerations` (only additions to existing tolerations)')];
}

function podStatusText(pod: Json): string {
  if (getPath(pod, 'metadata.deletionTimestamp')) return 'Terminating';
  let reason = str(getPath(pod, 'status.reason')) ?? str(getPath(pod, 'status.phase')) ?? 'Unknown';
  for (const cs of childArray(isObj(pod.status) ? pod.status : {}, 'containerStatuses')) {
    const w = getPath(cs, 'state.waiting.reason');
    const t = getPath(cs, 'state.terminated.reason');
    if (typeof w === 'string' && w !== '') reason = w;
    else if (typeof t === 'string' && t !== '' && reason === 'Running') reason = t;
  }
  return reason;
}

const podStrategy: Strategy = {
  defaults(pod) {
    podSpecDefaults(child(pod, 'spec'));
  },
  admit(pod, _ctx, op) {
    if (op === 'CREATE') admitServiceAccount(pod);
  },
  prepareForCreate(pod) {
    pod.status = { phase: 'Pending', qosClass: 'BestEffort' };
  },
  validate(pod) {
    return validatePodSpec(pod.spec, 'spec');
  },
  validateUpdate(pod, old) {
    return [...validatePodSpec(pod.spec, 'spec'), ...validatePodSpecUpdate(pod.spec, old.spec)];
  },
  gracePeriod(pod, requested) {
    if (!str(getPath(pod, 'spec.nodeName'))) return 0; // never ran: nothing to stop
    const phase = getPath(pod, 'status.phase');
    if (phase === 'Succeeded' || phase === 'Failed') return 0;
    if (requested !== undefined) return Math.max(0, requested);
    const t = getPath(pod, 'spec.terminationGracePeriodSeconds');
    return typeof t === 'number' ? t : 30;
  },
  fields(pod) {
    return {
      'spec.nodeName': str(getPath(pod, 'spec.nodeName')),
      'spec.restartPolicy': str(getPath(pod, 'spec.restartPolicy')),
      'spec.schedulerName': str(getPath(pod, 'spec.schedulerName')),
      'spec.serviceAccountName': str(getPath(pod, 'spec.serviceAccountName')),
      'spec.hostNetwork': String(getPath(pod, 'spec.hostNetwork') === true),
      'status.phase': str(getPath(pod, 'status.phase')),
      'status.podIP': str(getPath(pod, 'status.podIP')),
      'status.nominatedNodeName': str(getPath(pod, 'status.nominatedNodeName')),
    };
  },
};

export const podsKind: KindInfo = kind({
  group: '', version: 'v1', resource: 'pods', kind: 'Pod', shortNames: ['po'], categories: ['all'], status: true,
  strategy: podStrategy,
  extraSubresources: [
    { name: 'binding', kind: 'Binding', verbs: ['create'] },
    { name: 'log', kind: 'Pod', verbs: ['get'] },
  ],
  table: {
    columns: [nameColumn, col('Ready'), col('Status'), col('Restarts', 0, 'string'), col('Age'), col('IP', 1), col('Node', 1)],
    cells(pod) {
      const specs = childArray(isObj(pod.spec) ? pod.spec : {}, 'containers');
      const statuses = childArray(isObj(pod.status) ? pod.status : {}, 'containerStatuses');
      const ready = statuses.filter((s) => isObj(s) && s.ready === true).length;
      const restarts = statuses.reduce<number>((n, s) => n + (isObj(s) && typeof s.restartCount === 'number' ? s.restartCount : 0), 0);
      return [getPath(pod, 'metadata.name'), `${ready}/${specs.length}`, podStatusText(pod), String(restarts), age(pod),
        str(getPath(pod, 'status.podIP')) ?? '<none>', str(getPath(pod, 'spec.nodeName')) ?? '<none>'];
    },
  },
});
