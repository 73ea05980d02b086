// GET and LIST for every kind, as JSON objects or as meta.k8s.io Tables.
import type { ApiContext, Request } from '../context.js';
import { notFound } from '../errors.js';
import { sendJson } from '../http.js';
import type { KindInfo } from '../registry/types.js';
import { parseFieldSelector, parseLabelSelector } from '../selectors.js';
import { toTable, wantsTable } from '../table.js';
import { getPath, type Json } from '../util.js';
import { keyOf, listPrefix, makeMatcher, resourceName, toExternal } from './objects.js';

export async function getObject(api: ApiContext, k: KindInfo, namespace: string, name: string, version: string): Promise<Json> {
  const obj = await api.store.get(keyOf(k, namespace, name));
  if (!obj) throw notFound(resourceName(k), name);
  return toExternal(obj, k, version);
}

export async function serveGet(api: ApiContext, r: Request, k: KindInfo): Promise<void> {
  const obj = await getObject(api, k, r.info.namespace, r.info.name, r.info.version);
  if (wantsTable(r.req.headers.accept)) {
    sendJson(r.res, 200, toTable(k, [obj], String(getPath(obj, 'metadata.resourceVersion') ?? ''), r.url.searchParams.get('includeObject')));
    return;
  }
  sendJson(r.res, 200, obj);
}

export async function listObjects(api: ApiContext, k: KindInfo, namespace: string, version: string, query: URLSearchParams): Promise<{ items: Json[]; revision: number }> {
  const labels = parseLabelSelector(query.get('labelSelector'));
  const fields = parseFieldSelector(query.get('fieldSelector'));
  const match = makeMatcher(k, labels, fields.matcher, fields.fields);
  const { items, revision } = await api.store.list(listPrefix(k, namespace));
  return { items: items.filter(match).map((o) => toExternal(o, k, version)), revision };
}

export async function serveList(api: ApiContext, r: Request, k: KindInfo): Promise<void> {
  const { items, revision } = await listObjects(api, k, r.info.namespace, r.info.version, r.url.searchParams);
  if (wantsTable(r.req.headers.accept)) {
    sendJson(r.res, 200, toTable(k, items, String(revision), r.url.searchParams.get('includeObject')));
    return;
  }
  sendJson(r.res, 200, {
    apiVersion: k.group ? `${k.group}/${r.info.version}` : r.info.version,
    kind: k.listKind,
    metadata: { resourceVersion: String(revision) },
    items,
  });
}
