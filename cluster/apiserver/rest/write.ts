// The generic write path for every kind: create, update (PUT, PATCH, status), delete.
// Order follows kube-apiserver: defaulting -> built-in mutating admission -> mutating
// webhooks -> strategy prepare -> validation -> validating webhooks -> store.
import { randomUUID } from 'node:crypto';
import type { StatusCause } from '../../../api/kube/types.js';
import { isStoreError } from '../../store/types.js';
import type { ApiContext } from '../context.js';
import type { UserInfo } from '../authn.js';
import type { Operation } from '../admission/webhooks.js';
import { alreadyExists, badRequest, conflict, fieldInvalid, fieldRequired, invalid, notFound } from '../errors.js';
import type { KindInfo, OpContext } from '../registry/types.js';
import { validateDnsSubdomain } from '../strategies/common.js';
import { clone, deepEqual, getPath, isObj, meta, nowRfc3339, randomSuffix, str, type Json } from '../util.js';
import { checkNamespace, fromStorage, keyOf, resourceName, toExternal } from './objects.js';
import { dropUnknownFields, problemMessages, type FieldValidationRequest } from '../field-validation.js';
import { builtinSchema, OBJECT_META } from '../schemas/builtin.js';
import { createEntries, trackUpdate, type Scope } from '../managed-fields.js';

export interface WriteOptions {
  user: UserInfo;
  dryRun: boolean;
  /** The API version the client used; responses and webhooks see objects in it. */
  version: string;
  /** The request's fieldValidation; absent for internal writes (unknown fields are still dropped). */
  fieldValidation?: FieldValidationRequest;
  /** The field manager of this write (fieldManager or the User-Agent); absent = not tracked. */
  manager?: string;
  /** Server-side apply: the applied configuration (managedFields then come from the apply). */
  applied?: Json;
}

/** What a write may own: status only through /status; the main resource of kinds with a status subresource never owns status. */
function scopeOf(k: KindInfo, subresource: string): Scope {
  if (subresource === 'status') return 'status';
  return k.status ? 'main' : 'all';
}

