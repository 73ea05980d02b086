// Helpers shared by the generic handlers: versions, keys, selection.
import type { ApiContext } from '../context.js';
import { forbidden, notFound } from '../errors.js';
import { apiVersionFor, storeKey, storePrefix, type KindInfo } from '../registry/types.js';
import type { Matcher } from '../selectors.js';
import { getPath, isObj, str, stringMap, type Json } from '../util.js';

/** Sets apiVersion/kind for the version the client asked for (CRD versions share one stored form). */
export function toExternal(obj: Json, k: KindInfo, version: string): Json {
  const { apiVersion: _a, kind: _k, ...rest } = obj;
  return { apiVersion: apiVersionFor(k, version), kind: k.kind, ...rest };
}

/**
 * An object read from the store, in the client's version, with what a kind adds on read: a
 * CRD's schema defaults (apiextensions applies them on read too, so a default added to a CRD
 * later shows on objects stored before it; it is written back only by the next update).
 */
export function fromStorage(obj: Json, k: KindInfo, version: string): Json {
  const out = toExternal(obj, k, version);
  return k.strategy.onRead ? k.strategy.onRead(out) : out;
}

export function keyOf(k: KindInfo, namespace: string, name: string): string {
  return storeKey(k, namespace || undefined, name);
}

/** The store prefix for a list/watch: all namespaces, or one. */
export function listPrefix(k: KindInfo, namespace: string): string {
  return k.namespaced && namespace ? `${storePrefix(k)}${namespace}/` : storePrefix(k);
}

export function selectableFields(k: KindInfo, obj: Json): Record<string, string | undefined> {
  const f: Record<string, string | undefined> = {
    'metadata.name': str(getPath(obj, 'metadata.name')),
    'metadata.namespace': str(getPath(obj, 'metadata.namespace')),
  };
  return { ...f, ...(k.strategy.fields?.(obj) ?? {}) };
}

export function makeMatcher(k: KindInfo, labels: Matcher, fields: Matcher, fieldNames: string[]): (obj: Json) => boolean {
  return (obj) => {
    if (!labels(stringMap(getPath(obj, 'metadata.labels')))) return false;
    if (fieldNames.length === 0) return true;
    const sf = selectableFields(k, obj);
    // Fields the kind does not declare are read from the object itself (lenient).
    for (const f of fieldNames) if (!(f in sf)) { const v = getPath(obj, f); sf[f] = v === undefined ? undefined : String(v); }
    return fields(sf);
  };
}

/** Namespaced writes need an existing namespace that is not being deleted. */
export async function checkNamespace(api: ApiContext, namespace: string, forCreate: boolean): Promise<void> {
  const ns = await api.store.get(`/registry/namespaces/${namespace}`);
  if (!ns) throw notFound({ group: '', resource: 'namespaces' }, namespace);
  if (forCreate && isObj(ns.metadata) && ns.metadata.deletionTimestamp) {
    throw forbidden(`unable to create new content in namespace ${namespace} because it is being terminated`);
  }
}

export function resourceName(k: KindInfo): { group: string; resource: string } {
  return { group: k.group, resource: k.resource };
}
