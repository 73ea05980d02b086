// GET and LIST for every kind, as JSON objects or as meta.k8s.io Tables.
import type { ApiContext, Request } from '../context.js';
import { ApiError, badRequest, notFound } from '../errors.js';
import { isStoreError } from '../../store/types.js';
import { decodeContinue, encodeContinue, parseLimit } from './paging.js';
import { sendJson } from '../http.js';
import type { KindInfo } from '../registry/types.js';
import { parseFieldSelector, parseLabelSelector } from '../selectors.js';
import { toTable, wantsTable } from '../table.js';
import { getPath, type Json } from '../util.js';
import { fromStorage, keyOf, listPrefix, makeMatcher, resourceName } from './objects.js';

export async function getObject(api: ApiContext, k: KindInfo, namespace: string, name: string, version: string): Promise<Json> {
  const obj = await api.store.get(keyOf(k, namespace, name));
  if (!obj) throw notFound(resourceName(k), name);
  return fromStorage(obj, k, version);
}

export async function serveGet(api: ApiContext, r: Request, k: KindInfo): Promise<void> {
  const obj = await getObject(api, k, r.info.namespace, r.info.name, r.info.version);
  if (wantsTable(r.req.headers.accept)) {
    sendJson(r.res, 200, toTable(k, [obj], String(getPath(obj, 'metadata.resourceVersion') ?? ''), r.url.searchParams.get('includeObject')));
    return;
  }
  sendJson(r.res, 200, obj);
}

export interface ListPage { items: Json[]; revision: number; continue?: string; remainingItemCount?: number }

/** A list with selectors, and with limit/continue when asked (limit 0 = everything). */
export async function listObjects(api: ApiContext, k: KindInfo, namespace: string, version: string, query: URLSearchParams): Promise<ListPage> {
  const labels = parseLabelSelector(query.get('labelSelector'));
  const fields = parseFieldSelector(query.get('fieldSelector'));
  const match = makeMatcher(k, labels, fields.matcher, fields.fields);
  const prefix = listPrefix(k, namespace);
  const limit = parseLimit(query);
  const token = query.get('continue');
  const cont = token ? decodeContinue(token, prefix) : undefined;
  const rv = query.get('resourceVersion');
  const rvMatch = query.get('resourceVersionMatch');
  let at: number | undefined;
  if (cont) {
    if (rv && rv !== '0') throw badRequest('specifying resource version is not allowed when using continue');
    // Every page reads the snapshot of the first one, as Kubernetes' etcd3 store does.
    at = cont.rv;
  } else if (rvMatch === 'Exact') {
    if (!rv || rv === '0' || !/^\d+$/.test(rv)) throw badRequest('resourceVersionMatch "Exact" requires a resourceVersion greater than 0');
    at = Number(rv);
  } else if (rvMatch && rvMatch !== 'NotOlderThan') {
    throw badRequest(`resourceVersionMatch: Unsupported value: "${rvMatch}": supported values: "Exact", "NotOlderThan"`);
  }
  const { items: all, revision } = await listAt(api, prefix, at, cont !== undefined);
  const keyed = all.map((o) => ({ o, key: keyOf(k, String(getPath(o, 'metadata.namespace') ?? ''), String(getPath(o, 'metadata.name'))) }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const after = cont ? keyed.filter((x) => x.key >= cont.start) : keyed;
  const matching = after.filter((x) => match(x.o));
  const page = limit > 0 ? matching.slice(0, limit) : matching;
  const out: ListPage = { items: page.map((x) => fromStorage(x.o, k, version)), revision: cont ? cont.rv : revision };
  if (limit > 0 && matching.length > limit) {
    out.continue = encodeContinue(page[page.length - 1].key, out.revision);
    // Kubernetes counts the rest only when no selector could make the count expensive or wrong.
    if (!query.get('labelSelector') && !query.get('fieldSelector')) out.remainingItemCount = matching.length - limit;
  }
  return out;
}

/** A list now, or at a past revision; 410 Expired when the store has compacted that revision. */
async function listAt(api: ApiContext, prefix: string, at: number | undefined, isContinue: boolean): Promise<{ items: Json[]; revision: number }> {
  if (at === undefined) return api.store.list(prefix);
  const current = await api.store.revision();
  if (at > current) throw new ApiError(504, 'Timeout', `Too large resource version: ${at}, current: ${current}`);
  try {
    return await api.store.list(prefix, { revision: at });
  } catch (e) {
    if (!isStoreError(e, 'Compacted')) throw e;
    throw new ApiError(410, 'Expired', isContinue
      ? 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.'
      : `too old resource version: ${at}`);
  }
}

export async function serveList(api: ApiContext, r: Request, k: KindInfo): Promise<void> {
  const page = await listObjects(api, k, r.info.namespace, r.info.version, r.url.searchParams);
  const listMeta: Json = { resourceVersion: String(page.revision) };
  if (page.continue) listMeta.continue = page.continue;
  if (page.remainingItemCount !== undefined) listMeta.remainingItemCount = page.remainingItemCount;
  if (wantsTable(r.req.headers.accept)) {
    const table = toTable(k, page.items, String(page.revision), r.url.searchParams.get('includeObject'));
    table.metadata = listMeta;
    sendJson(r.res, 200, table);
    return;
  }
  sendJson(r.res, 200, {
    apiVersion: k.group ? `${k.group}/${r.info.version}` : r.info.version,
    kind: k.listKind,
    metadata: listMeta,
    items: page.items,
  });
}
