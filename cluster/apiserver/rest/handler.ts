// Dispatches a resource request to the generic verbs or a subresource handler.
import type { ApiContext, Request } from '../context.js';
import { authorizeRequest } from '../authz.js';
import { ApiError, badRequest, methodNotSupported, unsupportedMediaType } from '../errors.js';
import { decodeBody } from '../decode.js';
import { readBody, sendJson } from '../http.js';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, patchTypeOf } from '../patch.js';
import { parse as parseYaml } from 'yaml';
import type { KindInfo } from '../registry/types.js';
import { clone, getPath, isObj, str, type Json } from '../util.js';
import { createObject, deleteObject, updateObject, type DeleteOptions, type PropagationPolicy, type WriteOptions } from './write.js';
import { getObject, listObjects, serveGet, serveList } from './read.js';
import { serveWatch } from './watch.js';
import { bindPod, finalizeNamespace, getScale, requestToken, writeScale } from './subresources.js';
import { resourceName } from './objects.js';
import { applyConfiguration, managerOf } from '../managed-fields.js';
import { duplicateFields, fieldValidationOf, warningHeader, type FieldValidationRequest } from '../field-validation.js';

const notServed = (): ApiError => new ApiError(404, 'NotFound', 'the server could not find the requested resource');

async function jsonBody(r: Request): Promise<Json> {
  return decodeBody(await readBody(r.req), r.req.headers['content-type']);
}

const isJson = (contentType: string | undefined): boolean => {
  const ct = (contentType ?? 'application/json').split(';')[0].trim().toLowerCase();
  return ct === 'application/json' || ct === '' || ct.endsWith('+json');
};

/** A create/update body, with its duplicate fields noted for field validation. */
async function writeBody(r: Request, o: WriteOptions): Promise<Json> {
  const raw = await readBody(r.req);
  if (o.fieldValidation && isJson(r.req.headers['content-type'])) o.fieldValidation.duplicates = duplicateFields(raw.toString('utf8'));
  return decodeBody(raw, r.req.headers['content-type']);
}

/** The request's fieldValidation, with warnings going out as `Warning` headers (each once). */
function fieldValidation(r: Request, source: FieldValidationRequest['source']): FieldValidationRequest {
  const sent = new Set<string>();
  return {
    mode: fieldValidationOf(r.url.searchParams), duplicates: [], source,
    warn(text) {
      if (sent.has(text) || r.res.headersSent) return;
      sent.add(text);
      r.res.appendHeader('Warning', warningHeader(text));
    },
  };
}

function parsePatchBody(buf: Buffer, type: string): unknown {
  const text = buf.toString('utf8');
  try {
    return type === 'apply' ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw badRequest(`error decoding patch: ${(e as Error).message}`);
  }
}

function applyPatch(cur: Json, type: string, patch: unknown): Json {
  if (type === 'json') return applyJsonPatch(cur, patch);
  if (!isObj(patch)) throw badRequest('patch body must be a JSON object');
  if (type === 'merge') return applyMergePatch(cur, patch) as Json;
  return applyStrategicMergePatch(cur, patch); // strategic, and server-side apply (create-or-merge)
}

function deleteOptions(q: URLSearchParams, body: Json): DeleteOptions {
  const qg = q.get('gracePeriodSeconds');
  const grace = qg !== null ? Number(qg) : typeof body.gracePeriodSeconds === 'number' ? body.gracePeriodSeconds : undefined;
  const pre = isObj(body.preconditions) ? body.preconditions : {};
  return { gracePeriodSeconds: grace, propagationPolicy: propagationOf(q, body), preconditions: { uid: str(pre.uid), resourceVersion: str(pre.resourceVersion) } };
}

const POLICIES: PropagationPolicy[] = ['Orphan', 'Background', 'Foreground'];