/** The schema unknown fields are judged by: the CRD version's, or the built-in kind's. */
function schemaOf(k: KindInfo, version: string): Json {
  if (k.crd) return k.crd.schemas[version] ?? { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  return builtinSchema(k.group, k.kind);
}

/**
 * Drops the fields the kind does not know (as kube-apiserver's typed decoding or CRD pruning
 * does) and reports them, with the body's duplicate fields, as the request asked: 400 under
 * Strict, `Warning` headers under Warn, nothing under Ignore. `alreadyThere` are unknown
 * fields of the current object (stored before this check existed): a patch did not send them.
 */
function checkFields(k: KindInfo, obj: Json, o: WriteOptions, namespace: string, alreadyThere: string[] = []): void {
  const fv = o.fieldValidation;
  const unknown = dropUnknownFields(schemaOf(k, o.version), obj, OBJECT_META).filter((f) => !alreadyThere.includes(f));
  if (!fv || fv.mode === 'Ignore') return;
  const problems = problemMessages({ unknown, duplicate: fv.duplicates });
  if (problems.length === 0) return;
  if (fv.mode === 'Warn') { for (const p of problems) fv.warn(p); return; }
  if (fv.source === 'apply') {
    const where = `${k.namespaced ? `${namespace}/` : ''}${String(meta(obj).name ?? '')}`;
    const gv = k.group ? `${k.group}/${o.version}` : o.version;
    throw badRequest(`failed to create typed patch object (${where}; ${gv}, Kind=${k.kind}): ${[...fv.duplicates.map((f) => `.${f}: duplicate field`), ...unknown.map((f) => `.${f}: field not declared in schema`)].join(', ')}`);
  }
  const strict = `strict decoding error: ${problems.join(', ')}`;
  throw badRequest(fv.source === 'body' ? `${k.kind} in version "${o.version}" cannot be handled as a ${k.kind}: ${strict}` : strict);
}

function opContext(o: WriteOptions, namespace: string): OpContext {
  return { user: o.user, namespace: namespace || undefined, dryRun: o.dryRun };
}

function validateMeta(k: KindInfo, obj: Json): StatusCause[] {
  const m = isObj(obj.metadata) ? obj.metadata : {};
  const errs: StatusCause[] = [];
  // RBAC names are path segments; everything else here is a DNS subdomain.
  if (k.group === 'rbac.authorization.k8s.io') {
    if (typeof m.name !== 'string' || m.name === '' || /[/%]/.test(m.name)) errs.push(fieldInvalid('metadata.name', m.name, 'may not contain "/" or "%"'));
  } else errs.push(...validateDnsSubdomain('metadata.name', m.name));
  for (const field of ['labels', 'annotations']) {
    const v = m[field];
    if (v === undefined || v === null) continue;
    if (!isObj(v)) { errs.push(fieldInvalid(`metadata.${field}`, v, 'must be a map of strings')); continue; }
    for (const [key, val] of Object.entries(v)) if (typeof val !== 'string') errs.push(fieldInvalid(`metadata.${field}.${key}`, val, 'must be a string'));
  }
  if (Array.isArray(m.ownerReferences)) {
    m.ownerReferences.forEach((r, i) => {
      for (const f of ['apiVersion', 'kind', 'name', 'uid']) if (!isObj(r) || typeof r[f] !== 'string' || r[f] === '') errs.push(fieldRequired(`metadata.ownerReferences[${i}].${f}`));
    });
  }
  return errs;
}

async function throwIfInvalid(k: KindInfo, obj: Json, errs: StatusCause[]): Promise<void> {
  if (errs.length > 0) throw invalid(k.kind, k.group, String(getPath(obj, 'metadata.name') ?? getPath(obj, 'metadata.generateName') ?? ''), errs);
}

/**
 * ObjectMeta fields are all optional, so null means absent (Go clients send
 * `creationTimestamp: null` in every embedded template, e.g. `kubectl rollout undo`); dropping
 * them keeps equal templates equal for the controllers comparing them.
 */
function dropNullMetadata(v: unknown, inMeta = false): void {
  if (Array.isArray(v)) { for (const x of v) dropNullMetadata(x); return; }
  if (!isObj(v)) return;
  for (const [key, x] of Object.entries(v)) {
    if (inMeta && x === null) delete v[key];
    else if (!inMeta) dropNullMetadata(x, key === 'metadata');
  }
}

/** Everything but metadata and status: a change here bumps metadata.generation. */
function specOf(obj: Json): Json {
  const { metadata: _m, status: _s, ...rest } = obj;
  return rest;
}

function hasPendingFinalizers(k: KindInfo, obj: Json): boolean {
  const f = getPath(obj, 'metadata.finalizers');
  if (Array.isArray(f) && f.length > 0) return true;
  if (k.group === '' && k.resource === 'namespaces') {
    const nf = getPath(obj, 'spec.finalizers');
    return Array.isArray(nf) && nf.length > 0;
  }
  return false;
}

function readyToRemove(k: KindInfo, obj: Json): boolean {
  return Boolean(getPath(obj, 'metadata.deletionTimestamp')) && !hasPendingFinalizers(k, obj) && (Number(getPath(obj, 'metadata.deletionGracePeriodSeconds') ?? 0) === 0);
}

async function mutatingAdmission(api: ApiContext, k: KindInfo, obj: Json, old: Json | undefined, op: Operation, subresource: string, namespace: string, o: WriteOptions): Promise<Json> {
  const patched = await api.webhooks.mutate({
    kind: k, version: o.version, operation: op, subresource, namespace, name: str(getPath(obj, 'metadata.name')) ?? '',
    object: obj, oldObject: old, user: o.user, dryRun: o.dryRun,
  });
  return patched ?? obj;
}

async function validatingAdmission(api: ApiContext, k: KindInfo, obj: Json | undefined, old: Json | undefined, op: Operation, subresource: string, namespace: string, name: string, o: WriteOptions): Promise<void> {
  await api.webhooks.validate({ kind: k, version: o.version, operation: op, subresource, namespace, name, object: obj, oldObject: old, user: o.user, dryRun: o.dryRun });
}

export async function createObject(api: ApiContext, k: KindInfo, namespace: string, body: Json, o: WriteOptions): Promise<Json> {
  const ctx = opContext(o, namespace);
  if (k.strategy.virtualCreate) return toExternal(await k.strategy.virtualCreate(toExternal(body, k, o.version), ctx), k, o.version);
  const wantApiVersion = k.group ? `${k.group}/${o.version}` : o.version;
  if (body.apiVersion !== undefined && body.apiVersion !== wantApiVersion && !(k.group !== '' && String(body.apiVersion).startsWith(`${k.group}/`))) {
    throw badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${wantApiVersion})`);
  }
  if (body.kind !== undefined && body.kind !== k.kind) throw badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (${k.kind})`);
  let obj = toExternal(body, k, o.version);
  checkFields(k, obj, o, namespace);
  const m = meta(obj);
  if (k.namespaced) {
    if (m.namespace && m.namespace !== namespace) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    m.namespace = namespace;
    await checkNamespace(api, namespace, true);
  } else delete m.namespace;
  if (!m.name && !m.generateName) throw invalid(k.kind, k.group, '', [{ reason: 'FieldValueRequired', message: 'Required value: name or generateName is required', field: 'metadata.name' }]);
  for (const f of ['resourceVersion', 'uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'managedFields', 'generation', 'selfLink'] as const) delete (m as Record<string, unknown>)[f];

  k.strategy.defaults?.(obj);
  await k.strategy.admit?.(obj, ctx, 'CREATE');
  obj = await mutatingAdmission(api, k, obj, undefined, 'CREATE', '', namespace, o);
  obj = toExternal(obj, k, o.version);
  dropUnknownFields(schemaOf(k, o.version), obj, OBJECT_META); // what a webhook added, silently
  dropNullMetadata(obj);
  k.strategy.defaults?.(obj);
  const m2 = meta(obj);
  if (k.namespaced) m2.namespace = namespace;
  const generated = !m2.name;
  if (generated) m2.name = `${m2.generateName ?? ''}${randomSuffix(5)}`;
  m2.uid = randomUUID();
  m2.creationTimestamp = nowRfc3339();
  m2.generation = 1;
  k.strategy.prepareForCreate?.(obj, ctx);
  if (o.manager) (m2 as Record<string, unknown>).managedFields = createEntries(obj, o.manager, apiVersionOf(k, o.version), scopeOf(k, ''), o.applied);
  await throwIfInvalid(k, obj, [...validateMeta(k, obj), ...(await k.strategy.validate?.(obj, ctx) ?? [])]);
  await validatingAdmission(api, k, obj, undefined, 'CREATE', '', namespace, m2.name ?? '', o);
  if (o.dryRun) return obj;

  const rollback = (await k.strategy.reserve?.(obj, ctx)) ?? (() => {});
  for (let attempt = 0; ; attempt++) {
    try {
      const stored = await api.store.create(keyOf(k, namespace, String(m2.name)), toExternal(obj, k, k.storageVersion));
      await k.strategy.afterCreate?.(stored);
      return toExternal(stored, k, o.version);
    } catch (e) {
      if (isStoreError(e, 'AlreadyExists')) {
        if (generated && attempt < 5) { m2.name = `${m2.generateName ?? ''}${randomSuffix(5)}`; continue; }
        rollback();
        throw alreadyExists(resourceName(k), String(m2.name));
      }
      rollback();
      throw e;
    }
  }
}

/** The result of applying a client's change to the current object. */
export interface Mutation { obj: Json; expectedResourceVersion?: string }

/**
 * Read-modify-write with optimistic concurrency: retried on a store conflict unless the
 * client pinned a resourceVersion, in which case a mismatch is a 409 Conflict.
 */
export async function updateObject(
  api: ApiContext, k: KindInfo, namespace: string, name: string, subresource: string,
  mutate: (current: Json) => Mutation | Promise<Mutation>, o: WriteOptions,
): Promise<Json> {
  const key = keyOf(k, namespace, name);
  const ctx = opContext(o, namespace);
  for (let attempt = 0; attempt < 20; attempt++) {
    const stored = await api.store.get(key);
    if (!stored) throw notFound(resourceName(k), name);
    const cur = fromStorage(stored, k, o.version);
    const curRv = String(getPath(cur, 'metadata.resourceVersion'));
    const { obj: requested, expectedResourceVersion: want } = await mutate(clone(cur));
    if (want && want !== curRv) throw conflict(resourceName(k), name);
    let next = toExternal(requested, k, o.version);
    const patching = o.fieldValidation !== undefined && o.fieldValidation.source !== 'body';
    checkFields(k, next, o, namespace, patching ? dropUnknownFields(schemaOf(k, o.version), clone(cur), OBJECT_META) : []);
    dropNullMetadata(next);
    const nm = meta(next);
    const om = meta(cur);
    if (nm.name !== undefined && nm.name !== name) throw badRequest(`the name of the object (${String(nm.name)}) does not match the name on the URL (${name})`);
    if (k.namespaced && nm.namespace && nm.namespace !== namespace) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    nm.name = name;
    if (k.namespaced) nm.namespace = namespace;
    for (const f of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation'] as const) {
      if (om[f] === undefined) delete nm[f]; else (nm as Record<string, unknown>)[f] = om[f];
    }
    // The server keeps its own managedFields: a client's are ignored; an apply computed them.
    const appliedFields = o.applied ? (nm as Record<string, unknown>).managedFields : undefined;
    delete (nm as Record<string, unknown>).managedFields;
    nm.resourceVersion = curRv;

    if (subresource === 'status') {
      // A status write changes only status (and may not touch spec or metadata).
      const s = clone(cur);
      s.status = next.status;
      next = s;
    } else if (subresource === '' && k.status) {
      next.status = clone(cur.status);
    }
    if (subresource === '') {
      k.strategy.defaults?.(next);
      await k.strategy.admit?.(next, ctx, 'UPDATE');
    }
    next = toExternal(await mutatingAdmission(api, k, next, cur, 'UPDATE', subresource, namespace, o), k, o.version);
    dropUnknownFields(schemaOf(k, o.version), next, OBJECT_META); // what a webhook added, silently
    if (subresource === '') k.strategy.defaults?.(next);
    k.strategy.prepareForUpdate?.(next, cur, ctx);
    const mf = appliedFields ?? (o.manager ? trackUpdate(cur, next, o.manager, apiVersionOf(k, o.version), scopeOf(k, subresource)) : getPath(cur, 'metadata.managedFields'));
    if (Array.isArray(mf) && mf.length > 0) (meta(next) as Record<string, unknown>).managedFields = mf; else delete (meta(next) as Record<string, unknown>).managedFields;
    const gen = typeof om.generation === 'number' ? om.generation : 1;
    meta(next).generation = deepEqual(specOf(next), specOf(cur)) ? gen : gen + 1;
    const strategyErrs = k.strategy.validateUpdate ? await k.strategy.validateUpdate(next, cur, ctx) : await k.strategy.validate?.(next, ctx);
    const errs = [...validateMeta(k, next), ...(strategyErrs ?? [])];
    await throwIfInvalid(k, next, errs);
    await validatingAdmission(api, k, next, cur, 'UPDATE', subresource, namespace, name, o);

    if (deepEqual(withoutTimes(next), withoutTimes(cur))) return cur; // no-op updates do not bump resourceVersion
    if (o.dryRun) return next;
    try {
      if (readyToRemove(k, next)) {
        const removed = await api.store.delete(key, Number(curRv));
        await k.strategy.afterDelete?.(removed);
        return toExternal(removed, k, o.version);
      }
      const saved = await api.store.update(key, toExternal(next, k, k.storageVersion), Number(curRv));
      await k.strategy.afterUpdate?.(saved, cur);
      return toExternal(saved, k, o.version);
    } catch (e) {
      if (isStoreError(e, 'Conflict')) { if (want) throw conflict(resourceName(k), name); continue; }
      if (isStoreError(e, 'NotFound')) throw notFound(resourceName(k), name);
      throw e;
    }
  }
  throw conflict(resourceName(k), name, 'too many concurrent updates; please try again');
}

const apiVersionOf = (k: KindInfo, version: string): string => k.group ? `${k.group}/${version}` : version;

/** The object with managedFields' times blanked: a write changing only those is a no-op. */
function withoutTimes(obj: Json): Json {
  const mf = getPath(obj, 'metadata.managedFields');
  if (!Array.isArray(mf)) return obj;
  return { ...obj, metadata: { ...meta(obj), managedFields: mf.map((e) => isObj(e) ? { ...e, time: '' } : e) } };
}

export type PropagationPolicy = 'Orphan' | 'Background' | 'Foreground';

export interface DeleteOptions {
  gracePeriodSeconds?: number;
  /** Undefined = the kind's default (Background). */
  propagationPolicy?: PropagationPolicy;
  preconditions?: { uid?: string; resourceVersion?: string };
}

/**
 * Deletes at once, or starts a graceful/finalized deletion: pods on a node get
 * deletionTimestamp + deletionGracePeriodSeconds (the kubelet finishes with grace 0);
 * objects with finalizers wait until the list is empty.
 */
export async function deleteObject(api: ApiContext, k: KindInfo, namespace: string, name: string, opts: DeleteOptions, o: WriteOptions): Promise<Json> {
  const key = keyOf(k, namespace, name);
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      return await deleteAttempt(api, k, key, namespace, name, opts, o);
    } catch (e) {
      if (isStoreError(e, 'Conflict')) continue;
      if (isStoreError(e, 'NotFound')) throw notFound(resourceName(k), name);
      throw e;
    }
  }
  throw conflict(resourceName(k), name, 'too many concurrent updates; please try again');
}

