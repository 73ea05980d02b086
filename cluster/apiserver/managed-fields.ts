// Server-side apply field ownership (structured-merge-diff semantics): metadata.managedFields
// entries hold each manager's set of fields in the FieldsV1 format; apply conflicts with other
// managers' fields it would change, non-apply writes take the fields they change.
import { ApiError } from './errors.js';
import { applyStrategicMergePatch, MERGED_PRIMITIVE_LISTS, mergeKeyFor } from './patch.js';
import { clone, deepEqual, isObj, nowRfc3339, type Json } from './util.js';

/** A field path as FieldsV1 tokens (`f:spec`, `k:{"name":"app"}`, `v:"x"`, `.`), JSON-encoded. */
type FieldSet = Set<string>;

export interface ManagedFieldsEntry {
  manager: string; operation: 'Apply' | 'Update'; apiVersion: string; time: string;
  fieldsType: 'FieldsV1'; fieldsV1: Json; subresource?: string;
}

interface Owner { entry: ManagedFieldsEntry; set: FieldSet }

/** Which part of the object a write may own: status only on /status, not on the main resource of kinds with a status subresource. */
export type Scope = 'all' | 'main' | 'status';

const SYSTEM_META = new Set(['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields', 'selfLink', 'deletionTimestamp', 'deletionGracePeriodSeconds']);

function project(obj: Json, scope: Scope): Json {
  if (scope === 'status') return isObj(obj.status) ? { status: obj.status } : {};
  const { apiVersion: _a, kind: _k, metadata, ...rest } = obj;
  if (scope === 'main') delete rest.status;
  if (isObj(metadata)) {
    const m = Object.fromEntries(Object.entries(metadata).filter(([key]) => !SYSTEM_META.has(key)));
    if (Object.keys(m).length > 0) rest.metadata = m;
  }
  return rest;
}

function walkMap(obj: Json, path: string[], mapField: string | undefined, out: FieldSet): void {
  for (const [key, v] of Object.entries(obj)) {
    if (v === null || v === undefined) continue;
    walkValue(v, [...path, `f:${key}`], key, mapField, out);
  }
}

function itemKey(item: unknown, key: string): string | undefined {
  return isObj(item) && item[key] !== undefined ? `k:${JSON.stringify({ [key]: item[key] })}` : undefined;
}

function walkValue(v: unknown, path: string[], field: string, parent: string | undefined, out: FieldSet): void {
  if (isObj(v) && Object.keys(v).length > 0) { walkMap(v, path, field, out); return; }
  if (Array.isArray(v) && v.length > 0) {
    if (MERGED_PRIMITIVE_LISTS.has(field)) { for (const x of v) out.add(JSON.stringify([...path, `v:${JSON.stringify(x)}`])); return; }
    const key = mergeKeyFor(field, parent);
    const keys = key ? v.map((x) => itemKey(x, key)) : [];
    // Items with a merge key are owned one by one; other lists are atomic (one field).
    if (key && keys.every((k) => k !== undefined) && new Set(keys).size === keys.length) {
      v.forEach((item, i) => {
        const p = [...path, keys[i]!];
        out.add(JSON.stringify([...p, '.']));
        walkMap(item as Json, p, field, out);
      });
      return;
    }
  }
  out.add(JSON.stringify(path));
}

export function fieldSetOf(obj: Json, scope: Scope): FieldSet {
  const out: FieldSet = new Set();
  walkMap(project(obj, scope), [], undefined, out);
  return out;
}

