// apps/v1 Deployments and ReplicaSets (the controllers live in cluster/controllers).
import type { StatusCause } from '../../../api/kube/types.js';
import { matchesSelector } from '../../../api/kube/labels.js';
import type { LabelSelector } from '../../../api/kube/types.js';
import { fieldImmutable, fieldInvalid, fieldRequired } from '../errors.js';
import { child, deepEqual, getPath, isObj, stringMap, type Json } from '../util.js';
import type { KindInfo } from '../registry/types.js';
import { age, col, formatLabelSelector, kind, nameColumn, podTemplateDefaults, validatePodSpec } from './common.js';

function validateWorkload(obj: Json): StatusCause[] {
  const errs: StatusCause[] = [];
  const sel = getPath(obj, 'spec.selector');
  const hasSel = isObj(sel) && (Object.keys(isObj(sel.matchLabels) ? sel.matchLabels : {}).length > 0 || (Array.isArray(sel.matchExpressions) && sel.matchExpressions.length > 0));
  if (!hasSel) errs.push(fieldRequired('spec.selector'));
  const labels = stringMap(getPath(obj, 'spec.template.metadata.labels'));
  if (hasSel && !matchesSelector(sel as LabelSelector, labels)) {
    errs.push(fieldInvalid('spec.template.metadata.labels', labels, '`selector` does not match template `labels`'));
  }
  const r = getPath(obj, 'spec.replicas');
  if (typeof r !== 'number' || r < 0 || !Number.isInteger(r)) errs.push(fieldInvalid('spec.replicas', r, 'must be greater than or equal to 0'));
  errs.push(...validatePodSpec(getPath(obj, 'spec.template.spec'), 'spec.template.spec'));
  return errs;
}

function selectorImmutable(obj: Json, old: Json): StatusCause[] {
  return deepEqual(getPath(obj, 'spec.selector'), getPath(old, 'spec.selector')) ? [] : [fieldImmutable('spec.selector')];
}

const scale = { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' };

export const appsKinds: KindInfo[] = [
  kind({
    group: 'apps', version: 'v1', resource: 'deployments', kind: 'Deployment', shortNames: ['deploy'], categories: ['all'], status: true, scale,
    strategy: {
      defaults(d) {
        const spec = child(d, 'spec');
        spec.replicas ??= 1;
        const strategy = child(spec, 'strategy');
        strategy.type ??= 'RollingUpdate';
        if (strategy.type === 'RollingUpdate') {
          const ru = child(strategy, 'rollingUpdate');
          ru.maxUnavailable ??= '25%';
          ru.maxSurge ??= '25%';
        }
        spec.revisionHistoryLimit ??= 10;
        spec.progressDeadlineSeconds ??= 600;
        podTemplateDefaults(d);
      },
      validate: validateWorkload,
      validateUpdate: (d, old) => [...validateWorkload(d), ...selectorImmutable(d, old)],
    },
    table: {
      columns: [nameColumn, col('Ready'), col('Up-to-date'), col('Available'), col('Age'), col('Containers', 1), col('Images', 1), col('Selector', 1)],
      cells(d) {
        const containers = getPath(d, 'spec.template.spec.containers');
        const cs = Array.isArray(containers) ? containers.filter(isObj) : [];
        return [getPath(d, 'metadata.name'), `${String(getPath(d, 'status.readyReplicas') ?? 0)}/${String(getPath(d, 'spec.replicas') ?? 0)}`,
          getPath(d, 'status.updatedReplicas') ?? 0, getPath(d, 'status.availableReplicas') ?? 0, age(d),
          cs.map((c) => c.name).join(','), cs.map((c) => c.image).join(','), formatLabelSelector(getPath(d, 'spec.selector'))];
      },
    },
  }),
  kind({
    group: 'apps', version: 'v1', resource: 'replicasets', kind: 'ReplicaSet', shortNames: ['rs'], categories: ['all'], status: true, scale,
    strategy: {
      defaults(rs) {
        child(rs, 'spec').replicas ??= 1;
        podTemplateDefaults(rs);
      },
      validate: validateWorkload,
      validateUpdate: (rs, old) => [...validateWorkload(rs), ...selectorImmutable(rs, old)],
    },
    table: {
      columns: [nameColumn, col('Desired'), col('Current'), col('Ready'), col('Age'), col('Containers', 1), col('Images', 1), col('Selector', 1)],
      cells(rs) {
        const containers = getPath(rs, 'spec.template.spec.containers');
        const cs = Array.isArray(containers) ? containers.filter(isObj) : [];
        return [getPath(rs, 'metadata.name'), getPath(rs, 'spec.replicas') ?? 0, getPath(rs, 'status.replicas') ?? 0, getPath(rs, 'status.readyReplicas') ?? 0, age(rs),
          cs.map((c) => c.name).join(','), cs.map((c) => c.image).join(','), formatLabelSelector(getPath(rs, 'spec.selector'))];
      },
    },
  }),
];