/** propagationPolicy (query or body), or the deprecated orphanDependents; both set is an error, as in Kubernetes. */
function propagationOf(q: URLSearchParams, body: Json): PropagationPolicy | undefined {
  const p = q.get('propagationPolicy') ?? str(body.propagationPolicy);
  const orphanRaw = q.get('orphanDependents') ?? (typeof body.orphanDependents === 'boolean' ? String(body.orphanDependents) : null);
  if (p !== undefined && p !== null && p !== '') {
    if (orphanRaw !== null) throw badRequest('propagationPolicy: Invalid value: "' + p + '": orphanDependents and deletionPropagation cannot be both set');
    if (!POLICIES.includes(p as PropagationPolicy)) throw badRequest(`propagationPolicy: Unsupported value: "${p}": supported values: "Foreground", "Background", "Orphan"`);
    return p as PropagationPolicy;
  }
  if (orphanRaw === 'true') return 'Orphan';
  if (orphanRaw === 'false') return 'Background';
  return undefined;
}

export async function handleResource(api: ApiContext, r: Request, apiAudiences: string[]): Promise<void> {
  const { info, url } = r;
  // Authorization comes first: a denied user learns nothing about what is served.
  await authorizeRequest(api.authorize, r.user, info);
  const k = api.registry.lookup(info.group, info.version, info.resource);
  if (!k) throw notServed();
  if (!k.namespaced && info.namespace) throw notServed();
  const o: WriteOptions = {
    user: r.user, dryRun: url.searchParams.get('dryRun') === 'All', version: info.version,
    manager: managerOf(url.searchParams.get('fieldManager'), r.req.headers['user-agent']),
  };
  if (info.subresource) return handleSubresource(api, r, k, o, apiAudiences);

  const verb = info.verb;
  if (!k.verbs.includes(verb)) throw methodNotSupported(resourceName(k), verb);
  const ns = info.namespace;
  switch (verb) {
    case 'get': return serveGet(api, r, k);
    case 'list': return serveList(api, r, k);
    case 'watch': return serveWatch(api, r, k);
    case 'create': {
      if (info.name) throw methodNotSupported(resourceName(k), 'create');
      if (k.namespaced && !ns && !k.strategy.virtualCreate) throw notServed();
      o.fieldValidation = fieldValidation(r, 'body');
      const created = await createObject(api, k, ns, await writeBody(r, o), o);
      return sendJson(r.res, k.strategy.virtualCreate ? 201 : 201, created);
    }
    case 'update': {
      o.fieldValidation = fieldValidation(r, 'body');
      const body = await writeBody(r, o);
      const want = str(getPath(body, 'metadata.resourceVersion')) || undefined;
      const updated = await updateObject(api, k, ns, info.name, '', () => ({ obj: body, expectedResourceVersion: want }), o);
      return sendJson(r.res, 200, updated);
    }
    case 'patch': return servePatch(api, r, k, '', o);
    case 'delete': {
      const raw = await readBody(r.req);
      const body = raw.length > 0 ? decodeBody(raw, r.req.headers['content-type']) : {};
      return sendJson(r.res, 200, await deleteObject(api, k, ns, info.name, deleteOptions(url.searchParams, body), o));
    }
    case 'deletecollection': {
      const raw = await readBody(r.req);
      const body = raw.length > 0 ? decodeBody(raw, r.req.headers['content-type']) : {};
      const { items } = await listObjects(api, k, ns, info.version, url.searchParams);
      const deleted: Json[] = [];
      for (const it of items) {
        try {
          deleted.push(await deleteObject(api, k, String(getPath(it, 'metadata.namespace') ?? ''), String(getPath(it, 'metadata.name')), deleteOptions(url.searchParams, body), o));
        } catch (e) {
          if (!(e instanceof ApiError && e.code === 404)) throw e;
        }
      }
      return sendJson(r.res, 200, { apiVersion: k.group ? `${k.group}/${info.version}` : info.version, kind: k.listKind, metadata: {}, items: deleted });
    }
    default: throw methodNotSupported(resourceName(k), verb);
  }
}

