// Authentication of ADS streams on the TLS port (15012), as istiod does it: the proxy sends
// its projected ServiceAccount token (audience istio-ca) as `authorization: Bearer <jwt>`
// call metadata; a TokenReview names the caller, whose namespace must be the node's. The
// verified identity decides which gateway credentials (SDS `kubernetes://`) it may read.
import * as grpc from '@grpc/grpc-js';

export interface XdsIdentity { namespace: string; serviceAccount: string }

/** Structurally pilot/ca/token-reviewer.ts's TokenReviewer. */
export interface XdsTokenReviewer {
  review(token: string): Promise<XdsIdentity & { username: string }>;
}

/** An error that ends the stream with this gRPC status. */
export class StreamStatusError extends Error {
  constructor(readonly code: grpc.status, message: string) { super(message); }
}

/** The caller's identity from the call's `authorization` metadata; the token is never logged. */
export async function authenticateStream(metadata: grpc.Metadata, reviewer: XdsTokenReviewer): Promise<XdsIdentity> {
  const header = metadata.get('authorization')[0];
  const m = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header.trim()) : null;
  if (!m) throw new StreamStatusError(grpc.status.UNAUTHENTICATED, 'xDS: no "authorization: Bearer <token>" metadata (a ServiceAccount token with audience istio-ca is required on this port)');
  try {
    const { namespace, serviceAccount } = await reviewer.review(m[1]);
    return { namespace, serviceAccount };
  } catch (e) {
    throw new StreamStatusError(grpc.status.UNAUTHENTICATED, `xDS: caller not authenticated: ${(e as Error).message}`);
  }
}

/** Refuses a node id claiming another namespace than the caller's token. */
export function checkNodeNamespace(identity: XdsIdentity, nodeId: string, nodeNamespace: string): void {
  if (identity.namespace !== nodeNamespace) {
    throw new StreamStatusError(grpc.status.PERMISSION_DENIED,
      `xDS: node ${nodeId} claims namespace "${nodeNamespace}" but the caller is system:serviceaccount:${identity.namespace}:${identity.serviceAccount}`);
  }
}

/** Why a connection may not read the gateway credentials of `namespace`; undefined if it may. */
export function secretsRefusal(identity: XdsIdentity | undefined, namespace: string): string | undefined {
  if (!identity) return 'gateway credentials (SDS kubernetes://) are served only over the TLS port 15012 to a caller authenticated with its ServiceAccount token, not on the plaintext port';
  if (identity.namespace !== namespace) return `caller's namespace "${identity.namespace}" is not the gateway's "${namespace}"`;
  return undefined;
}
