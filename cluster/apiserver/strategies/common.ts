// Shared pieces of strategies: name validation, pod spec defaults/validation, tables.
import type { StatusCause } from '../../../api/kube/types.js';
import { fieldInvalid, fieldRequired, fieldNotSupported } from '../errors.js';
import { child, childArray, isObj, str, type Json } from '../util.js';
import type { KindInfo, Strategy, TableConvertor } from '../registry/types.js';
import { ALL_VERBS } from '../registry/types.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function validateDnsLabel(field: string, v: unknown): StatusCause[] {
  if (typeof v !== 'string' || v === '') return [fieldRequired(field)];
  if (v.length > 63 || !DNS1123_LABEL.test(v)) {
    return [fieldInvalid(field, v, "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character")];
  }
  return [];
}

export function validateDnsSubdomain(field: string, v: unknown): StatusCause[] {
  if (typeof v !== 'string' || v === '') return [fieldRequired(field)];
  if (v.length > 253 || !DNS1123_SUBDOMAIN.test(v)) {
    return [fieldInvalid(field, v, "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character")];
  }
  return [];
}

export function age(obj: Json): string {
  const ts = str(isObj(obj.metadata) ? obj.metadata.creationTimestamp : undefined);
  if (!ts) return '<unknown>';
  return shortDuration(Date.now() - Date.parse(ts));
}

/** kubectl's HumanDuration: 45s, 5m, 3h, 2d. */
export function shortDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

export const nameColumn = { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0 };
export const ageColumn = { name: 'Age', type: 'string', format: '', description: 'CreationTimestamp is a timestamp representing the server time when this object was created.', priority: 0 };

export const defaultTable: TableConvertor = {
  columns: [nameColumn, ageColumn],
  cells: (o) => [isObj(o.metadata) ? o.metadata.name : '', age(o)],
};

/**
 * A LabelSelector as `kubectl get -o wide` prints it (metav1.FormatLabelSelector): requirements
 * sorted by key, set values sorted, `<none>` when empty.
 */
export function formatLabelSelector(sel: unknown): string {
  if (!isObj(sel)) return '<none>';
  const reqs: [string, string][] = [];
  for (const [k, v] of Object.entries(isObj(sel.matchLabels) ? sel.matchLabels : {})) reqs.push([k, `${k}=${String(v)}`]);
  for (const e of Array.isArray(sel.matchExpressions) ? sel.matchExpressions : []) {
    if (!isObj(e)) continue;
    const key = String(e.key);
    const vals = (Array.isArray(e.values) ? e.values.map(String) : []).sort().join(',');
    const op = e.operator;
    reqs.push([key, op === 'In' ? `${key} in (${vals})` : op === 'NotIn' ? `${key} notin (${vals})` : op === 'Exists' ? key : `!${key}`]);
  }
  reqs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return reqs.length ? reqs.map((r) => r[1]).join(',') : '<none>';
}

/** A string map as labels.FormatLabels prints it: sorted `k=v` pairs, `<none>` when empty. */
export function formatLabels(m: unknown): string {
  const entries = isObj(m) ? Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) : [];
  return entries.length ? entries.map(([k, v]) => `${k}=${String(v)}`).join(',') : '<none>';
}

export function col(name: string, priority = 0, type = 'string'): { name: string; type: string; format: string; description: string; priority: number } {
  return { name, type, format: '', description: name, priority };
}

/** Builds a KindInfo with the common defaults filled in. */
export function kind(p: {
  group: string; version: string; resource: string; kind: string; namespaced?: boolean; shortNames?: string[];
  categories?: string[]; status?: boolean; singular?: string; strategy?: Strategy; table?: TableConvertor; verbs?: string[];
} & Partial<Pick<KindInfo, 'scale' | 'extraSubresources'>>): KindInfo {
  return {
    group: p.group,
    versions: [p.version],
    storageVersion: p.version,
    resource: p.resource,
    kind: p.kind,
    listKind: `${p.kind}List`,
    singular: p.singular ?? p.kind.toLowerCase(),
    namespaced: p.namespaced ?? true,
    shortNames: p.shortNames ?? [],
    categories: p.categories ?? [],
    status: p.status ?? false,
    scale: p.scale,
    extraSubresources: p.extraSubresources,
    verbs: p.verbs ?? ALL_VERBS,
    strategy: p.strategy ?? {},
    table: p.table,
  };
}

// ---- Pod spec -----------------------------------------------------------------------

function imagePullPolicyFor(image: string): string {
  // Same rule as Kubernetes: untagged or :latest images are always pulled.
  const last = image.split('/').pop() ?? '';
  if (image.includes('@')) return 'IfNotPresent';
  if (!last.includes(':') || last.endsWith(':latest')) return 'Always';
  return 'IfNotPresent';
}