export const ORPHAN_FINALIZER = 'orphan';
export const FOREGROUND_FINALIZER = 'foregroundDeletion';

/**
 * The garbage collector's finalizers for a propagation policy (Kubernetes'
 * deletionFinalizersForGarbageCollection): Orphan -> `orphan`, Foreground ->
 * `foregroundDeletion`, an explicit Background drops both. Returns whether they changed.
 */
function applyPropagation(obj: Json, policy: PropagationPolicy | undefined): boolean {
  if (!policy) return false;
  const m = meta(obj);
  const before = Array.isArray(m.finalizers) ? m.finalizers.map(String) : [];
  let after = before.filter((f) => f !== ORPHAN_FINALIZER && f !== FOREGROUND_FINALIZER);
  if (policy === 'Orphan') after = [...after, ORPHAN_FINALIZER];
  if (policy === 'Foreground') after = [...after, FOREGROUND_FINALIZER];
  if (deepEqual(before, after)) return false;
  if (after.length) m.finalizers = after; else delete m.finalizers;
  return true;
}

async function deleteAttempt(api: ApiContext, k: KindInfo, key: string, namespace: string, name: string, opts: DeleteOptions, o: WriteOptions): Promise<Json> {
  {
    const stored = await api.store.get(key);
    if (!stored) throw notFound(resourceName(k), name);
    const cur = fromStorage(stored, k, o.version);
    const curRv = String(getPath(cur, 'metadata.resourceVersion'));
    const pre = opts.preconditions ?? {};
    if (pre.uid && pre.uid !== getPath(cur, 'metadata.uid')) {
      throw conflict(resourceName(k), name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${String(getPath(cur, 'metadata.uid'))}`);
    }
    if (pre.resourceVersion && pre.resourceVersion !== curRv) {
      throw conflict(resourceName(k), name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${curRv}`);
    }
    await validatingAdmission(api, k, undefined, cur, 'DELETE', '', namespace, name, o);
    const grace = k.strategy.gracePeriod?.(cur, opts.gracePeriodSeconds) ?? 0;
    const next = clone(cur);
    const m = meta(next);
    const finalizersChanged = applyPropagation(next, opts.propagationPolicy);
    if (!m.deletionTimestamp) {
      if (grace === 0 && !hasPendingFinalizers(k, next)) return remove();
      m.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      m.deletionGracePeriodSeconds = grace;
      if (k.group === '' && k.resource === 'namespaces') (next.status as Json | undefined ?? (next.status = {}) as Json).phase = 'Terminating';
    } else if (grace < Number(m.deletionGracePeriodSeconds ?? 0)) {
      m.deletionGracePeriodSeconds = grace;
      m.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    } else if (!finalizersChanged) {
      return cur; // already being deleted, no shorter grace period or other propagation asked for
    }
    if (readyToRemove(k, next)) return remove();
    if (o.dryRun) return next;
    const saved = await api.store.update(key, toExternal(next, k, k.storageVersion), Number(curRv));
    return toExternal(saved, k, o.version);

    async function remove(): Promise<Json> {
      if (o.dryRun) return cur;
      const removed = await api.store.delete(key, Number(curRv));
      await k.strategy.afterDelete?.(removed);
      return toExternal(removed, k, o.version);
    }
  }
}
