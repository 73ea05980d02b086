// apps/v1 StatefulSets, DaemonSets and ControllerRevisions, and batch/v1 Jobs: their
// defaults and validation (the controllers live in cluster/controllers).
import type { StatusCause } from '../../../api/kube/types.js';
import { matchesSelector } from '../../../api/kube/labels.js';
import type { LabelSelector } from '../../../api/kube/types.js';
import { fieldImmutable, fieldInvalid, fieldNotSupported, fieldRequired } from '../errors.js';
import { child, deepEqual, getPath, isObj, stringMap, type Json } from '../util.js';
import type { KindInfo } from '../registry/types.js';
import { age, col, formatLabels, formatLabelSelector, kind, nameColumn, podTemplateDefaults, validatePodSpec } from './common.js';

function validateTemplate(obj: Json, selectorRequired = true): StatusCause[] {
  const errs: StatusCause[] = [];
  const sel = getPath(obj, 'spec.selector');
  const hasSel = isObj(sel) && (Object.keys(isObj(sel.matchLabels) ? sel.matchLabels : {}).length > 0 || (Array.isArray(sel.matchExpressions) && sel.matchExpressions.length > 0));
  if (!hasSel && selectorRequired) errs.push(fieldRequired('spec.selector'));
  const labels = stringMap(getPath(obj, 'spec.template.metadata.labels'));
  if (hasSel && !matchesSelector(sel as LabelSelector, labels)) {
    errs.push(fieldInvalid('spec.template.metadata.labels', labels, '`selector` does not match template `labels`'));
  }
  errs.push(...validatePodSpec(getPath(obj, 'spec.template.spec'), 'spec.template.spec'));
  return errs;
}

function immutable(obj: Json, old: Json, ...paths: string[]): StatusCause[] {
  return paths.filter((p) => !deepEqual(getPath(obj, p), getPath(old, p))).map((p) => fieldImmutable(p));
}

function nonNegativeInt(obj: Json, path: string): StatusCause[] {
  const v = getPath(obj, path);
  return v === undefined || (typeof v === 'number' && Number.isInteger(v) && v >= 0) ? [] : [fieldInvalid(path, v, 'must be greater than or equal to 0')];
}

const scale = { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' };

const jobLabels = (uid: string, name: string): Record<string, string> => ({
  'batch.kubernetes.io/controller-uid': uid, 'controller-uid': uid, 'batch.kubernetes.io/job-name': name, 'job-name': name,
});

export const workloadKinds: KindInfo[] = [
  kind({
    group: 'apps', version: 'v1', resource: 'statefulsets', kind: 'StatefulSet', shortNames: ['sts'], categories: ['all'], status: true, scale,
    strategy: {
      defaults(s) {
        const spec = child(s, 'spec');
        spec.replicas ??= 1;
        spec.podManagementPolicy ??= 'OrderedReady';
        child(spec, 'updateStrategy').type ??= 'RollingUpdate';
        spec.revisionHistoryLimit ??= 10;
        podTemplateDefaults(s);
      },
      validate: (s) => {
        const errs = [...validateTemplate(s), ...nonNegativeInt(s, 'spec.replicas')];
        const policy = getPath(s, 'spec.podManagementPolicy');
        if (policy !== 'OrderedReady' && policy !== 'Parallel') errs.push(fieldNotSupported('spec.podManagementPolicy', policy, ['OrderedReady', 'Parallel']));
        return errs;
      },
      validateUpdate: (s, old) => [...validateTemplate(s), ...nonNegativeInt(s, 'spec.replicas'), ...immutable(s, old, 'spec.selector', 'spec.serviceName', 'spec.podManagementPolicy')],
    },
    table: {
      columns: [nameColumn, col('Ready'), col('Age'), col('Containers', 1), col('Images', 1)],
      cells: (s) => [getPath(s, 'metadata.name'), `${String(getPath(s, 'status.readyReplicas') ?? 0)}/${String(getPath(s, 'spec.replicas') ?? 0)}`, age(s),
        containerList(s, 'name'), containerList(s, 'image')],
    },
  }),
  kind({
    group: 'apps', version: 'v1', resource: 'daemonsets', kind: 'DaemonSet', shortNames: ['ds'], categories: ['all'], status: true,
    strategy: {
      defaults(d) {
        const strategy = child(child(d, 'spec'), 'updateStrategy');
        strategy.type ??= 'RollingUpdate';
        if (strategy.type === 'RollingUpdate') child(strategy, 'rollingUpdate').maxUnavailable ??= 1;
        child(d, 'spec').revisionHistoryLimit ??= 10;
        podTemplateDefaults(d);
      },
      validate: (d) => validateTemplate(d),
      validateUpdate: (d, old) => [...validateTemplate(d), ...immutable(d, old, 'spec.selector')],
    },
    table: {
      columns: [nameColumn, col('Desired'), col('Current'), col('Ready'), col('Up-to-date'), col('Available'), col('Node Selector'), col('Age'), col('Containers', 1), col('Images', 1), col('Selector', 1)],
      cells: (d) => [getPath(d, 'metadata.name'), getPath(d, 'status.desiredNumberScheduled') ?? 0, getPath(d, 'status.currentNumberScheduled') ?? 0,
        getPath(d, 'status.numberReady') ?? 0, getPath(d, 'status.updatedNumberScheduled') ?? 0, getPath(d, 'status.numberAvailable') ?? 0,
        formatLabels(getPath(d, 'spec.template.spec.nodeSelector')), age(d), containerList(d, 'name'), containerList(d, 'image'), formatLabelSelector(getPath(d, 'spec.selector'))],
    },
  }),
  kind({
    group: 'apps', version: 'v1', resource: 'controllerrevisions', kind: 'ControllerRevision',
    strategy: {
      validate: (r) => nonNegativeInt(r, 'revision'),
      validateUpdate: (r, old) => immutable(r, old, 'data'),
    },
    table: { columns: [nameColumn, col('Controller'), col('Revision'), col('Age')], cells: (r) => [getPath(r, 'metadata.name'), ownerName(r), getPath(r, 'revision') ?? 0, age(r)] },
  }),
  kind({
    group: 'batch', version: 'v1', resource: 'jobs', kind: 'Job', categories: ['all'], status: true,
    strategy: {
      defaults(j) {
        const spec = child(j, 'spec');
        spec.parallelism ??= 1;
        if (spec.completions === undefined && spec.parallelism === 1) spec.completions = 1;
        spec.backoffLimit ??= 6;
        spec.completionMode ??= 'NonIndexed';
        spec.suspend ??= false;
        podTemplateDefaults(j);
      },
      // The selector names this Job's uid, which exists only now (Kubernetes does the same).
      prepareForCreate(j) {
        const spec = child(j, 'spec');
        if (spec.manualSelector === true) return;
        const uid = String(getPath(j, 'metadata.uid'));
        const labels = jobLabels(uid, String(getPath(j, 'metadata.name')));
        spec.selector = { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } };
        const tmeta = child(child(spec, 'template'), 'metadata');
        tmeta.labels = { ...stringMap(tmeta.labels), ...labels };
      },
      validate: (j) => validateJob(j),
      validateUpdate: (j, old) => [...validateJob(j), ...immutable(j, old, 'spec.selector', 'spec.template', 'spec.completions')],
    },
    table: {
      columns: [nameColumn, col('Status'), col('Completions'), col('Duration'), col('Age'), col('Containers', 1), col('Images', 1), col('Selector', 1)],
      cells: (j) => [getPath(j, 'metadata.name'), jobStatus(j), `${String(getPath(j, 'status.succeeded') ?? 0)}/${String(getPath(j, 'spec.completions') ?? 1)}`,
        duration(j), age(j), containerList(j, 'name'), containerList(j, 'image'), formatLabelSelector(getPath(j, 'spec.selector'))],
    },
  }),
];