function probeDefaults(p: unknown): void {
  if (!isObj(p)) return;
  p.timeoutSeconds ??= 1;
  p.periodSeconds ??= 10;
  p.successThreshold ??= 1;
  p.failureThreshold ??= 3;
  if (isObj(p.httpGet)) p.httpGet.scheme ??= 'HTTP';
}

function containerDefaults(c: unknown): void {
  if (!isObj(c)) return;
  if (typeof c.image === 'string') c.imagePullPolicy ??= imagePullPolicyFor(c.image);
  c.terminationMessagePath ??= '/dev/termination-log';
  c.terminationMessagePolicy ??= 'File';
  c.resources ??= {};
  for (const p of childArray(c, 'ports')) if (isObj(p)) p.protocol ??= 'TCP';
  for (const e of childArray(c, 'env')) {
    if (isObj(e) && isObj(e.valueFrom) && isObj(e.valueFrom.fieldRef)) e.valueFrom.fieldRef.apiVersion ??= 'v1';
  }
  probeDefaults(c.livenessProbe);
  probeDefaults(c.readinessProbe);
  probeDefaults(c.startupProbe);
}

export function podSpecDefaults(spec: Json): void {
  spec.restartPolicy ??= 'Always';
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  spec.enableServiceLinks ??= true;
  for (const c of childArray(spec, 'containers')) containerDefaults(c);
  for (const c of childArray(spec, 'initContainers')) containerDefaults(c);
  for (const v of childArray(spec, 'volumes')) {
    if (!isObj(v)) continue;
    if (isObj(v.configMap)) v.configMap.defaultMode ??= 420;
    if (isObj(v.secret)) v.secret.defaultMode ??= 420;
    if (isObj(v.projected)) v.projected.defaultMode ??= 420;
    if (isObj(v.downwardAPI)) v.downwardAPI.defaultMode ??= 420;
  }
}

export function podTemplateDefaults(obj: Json): void {
  const spec = child(obj, 'spec');
  const template = child(spec, 'template');
  podSpecDefaults(child(template, 'spec'));
}

export function validatePodSpec(spec: unknown, path: string): StatusCause[] {
  if (!isObj(spec)) return [fieldRequired(path)];
  const errs: StatusCause[] = [];
  const containers = spec.containers;
  if (!Array.isArray(containers) || containers.length === 0) errs.push(fieldRequired(`${path}.containers`));
  const volumeNames = new Set<string>();
  childArray(spec, 'volumes').forEach((v, i) => {
    const n = isObj(v) ? v.name : undefined;
    errs.push(...validateDnsLabel(`${path}.volumes[${i}].name`, n));
    if (typeof n === 'string') {
      if (volumeNames.has(n)) errs.push({ reason: 'FieldValueDuplicate', message: `Duplicate value: "${n}"`, field: `${path}.volumes[${i}].name` });
      volumeNames.add(n);
    }
  });
  const names = new Set<string>();
  for (const list of ['initContainers', 'containers']) {
    childArray(spec, list).forEach((c, i) => {
      const p = `${path}.${list}[${i}]`;
      if (!isObj(c)) { errs.push(fieldRequired(p)); return; }
      errs.push(...validateDnsLabel(`${p}.name`, c.name));
      if (typeof c.name === 'string') {
        if (names.has(c.name)) errs.push({ reason: 'FieldValueDuplicate', message: `Duplicate value: "${c.name}"`, field: `${p}.name` });
        names.add(c.name);
      }
      if (typeof c.image !== 'string' || c.image === '') errs.push(fieldRequired(`${p}.image`));
      childArray(c, 'volumeMounts').forEach((m, j) => {
        const vn = isObj(m) ? m.name : undefined;
        if (typeof vn !== 'string' || !volumeNames.has(vn)) errs.push({ reason: 'FieldValueNotFound', message: `Not found: ${JSON.stringify(vn)}`, field: `${p}.volumeMounts[${j}].name` });
      });
    });
  }
  const rp = spec.restartPolicy;
  if (rp !== undefined && !['Always', 'OnFailure', 'Never'].includes(String(rp))) errs.push(fieldNotSupported(`${path}.restartPolicy`, rp, ['Always', 'OnFailure', 'Never']));
  return errs;
}

export function labelsOf(obj: Json): Record<string, string> {
  const l = isObj(obj.metadata) ? obj.metadata.labels : undefined;
  const out: Record<string, string> = {};
  if (isObj(l)) for (const [k, v] of Object.entries(l)) if (typeof v === 'string') out[k] = v;
  return out;
}
