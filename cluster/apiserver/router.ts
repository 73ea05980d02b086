// Top-level request routing: health and version without auth, then authentication,
// then discovery/OpenAPI documents or the generic resource handler.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { clientCertificateUser } from './authn.js';
import type { ApiContext } from './context.js';
import { ApiError, toApiError, unauthorized } from './errors.js';
import { sendError, sendJson, sendText } from './http.js';
import { requestInfo } from './requestinfo.js';
import { authorizeRequest } from './authz.js';
import { impersonate } from './impersonation.js';
import { apiGroup, apiGroupList, apiResourceList, apiVersions, openApiV3GroupDoc, openApiV3Root, VERSION_INFO } from './discovery.js';
import { handleResource } from './rest/handler.js';
import { aggregatedContentType, aggregatedDiscovery, wantsAggregated } from './aggregated-discovery.js';
import { ApiMetrics } from './metrics.js';

const PUBLIC_PATHS = new Set(['/healthz', '/livez', '/readyz', '/version']);

export function createRouter(api: ApiContext, opts: { serverAddress: () => string; ready: () => boolean; apiAudiences: string[] }) {
  const metrics = new ApiMetrics();
  const notFound = (): ApiError => new ApiError(404, 'NotFound', 'the server could not find the requested resource');

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://apiserver');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (PUBLIC_PATHS.has(path) || path.startsWith('/healthz/') || path.startsWith('/livez/') || path.startsWith('/readyz/')) {
      if (path === '/version') return sendJson(res, 200, VERSION_INFO);
      if (path.startsWith('/readyz') && !opts.ready()) return sendText(res, 500, 'readyz check failed');
      return sendText(res, 200, 'ok');
    }
    // A valid client certificate wins, as in kube-apiserver's union authenticator (x509 first).
    const byCert = clientCertificateUser(req.socket as TLSSocket);
    const token = api.authn.bearerToken(req.headers.authorization);
    const result = byCert?.user ? byCert : token ? await api.authn.authenticate(token) : undefined;
    if (!result?.user) throw unauthorized();
    const user = await impersonate(req, result.user, api.authorize);

    const info = requestInfo(req.method ?? 'GET', url);
    if (info.resourceRequest) return handleResource(api, { req, res, url, info, user }, opts.apiAudiences);
    await authorizeRequest(api.authorize, user, info);
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new ApiError(405, 'MethodNotAllowed', `${req.method} is not allowed on ${path}`);

    if (path === '/metrics') {
      const m = await metrics.render();
      res.writeHead(200, { 'Content-Type': m.contentType });
      res.end(m.body);
      return;
    }
    if (path === '/api' || path === '/apis') {
      res.setHeader('Vary', 'Accept');
      const agg = wantsAggregated(req.headers.accept);
      if (agg) {
        const body = JSON.stringify(aggregatedDiscovery(api.registry, path === '/api', agg));
        res.writeHead(200, { 'Content-Type': aggregatedContentType(agg), 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
    }
    if (path === '/api') return sendJson(res, 200, apiVersions(opts.serverAddress()));
    if (path === '/apis') return sendJson(res, 200, apiGroupList(api.registry));
    let m = /^\/api\/([^/]+)$/.exec(path);
    if (m) { const d = apiResourceList(api.registry, '', m[1]); if (d) return sendJson(res, 200, d); throw notFound(); }
    m = /^\/apis\/([^/]+)$/.exec(path);
    if (m) { const d = apiGroup(api.registry, m[1]); if (d) return sendJson(res, 200, d); throw notFound(); }
    m = /^\/apis\/([^/]+)\/([^/]+)$/.exec(path);
    if (m) { const d = apiResourceList(api.registry, m[1], m[2]); if (d) return sendJson(res, 200, d); throw notFound(); }
    if (path === '/openapi/v3') return sendJson(res, 200, openApiV3Root(api.registry));
    m = /^\/openapi\/v3\/(?:api\/([^/]+)|apis\/([^/]+)\/([^/]+))$/.exec(path);
    if (m) {
      const d = m[1] ? openApiV3GroupDoc(api.registry, '', m[1]) : openApiV3GroupDoc(api.registry, m[2], m[3]);
      if (d) return sendJson(res, 200, d);
      throw notFound();
    }
    if (path === '/openapi/v2') {
      // An empty protobuf Document: kubectl's client-side validation then finds no schemas and skips.
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': 0 });
      res.end();
      return;
    }
    throw notFound();
  }

  return (req: IncomingMessage, res: ServerResponse): void => {
    metrics.observe(req, res);
    route(req, res).catch((e: unknown) => {
      const err = toApiError(e);
      if (err.code >= 500) console.error(`apiserver: ${req.method} ${req.url}: ${err.message}`, e instanceof ApiError ? '' : e);
      sendError(res, err);
    });
  };
}
