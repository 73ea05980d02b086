// The HTTP RBAC filters of a connection manager, run in filter order before routing (as
// Envoy's filter chain runs them before the router): the first that denies ends the request
// with 403 `RBAC: access denied` (a gRPC request gets PERMISSION_DENIED instead).
import type http from 'node:http';
import type http2 from 'node:http2';
import type { ConnectionContext } from '../runtime.js';
import { evaluateRbac, type RbacAttributes, type RbacConfig } from '../xds/resources/rbac.js';
import { isGrpcRequest, REASON_HEADER, sendLocalReply } from './local-reply.js';

export const RBAC_DENIED_BODY = 'RBAC: access denied';

export function connectionAttributes(ctx: ConnectionContext): RbacAttributes {
  const remote = ctx.downstreamRemote;
  const sourceIp = remote.slice(0, Math.max(0, remote.lastIndexOf(':'))).replace(/^\[|\]$/gu, '');
  const peer = ctx.downstreamTls;
  return {
    destinationIp: ctx.originalDst.address,
    destinationPort: ctx.originalDst.port,
    sourceIp,
    serverName: peer?.sni,
    // Only a verified certificate names a principal; plaintext and unverified peers have none.
    principal: peer?.mtls ? peer.uriSans?.[0] : undefined,
  };
}

export function requestAttributes(req: http.IncomingMessage, ctx: ConnectionContext): RbacAttributes {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const headers: Record<string, string | string[] | undefined> = {
    ...req.headers,
    ':method': req.method ?? 'GET',
    ':authority': req.headers.host ?? (req as unknown as http2.Http2ServerRequest).authority,
    ':path': url,
  };
  return { ...connectionAttributes(ctx), headers, path: q < 0 ? url : url.slice(0, q) };
}

/** Runs every filter; returns the denial (and the deciding filter's policy, if any) or undefined. */
export function runRbac(filters: readonly RbacConfig[], a: RbacAttributes): { policy?: string; filter: RbacConfig } | undefined {
  for (const f of filters) {
    const r = evaluateRbac(f, a);
    if (!r.allowed) return { policy: r.policy, filter: f };
  }
  return undefined;
}

/** Envoy's denial: 403 with the exact body; the reason header names the flag, not the policy. */
export function sendRbacDenied(req: http.IncomingMessage, res: http.ServerResponse): number {
  if (isGrpcRequest(req) || res.headersSent) return sendLocalReply(res, 403, 'RBAC', RBAC_DENIED_BODY);
  res.writeHead(403, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(RBAC_DENIED_BODY), [REASON_HEADER]: `RBAC ${RBAC_DENIED_BODY}` });
  res.end(RBAC_DENIED_BODY);
  return Buffer.byteLength(RBAC_DENIED_BODY);
}