function validateJob(j: Json): StatusCause[] {
  const errs = [...validateTemplate(j, false), ...nonNegativeInt(j, 'spec.parallelism'), ...nonNegativeInt(j, 'spec.backoffLimit'), ...nonNegativeInt(j, 'spec.completions')];
  const policy = getPath(j, 'spec.template.spec.restartPolicy');
  if (policy !== 'Never' && policy !== 'OnFailure') errs.push(fieldNotSupported('spec.template.spec.restartPolicy', policy, ['OnFailure', 'Never']));
  const deadline = getPath(j, 'spec.activeDeadlineSeconds');
  if (deadline !== undefined && !(typeof deadline === 'number' && deadline > 0)) errs.push(fieldInvalid('spec.activeDeadlineSeconds', deadline, 'must be greater than 0'));
  return errs;
}

function containerList(obj: Json, field: 'name' | 'image'): string {
  const cs = getPath(obj, 'spec.template.spec.containers');
  return Array.isArray(cs) ? cs.filter(isObj).map((c) => String(c[field] ?? '')).join(',') : '';
}

function ownerName(obj: Json): string {
  const refs = getPath(obj, 'metadata.ownerReferences');
  const ref = Array.isArray(refs) ? refs.find((r) => isObj(r) && r.controller === true) : undefined;
  return isObj(ref) ? `${String(ref.kind).toLowerCase()}.apps/${String(ref.name)}` : '<none>';
}

function jobStatus(j: Json): string {
  const conds = getPath(j, 'status.conditions');
  const list = Array.isArray(conds) ? conds.filter(isObj) : [];
  if (list.some((c) => c.type === 'Complete' && c.status === 'True')) return 'Complete';
  if (list.some((c) => c.type === 'Failed' && c.status === 'True')) return 'Failed';
  return 'Running';
}

function duration(j: Json): string {
  const start = getPath(j, 'status.startTime');
  if (typeof start !== 'string') return '';
  const end = getPath(j, 'status.completionTime');
  const secs = Math.max(0, Math.round(((typeof end === 'string' ? Date.parse(end) : Date.now()) - Date.parse(start)) / 1000));
  return secs < 120 ? `${secs}s` : `${Math.round(secs / 60)}m`;
}
