// PATCH bodies: RFC 6902 JSON Patch, RFC 7386 merge patch, and Kubernetes' strategic merge
// patch (lists merged by key for the fields that declare a patchMergeKey).
import { badRequest, ApiError } from './errors.js';
import { clone, isObj, type Json } from './util.js';

// ---- JSON Patch ---------------------------------------------------------------------

interface JsonPatchOp { op: string; path: string; value?: unknown; from?: string }

function parsePointer(p: string): string[] {
  if (p === '') return [];
  if (!p.startsWith('/')) throw badRequest(`JSON pointer "${p}" must start with /`);
  return p.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: unknown, tokens: string[], path: string): { parent: unknown; last: string } {
  let cur = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObj(cur)) cur = cur[t];
    else cur = undefined;
    if (cur === undefined) throw jsonPatchError(`doc is missing path: "${path}"`);
  }
  return { parent: cur, last: tokens[tokens.length - 1] };
}

function jsonPatchError(msg: string): ApiError {
  return new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: ${msg}`);
}

function getAt(doc: unknown, path: string): unknown {
  let cur = doc;
  for (const t of parsePointer(path)) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObj(cur)) cur = cur[t];
    else return undefined;
  }
  return cur;
}

function removeAt(doc: unknown, path: string): unknown {
  const tokens = parsePointer(path);
  const { parent, last } = parentOf(doc, tokens, path);
  if (Array.isArray(parent)) {
    const i = Number(last);
    if (!Number.isInteger(i) || i < 0 || i >= parent.length) throw jsonPatchError(`unable to remove nonexistent key: ${last}: missing value`);
    return parent.splice(i, 1)[0];
  }
  if (isObj(parent) && last in parent) { const v = parent[last]; delete parent[last]; return v; }
  throw jsonPatchError(`unable to remove nonexistent key: ${last}: missing value`);
}

function addAt(doc: unknown, path: string, value: unknown, replace: boolean): unknown {
  const tokens = parsePointer(path);
  if (tokens.length === 0) return value;
  const { parent, last } = parentOf(doc, tokens, path);
  if (Array.isArray(parent)) {
    if (replace) {
      const i = Number(last);
      if (!(i >= 0 && i < parent.length)) throw jsonPatchError(`replace operation does not apply: doc is missing key: ${path}`);
      parent[i] = value;
    } else if (last === '-') parent.push(value);
    else {
      const i = Number(last);
      if (!Number.isInteger(i) || i < 0 || i > parent.length) throw jsonPatchError(`add operation does not apply: index out of bounds: ${path}`);
      parent.splice(i, 0, value);
    }
  } else if (isObj(parent)) {
    if (replace && !(last in parent)) throw jsonPatchError(`replace operation does not apply: doc is missing key: ${path}`);
    parent[last] = value;
  } else throw jsonPatchError(`doc is missing path: "${path}"`);
  return doc;
}

export function applyJsonPatch(doc: Json, ops: unknown): Json {
  if (!Array.isArray(ops)) throw badRequest('a JSON patch must be an array of operations');
  let out: unknown = clone(doc);
  for (const raw of ops) {
    if (!isObj(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') throw badRequest('invalid JSON patch operation');
    const op = raw as unknown as JsonPatchOp;
    switch (op.op) {
      case 'add': out = addAt(out, op.path, clone(op.value), false); break;
      case 'replace': out = addAt(out, op.path, clone(op.value), true); break;
      case 'remove': removeAt(out, op.path); break;
      case 'move': { const v = removeAt(out, op.from ?? ''); out = addAt(out, op.path, v, false); break; }
      case 'copy': out = addAt(out, op.path, clone(getAt(out, op.from ?? '')), false); break;
      case 'test':
        if (JSON.stringify(getAt(out, op.path)) !== JSON.stringify(op.value)) throw jsonPatchError(`testing value ${op.path} failed`);
        break;
      default: throw badRequest(`unexpected JSON patch operation "${op.op}"`);
    }
  }
  if (!isObj(out)) throw badRequest('JSON patch result is not an object');
  return out;
}

// ---- Merge Patch --------------------------------------------------------------------

export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch);
  const out: Json = isObj(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

// ---- Strategic Merge Patch ----------------------------------------------------------

/** patchMergeKey of list fields, by field name (and the parent field where it matters). */
export function mergeKeyFor(field: string, parent: string | undefined): string | undefined {
  switch (field) {
    case 'containers': case 'initContainers': case 'ephemeralContainers':
    case 'env': case 'volumes': case 'imagePullSecrets': case 'secrets':
    case 'containerStatuses': case 'initContainerStatuses':
    case 'resourceClaims': case 'schedulingGates':
      return 'name';
    case 'addresses':
      // NodeStatus.addresses merge on type; EndpointSubset.addresses are atomic.
      return parent === 'status' ? 'type' : undefined;
    case 'volumeMounts': return 'mountPath';
    case 'volumeDevices': return 'devicePath';
    case 'ports':
      // Container ports merge on containerPort, Service ports on port.
      return parent === 'containers' || parent === 'initContainers' || parent === 'ephemeralContainers' ? 'containerPort' : 'port';
    case 'conditions': return 'type';
    // Fields Kubernetes declares atomic (no patchMergeKey) are replaced whole: tolerations,
    // envFrom, args, command, taints, readinessGates, subsets, rules, ...
    case 'webhooks': return 'name'; // Mutating/ValidatingWebhookConfiguration
    case 'ownerReferences': return 'uid';
    case 'hostAliases': return 'ip';
    case 'topologySpreadConstraints': return 'topologyKey';
    case 'podIPs': case 'hostIPs': return 'ip';
    default: return undefined;
  }
}

/** Primitive lists with patchStrategy merge (union instead of replace). */
export const MERGED_PRIMITIVE_LISTS = new Set(['finalizers']);

export function applyStrategicMergePatch(target: Json, patch: Json): Json {
  return smpMap(target, patch, undefined) as Json;
}

function smpMap(target: unknown, patch: Json, parentField: string | undefined): unknown {
  const directive = patch.$patch;
  if (directive === 'delete') return undefined;
  if (directive === 'replace') {
    const { $patch: _p, ...rest } = patch;
    return stripDirectives(rest);
  }
  let out: Json = isObj(target) ? clone(target) : {};
  const retain = patch.$retainKeys;
  if (Array.isArray(retain)) {
    const keep = new Set(retain.map(String));
    out = Object.fromEntries(Object.entries(out).filter(([k]) => keep.has(k)));
  }
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const del = Array.isArray(v) ? v : [];
      const cur = out[field];
      if (Array.isArray(cur)) out[field] = cur.filter((x) => !del.some((d) => JSON.stringify(d) === JSON.stringify(x)));
      continue;
    }
    if (v === null) { delete out[k]; continue; }
    if (Array.isArray(v)) {
      const r = smpList(out[k], v, k, parentField, patch[`$setElementOrder/${k}`]);
      if (r === undefined) delete out[k]; else out[k] = r;
      continue;
    }
    if (isObj(v)) {
      const r = smpMap(out[k], v, k);
      if (r === undefined) delete out[k]; else out[k] = r;
      continue;
    }
    out[k] = v;
  }
  // $setElementOrder alone (no change to the list itself) still orders a merged list.
  for (const [k, order] of Object.entries(patch)) {
    if (!k.startsWith('$setElementOrder/')) continue;
    const field = k.slice('$setElementOrder/'.length);
    if (patch[field] !== undefined || !Array.isArray(out[field])) continue;
    if (mergeKeyFor(field, parentField) || MERGED_PRIMITIVE_LISTS.has(field)) out[field] = smpList(out[field], [], field, parentField, order);
  }
  return out;
}

function smpList(target: unknown, patch: unknown[], field: string, parentField: string | undefined, order: unknown): unknown[] | undefined {
  const cur = Array.isArray(target) ? clone(target) : [];
  const key = mergeKeyFor(field, parentField);
  if (!key) {
    if (MERGED_PRIMITIVE_LISTS.has(field)) {
      let out = [...cur];
      for (const x of patch) if (!out.some((y) => JSON.stringify(y) === JSON.stringify(x))) out.push(x);
      if (Array.isArray(order)) {
        const rank = (x: unknown): number => { const i = order.findIndex((o) => JSON.stringify(o) === JSON.stringify(x)); return i < 0 ? order.length : i; };
        out = out.map((x, i) => ({ x, i })).sort((a, b) => rank(a.x) - rank(b.x) || a.i - b.i).map((e) => e.x);
      }
      return out;
    }
    // A {$patch: replace} element means "replace the whole list".
    return stripDirectives(patch.filter((x) => !(isObj(x) && x.$patch === 'replace'))) as unknown[];
  }
  if (patch.some((x) => isObj(x) && x.$patch === 'replace')) {
    return stripDirectives(patch.filter((x) => !(isObj(x) && x.$patch === 'replace'))) as unknown[];
  }
  let out = cur;
  for (const item of patch) {
    if (!isObj(item)) continue;
    const kv = item[key];
    if (kv === undefined) throw badRequest(`map: ${JSON.stringify(stripDirectives(item))} does not contain declared merge key: ${key}`);
    const idx = out.findIndex((x) => isObj(x) && JSON.stringify(x[key]) === JSON.stringify(kv));
    if (item.$patch === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) out[idx] = smpMap(out[idx], item, field);
    else out.push(smpMap(undefined, item, field));
  }
  out = out.filter((x) => x !== undefined);
  if (Array.isArray(order)) {
    // $setElementOrder: listed keys first in the given order, the rest after.
    const rank = (x: unknown): number => {
      const i = order.findIndex((o) => isObj(o) && isObj(x) && JSON.stringify(o[key]) === JSON.stringify(x[key]));
      return i < 0 ? order.length : i;
    };
    out = out.map((x, i) => ({ x, i })).sort((a, b) => rank(a.x) - rank(b.x) || a.i - b.i).map((e) => e.x);
  }
  return out;
}

function stripDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (isObj(v)) {
    const out: Json = {};
    for (const [k, x] of Object.entries(v)) if (!k.startsWith('$')) out[k] = stripDirectives(x);
    return out;
  }
  return v;
}

export type PatchType = 'json' | 'merge' | 'strategic' | 'apply';

export function patchTypeOf(contentType: string | undefined): PatchType | undefined {
  const ct = (contentType ?? '').split(';')[0].trim().toLowerCase();
  switch (ct) {
    case 'application/json-patch+json': return 'json';
    case 'application/merge-patch+json': return 'merge';
    case 'application/strategic-merge-patch+json': return 'strategic';
    case 'application/apply-patch+yaml': case 'application/apply-patch+json': return 'apply';
    default: return undefined;
  }
}
