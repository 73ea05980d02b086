// Subresources with their own shapes: scale, binding, token, finalize.
import { isStoreError } from '../../store/types.js';
import type { ApiContext } from '../context.js';
import { badRequest, conflict, fieldInvalid, invalid, notFound } from '../errors.js';
import type { KindInfo } from '../registry/types.js';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, type PatchType } from '../patch.js';
import { clone, getPath, isObj, nowRfc3339, str, type Json } from '../util.js';
import { keyOf, resourceName, toExternal } from './objects.js';
import { updateObject, type WriteOptions } from './write.js';
import { getObject } from './read.js';

// ---- scale ------------------------------------------------------------------------

function setPath(obj: Json, jsonPath: string, value: unknown): void {
  const parts = jsonPath.replace(/^\./, '').split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) { if (!isObj(cur[p])) cur[p] = {}; cur = cur[p] as Json; }
  cur[parts[parts.length - 1]] = value;
}

function selectorString(obj: Json, k: KindInfo): string | undefined {
  if (k.scale?.labelSelectorPath && k.crd) return str(getPath(obj, k.scale.labelSelectorPath.replace(/^\./, '')));
  const sel = getPath(obj, 'spec.selector');
  if (!isObj(sel)) return undefined;
  const parts = Object.entries(isObj(sel.matchLabels) ? sel.matchLabels : {}).map(([a, b]) => `${a}=${String(b)}`);
  for (const e of Array.isArray(sel.matchExpressions) ? sel.matchExpressions : []) {
    if (!isObj(e)) continue;
    const vals = Array.isArray(e.values) ? e.values.join(',') : '';
    if (e.operator === 'In') parts.push(`${String(e.key)} in (${vals})`);
    else if (e.operator === 'NotIn') parts.push(`${String(e.key)} notin (${vals})`);
    else if (e.operator === 'Exists') parts.push(String(e.key));
    else parts.push(`!${String(e.key)}`);
  }
  return parts.join(',');
}

export function toScale(obj: Json, k: KindInfo): Json {
  const s = k.scale!;
  const m = isObj(obj.metadata) ? obj.metadata : {};
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion, creationTimestamp: m.creationTimestamp },
    spec: { replicas: Number(getPath(obj, s.specReplicasPath.replace(/^\./, '')) ?? 0) },
    status: { replicas: Number(getPath(obj, s.statusReplicasPath.replace(/^\./, '')) ?? 0), selector: selectorString(obj, k) ?? '' },
  };
}

export async function getScale(api: ApiContext, k: KindInfo, ns: string, name: string, version: string): Promise<Json> {
  return toScale(await getObject(api, k, ns, name, version), k);
}

/** PUT (body is a Scale) or PATCH (body is a patch of the Scale) of spec.replicas. */
export async function writeScale(api: ApiContext, k: KindInfo, ns: string, name: string, body: unknown, patchType: PatchType | undefined, o: WriteOptions): Promise<Json> {
  const updated = await updateObject(api, k, ns, name, '', (cur) => {
    const scale = toScale(cur, k);
    let next: unknown;
    let want: string | undefined;
    if (patchType === undefined) {
      next = body;
      want = str(getPath(body, 'metadata.resourceVersion')) || undefined;
    } else if (patchType === 'json') next = applyJsonPatch(scale, body);
    else if (patchType === 'strategic' && isObj(body)) next = applyStrategicMergePatch(scale, body);
    else next = applyMergePatch(scale, body);
    const replicas = getPath(next, 'spec.replicas');
    if (typeof replicas !== 'number' || replicas < 0 || !Number.isInteger(replicas)) {
      throw invalid('Scale', 'autoscaling', name, [fieldInvalid('spec.replicas', replicas, 'must be greater than or equal to 0')]);
    }
    const obj = clone(cur);
    setPath(obj, k.scale!.specReplicasPath, replicas);
    return { obj, expectedResourceVersion: want };
  }, o);
  return toScale(updated, k);
}

// ---- store-level read-modify-write (bypasses the strategy, as Kubernetes' own
// binding and finalize storages do) -------------------------------------------------

async function rawUpdate(api: ApiContext, k: KindInfo, ns: string, name: string, change: (obj: Json) => Json, remove?: (obj: Json) => boolean): Promise<Json> {
  const key = keyOf(k, ns, name);
  for (let i = 0; i < 20; i++) {
    const cur = await api.store.get(key);
    if (!cur) throw notFound(resourceName(k), name);
    const rev = Number(getPath(cur, 'metadata.resourceVersion'));
    const next = change(clone(cur));
    try {
      if (remove?.(next)) {
        const removed = await api.store.delete(key, rev);
        await k.strategy.afterDelete?.(removed);
        return removed;
      }
      return await api.store.update(key, next, rev);
    } catch (e) {
      if (isStoreError(e, 'Conflict')) continue;
      throw e;
    }
  }
  throw conflict(resourceName(k), name, 'too many concurrent updates; please try again');
}