/** The value at a field path; for `.` (a list item itself) the item. */
function valueAt(obj: unknown, path: string[]): unknown {
  let cur: unknown = obj;
  for (const t of path) {
    if (t === '.') return cur;
    if (t.startsWith('f:')) { cur = isObj(cur) ? cur[t.slice(2)] : undefined; continue; }
    if (!Array.isArray(cur)) return undefined;
    if (t.startsWith('k:')) {
      const want = JSON.parse(t.slice(2)) as Json;
      cur = cur.find((x) => isObj(x) && Object.entries(want).every(([k, v]) => deepEqual(x[k], v)));
    } else if (t.startsWith('v:')) {
      const want = JSON.parse(t.slice(2)) as unknown;
      cur = cur.some((x) => deepEqual(x, want)) ? want : undefined;
    } else return undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

/** Removes the field at a path from the object (a list item for `.`/`v:`). */
function removeAt(obj: Json, path: string[]): void {
  const last = path[path.length - 1] === '.' ? path.slice(0, -1) : path;
  const parentPath = last.slice(0, -1);
  const t = last[last.length - 1];
  const parent = parentPath.length === 0 ? obj : valueAt(obj, parentPath);
  if (t.startsWith('f:')) { if (isObj(parent)) delete parent[t.slice(2)]; return; }
  // A list item: find its list (the parent is the list itself).
  const list = parent;
  if (!Array.isArray(list)) return;
  const item = valueAt(list, [t]);
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}

/** Fields added or changed from old to next, and fields gone. */
function compare(old: Json, next: Json, scope: Scope): { changed: FieldSet; removed: FieldSet } {
  const before = fieldSetOf(old, scope);
  const after = fieldSetOf(next, scope);
  const changed: FieldSet = new Set();
  for (const p of after) {
    if (!before.has(p)) { changed.add(p); continue; }
    const path = JSON.parse(p) as string[];
    if (path[path.length - 1] !== '.' && !deepEqual(valueAt(old, path), valueAt(next, path))) changed.add(p);
  }
  const removed: FieldSet = new Set([...before].filter((p) => !after.has(p)));
  return { changed, removed };
}

// ---- FieldsV1 encoding --------------------------------------------------------------

function toFieldsV1(set: FieldSet): Json {
  const root: Json = {};
  for (const p of [...set].sort()) {
    let node = root;
    for (const t of JSON.parse(p) as string[]) node = (isObj(node[t]) ? node[t] : (node[t] = {})) as Json;
  }
  return root;
}

function fromFieldsV1(v: Json, path: string[] = [], out: FieldSet = new Set()): FieldSet {
  for (const [t, child] of Object.entries(v)) {
    if (!isObj(child)) continue;
    if (t === '.' || Object.keys(child).length === 0) out.add(JSON.stringify([...path, t]));
    else fromFieldsV1(child, [...path, t], out);
  }
  return out;
}

/** The valid entries of metadata.managedFields; anything malformed is dropped. */
function owners(obj: Json | undefined): Owner[] {
  const mf = isObj(obj?.metadata) ? (obj!.metadata as Json).managedFields : undefined;
  if (!Array.isArray(mf)) return [];
  const out: Owner[] = [];
  for (const e of mf) {
    if (!isObj(e) || typeof e.manager !== 'string' || (e.operation !== 'Apply' && e.operation !== 'Update') || !isObj(e.fieldsV1)) continue;
    out.push({ entry: clone(e) as unknown as ManagedFieldsEntry, set: fromFieldsV1(e.fieldsV1) });
  }
  return out;
}

function serialize(list: Owner[]): ManagedFieldsEntry[] {
  return list.filter((o) => o.set.size > 0).map((o) => ({ ...o.entry, fieldsType: 'FieldsV1', fieldsV1: toFieldsV1(o.set) }));
}

function ownerOf(list: Owner[], manager: string, operation: 'Apply' | 'Update', apiVersion: string): Owner {
  let o = list.find((x) => x.entry.manager === manager && x.entry.operation === operation);
  if (!o) { o = { entry: { manager, operation, apiVersion, time: nowRfc3339(), fieldsType: 'FieldsV1', fieldsV1: {} }, set: new Set() }; list.push(o); }
  return o;
}

function setOwned(o: Owner, set: FieldSet, apiVersion: string): void {
  if (o.set.size !== set.size || [...set].some((p) => !o.set.has(p))) o.entry.time = nowRfc3339();
  o.set = set;
  o.entry.apiVersion = apiVersion;
}

/** `.spec.template.spec.containers[name="app"].image`, as Kubernetes prints a field path. */
export function formatPath(p: string): string {
  return (JSON.parse(p) as string[]).map((t) => {
    if (t.startsWith('f:')) return `.${t.slice(2)}`;
    if (t.startsWith('k:')) return `[${Object.entries(JSON.parse(t.slice(2)) as Json).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}]`;
    if (t.startsWith('v:')) return `[=${t.slice(2)}]`;
    return '';
  }).join('');
}

function conflictError(conflicts: Map<Owner, string[]>, kind: string, group: string, name: string): ApiError {
  const label = (o: Owner): string => o.entry.operation === 'Update' ? `"${o.entry.manager}" using ${o.entry.apiVersion}` : `"${o.entry.manager}"`;
  const all = [...conflicts].flatMap(([o, ps]) => ps.map((p) => ({ o, p })));
  const n = all.length;
  const text = n === 1
    ? `conflict with ${label(all[0].o)}: ${formatPath(all[0].p)}`
    : [...conflicts].map(([o, ps]) => [`conflicts with ${label(o)}:`, ...ps.map((p) => `- ${formatPath(p)}`)].join('\n')).join('\n');
  return new ApiError(409, 'Conflict', `Apply failed with ${n} conflict${n === 1 ? '' : 's'}: ${text}`, {
    name, group, kind,
    causes: all.map(({ o, p }) => ({ reason: 'FieldManagerConflict', type: 'FieldManagerConflict', message: `conflict with ${label(o)}`, field: formatPath(p) })),
  });
}

export interface ApplyOptions { manager: string; force: boolean; apiVersion: string; scope: Scope; kind: string; group: string; name: string }

/**
 * Server-side apply of `config` to `live`: merged in, conflicts with fields other managers own
 * and the merge would change (409 unless forced; forced = taken over), fields the manager
 * applied before and omits now pruned unless someone else owns them. Returns the new object
 * with its managedFields.
 */
export function applyConfiguration(live: Json, config: Json, o: ApplyOptions): Json {
  const cfg = clone(config);
  if (isObj(cfg.metadata)) delete cfg.metadata.managedFields;
  const list = owners(live);
  const merged = applyStrategicMergePatch(live, cfg);
  const { changed, removed } = compare(live, merged, o.scope);
  const conflicts = new Map<Owner, string[]>();
  for (const other of list) {
    if (other.entry.manager === o.manager && other.entry.operation === 'Apply') continue;
    const hit = [...other.set].filter((p) => changed.has(p));
    if (hit.length > 0) conflicts.set(other, hit);
  }
  if (conflicts.size > 0 && !o.force) throw conflictError(conflicts, o.kind, o.group, o.name);
  for (const [other, hit] of conflicts) for (const p of hit) other.set.delete(p);
  for (const x of list) for (const p of removed) x.set.delete(p);
  const mine = ownerOf(list, o.manager, 'Apply', o.apiVersion);
  const before = mine.set;
  setOwned(mine, fieldSetOf(cfg, o.scope), o.apiVersion);
  // Prune what this manager applied before and nobody owns now; deepest paths first.
  const ownedByAny = (p: string): boolean => list.some((x) => x.set.has(p));
  const prune = [...before].filter((p) => !ownedByAny(p)).map((p) => JSON.parse(p) as string[]).sort((a, b) => b.length - a.length);
  for (const path of prune) {
    if (path[path.length - 1] === '.') {
      const prefix = JSON.stringify(path.slice(0, -1)).slice(0, -1);
      if (list.some((x) => [...x.set].some((q) => q.startsWith(prefix)))) continue;
    }
    removeAt(merged, path);
  }
  merged.metadata = { ...(isObj(merged.metadata) ? merged.metadata : {}), managedFields: serialize(list) };
  return merged;
}

/** managedFields after a non-apply write (create, update, patch) by `manager`. */
export function trackUpdate(old: Json | undefined, next: Json, manager: string, apiVersion: string, scope: Scope): ManagedFieldsEntry[] {
  const list = owners(old);
  const { changed, removed } = compare(old ? project(old, scope) : {}, project(next, scope), 'all');
  const mine = ownerOf(list, manager, 'Update', apiVersion);
  for (const x of list) {
    if (x !== mine) for (const p of changed) x.set.delete(p);
    for (const p of removed) x.set.delete(p);
  }
  const set = new Set(mine.set);
  for (const p of changed) set.add(p);
  for (const p of removed) set.delete(p);
  setOwned(mine, set, apiVersion);
  return serialize(list);
}

/** The managedFields of a created object: an Apply entry with the applied fields, or an Update entry with all. */
export function createEntries(obj: Json, manager: string, apiVersion: string, scope: Scope, applied?: Json): ManagedFieldsEntry[] {
  const set = applied ? fieldSetOf(applied, scope) : fieldSetOf(obj, scope);
  return serialize([{ entry: { manager, operation: applied ? 'Apply' : 'Update', apiVersion, time: nowRfc3339(), fieldsType: 'FieldsV1', fieldsV1: {} }, set }]);
}

/** A write's manager: `fieldManager`, else the User-Agent up to its first '/' (Kubernetes' prefixFromUserAgent). */
export function managerOf(fieldManager: string | null, userAgent: string | undefined): string | undefined {
  if (fieldManager) return fieldManager;
  if (!userAgent) return undefined;
  return userAgent.split('/')[0].slice(0, 128) || undefined;
}