async function servePatch(api: ApiContext, r: Request, k: KindInfo, subresource: string, o: WriteOptions): Promise<void> {
  const type = patchTypeOf(r.req.headers['content-type']);
  if (!type) throw unsupportedMediaType(String(r.req.headers['content-type']));
  const raw = await readBody(r.req);
  const patch = parsePatchBody(raw, type);
  const fieldManager = r.url.searchParams.get('fieldManager');
  if (type === 'apply') {
    if (!fieldManager) throw badRequest('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch');
    if (!isObj(patch)) throw badRequest('error decoding patch: an apply configuration must be an object');
    o.manager = fieldManager;
    o.applied = clone(patch);
  }
  const force = r.url.searchParams.get('force') === 'true';
  o.fieldValidation = fieldValidation(r, type === 'apply' ? 'apply' : 'patch');
  if (type === 'merge' || type === 'strategic') o.fieldValidation.duplicates = duplicateFields(raw.toString('utf8'));
  const mentionsRv = JSON.stringify(patch).includes('"resourceVersion"');
  const { namespace: ns, name } = r.info;
  try {
    const out = await updateObject(api, k, ns, name, subresource, (cur) => {
      const curRv = str(getPath(cur, 'metadata.resourceVersion'));
      const next = type === 'apply'
        ? applyConfiguration(cur, patch as Json, {
          manager: fieldManager!, force, apiVersion: k.group ? `${k.group}/${o.version}` : o.version,
          scope: subresource === 'status' ? 'status' : k.status ? 'main' : 'all', kind: k.kind, group: k.group, name,
        })
        : applyPatch(cur, type, patch);
      const rv = str(getPath(next, 'metadata.resourceVersion'));
      return { obj: next, expectedResourceVersion: mentionsRv && rv ? rv : rv !== curRv ? rv : undefined };
    }, o);
    sendJson(r.res, 200, out);
  } catch (e) {
    // Server-side apply creates what does not exist yet.
    if (type === 'apply' && subresource === '' && e instanceof ApiError && e.code === 404 && isObj(patch)) {
      const body: Json = { ...clone(patch), metadata: { ...(isObj(patch.metadata) ? patch.metadata : {}), name } };
      sendJson(r.res, 201, await createObject(api, k, ns, body, o));
      return;
    }
    throw e;
  }
}

async function handleSubresource(api: ApiContext, r: Request, k: KindInfo, o: WriteOptions, apiAudiences: string[]): Promise<void> {
  const { info } = r;
  const { namespace: ns, name, subresource: sub, verb } = info;
  const core = k.group === '';
  if (sub === 'status' && k.status) {
    if (verb === 'get') return sendJson(r.res, 200, await getObject(api, k, ns, name, info.version));
    if (verb === 'update') {
      o.fieldValidation = fieldValidation(r, 'body');
      const body = await writeBody(r, o);
      const want = str(getPath(body, 'metadata.resourceVersion')) || undefined;
      return sendJson(r.res, 200, await updateObject(api, k, ns, name, 'status', () => ({ obj: body, expectedResourceVersion: want }), o));
    }
    if (verb === 'patch') return servePatch(api, r, k, 'status', o);
    throw methodNotSupported(resourceName(k), verb);
  }
  if (sub === 'scale' && k.scale) {
    if (verb === 'get') return sendJson(r.res, 200, await getScale(api, k, ns, name, info.version));
    if (verb === 'update') return sendJson(r.res, 200, await writeScale(api, k, ns, name, await jsonBody(r), undefined, o));
    if (verb === 'patch') {
      const type = patchTypeOf(r.req.headers['content-type']);
      if (!type) throw unsupportedMediaType(String(r.req.headers['content-type']));
      return sendJson(r.res, 200, await writeScale(api, k, ns, name, parsePatchBody(await readBody(r.req), type), type, o));
    }
    throw methodNotSupported(resourceName(k), verb);
  }
  if (core && k.resource === 'pods' && sub === 'binding' && verb === 'create') {
    return sendJson(r.res, 201, await bindPod(api, k, ns, name, await jsonBody(r)));
  }
  if (core && k.resource === 'pods' && sub === 'log' && verb === 'get') {
    await getObject(api, k, ns, name, info.version);
    if (!api.podLogs) throw new ApiError(503, 'ServiceUnavailable', `logs of pod ${ns}/${name} are not available: no kubelet log handler is configured`);
    await api.podLogs(r.req, r.res, { namespace: ns, name, query: r.url.searchParams });
    return;
  }
  if (core && k.resource === 'serviceaccounts' && sub === 'token' && verb === 'create') {
    return sendJson(r.res, 201, await requestToken(api, ns, name, await jsonBody(r), apiAudiences));
  }
  if (core && k.resource === 'namespaces' && sub === 'finalize' && verb === 'update') {
    return sendJson(r.res, 200, await finalizeNamespace(api, k, name, await jsonBody(r), info.version));
  }
  throw notServed();
}