/** POST pods/{name}/binding: assigns the pod to a node, once. */
export async function bindPod(api: ApiContext, k: KindInfo, ns: string, name: string, binding: Json): Promise<Json> {
  const node = str(getPath(binding, 'target.name'));
  if (!node) throw invalid('Binding', '', name, [{ reason: 'FieldValueRequired', message: 'Required value', field: 'target.name' }]);
  await rawUpdate(api, k, ns, name, (pod) => {
    if (getPath(pod, 'metadata.deletionTimestamp')) throw conflict(resourceName(k), name, `pod ${name} is being deleted, cannot be assigned to a host`);
    const cur = str(getPath(pod, 'spec.nodeName'));
    if (cur) throw conflict(resourceName(k), name, `pod ${name} is already assigned to node "${cur}"`);
    (pod.spec as Json).nodeName = node;
    const status = isObj(pod.status) ? pod.status : (pod.status = {}) as Json;
    const conds = (Array.isArray(status.conditions) ? status.conditions : []).filter((c) => !(isObj(c) && c.type === 'PodScheduled'));
    conds.push({ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: nowRfc3339() });
    status.conditions = conds;
    return pod;
  });
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 };
}

/** PUT namespaces/{name}/finalize: the namespace controller removes spec.finalizers here. */
export async function finalizeNamespace(api: ApiContext, k: KindInfo, name: string, body: Json, version: string): Promise<Json> {
  const finalizers = getPath(body, 'spec.finalizers');
  const removed = (o: Json): boolean => {
    const f = getPath(o, 'spec.finalizers');
    const mf = getPath(o, 'metadata.finalizers');
    return Boolean(getPath(o, 'metadata.deletionTimestamp')) && !(Array.isArray(f) && f.length > 0) && !(Array.isArray(mf) && mf.length > 0);
  };
  const out = await rawUpdate(api, k, '', name, (ns) => {
    const spec = isObj(ns.spec) ? ns.spec : (ns.spec = {}) as Json;
    spec.finalizers = Array.isArray(finalizers) ? finalizers : [];
    return ns;
  }, removed);
  return toExternal(out, k, version);
}

/** POST serviceaccounts/{name}/token: a bound, expiring ServiceAccount JWT. */
export async function requestToken(api: ApiContext, ns: string, name: string, body: Json, apiAudiences: string[]): Promise<Json> {
  const sa = await api.store.get(`/registry/serviceaccounts/${ns}/${name}`);
  if (!sa) throw notFound({ group: '', resource: 'serviceaccounts' }, name);
  const spec = isObj(body.spec) ? body.spec : {};
  const expirationSeconds = typeof spec.expirationSeconds === 'number' ? spec.expirationSeconds : 3600;
  if (expirationSeconds < 600) throw invalid('TokenRequest', 'authentication.k8s.io', name, [fieldInvalid('spec.expirationSeconds', expirationSeconds, 'may not specify a duration less than 10 minutes')]);
  const audiences = Array.isArray(spec.audiences) && spec.audiences.length > 0 ? spec.audiences.map(String) : apiAudiences;
  let pod: { name: string; uid: string } | undefined;
  const ref = spec.boundObjectRef;
  if (isObj(ref)) {
    if (ref.kind !== 'Pod') throw badRequest(`cannot bind token to object of kind ${String(ref.kind)}: only Pod is supported`);
    const p = await api.store.get(`/registry/pods/${ns}/${String(ref.name)}`);
    if (!p) throw notFound({ group: '', resource: 'pods' }, String(ref.name));
    const uid = String(getPath(p, 'metadata.uid'));
    if (ref.uid && ref.uid !== uid) throw conflict({ group: '', resource: 'pods' }, String(ref.name), `the UID in the bound object reference (${String(ref.uid)}) does not match the UID in record. The object might have been deleted and then recreated`);
    pod = { name: String(ref.name), uid };
  }
  const { token, claims } = api.signer.issue({ namespace: ns, name, uid: String(getPath(sa, 'metadata.uid')), audiences, expirationSeconds, pod });
  return {
    kind: 'TokenRequest',
    apiVersion: 'authentication.k8s.io/v1',
    metadata: { name, namespace: ns, creationTimestamp: null },
    spec: { audiences, expirationSeconds, boundObjectRef: isObj(ref) ? { ...ref, uid: pod?.uid } : null },
    status: { token, expirationTimestamp: new Date(claims.exp * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') },
  };
}
