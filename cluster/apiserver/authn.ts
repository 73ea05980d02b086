// Authentication: X.509 client certificates signed by the API server's client CA (CN = user,
// O = groups), the admin bearer token, and ServiceAccount JWTs that are checked on every
// request against the store (the service account, and a bound pod, must still exist).
import { timingSafeEqual, X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Store } from '../store/types.js';
import { LEGACY_ISSUER, TokenSigner } from './tokens.js';
import { getPath } from './util.js';

export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

export interface AuthnResult { user?: UserInfo; audiences?: string[]; error?: string }

export class Authenticator {
  constructor(
    private readonly adminToken: string,
    private readonly signer: TokenSigner,
    private readonly store: Store,
    /** Audiences the apiserver itself accepts (Kubernetes' --api-audiences). */
    readonly apiAudiences: string[],
  ) {}

  bearerToken(authorization: string | undefined): string | undefined {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    return m ? m[1] : undefined;
  }

  async authenticate(token: string, audiences: string[] = this.apiAudiences): Promise<AuthnResult> {
    if (safeEqual(token, this.adminToken)) {
      return { user: { username: 'admin', groups: ['system:masters', 'system:authenticated'] }, audiences };
    }
    if (TokenSigner.issuerOf(token) === LEGACY_ISSUER) return this.authenticateLegacy(token, audiences);
    const { claims, error } = this.signer.verify(token, audiences);
    if (!claims) return { error: error ?? 'invalid token' };
    const k = claims['kubernetes.io'];
    const sa = await this.store.get(`/registry/serviceaccounts/${k.namespace}/${k.serviceaccount.name}`);
    if (!sa || getPath(sa, 'metadata.uid') !== k.serviceaccount.uid) {
      return { error: `service account ${k.namespace}/${k.serviceaccount.name} has been deleted` };
    }
    const extra: Record<string, string[]> = {};
    if (k.pod) {
      const pod = await this.store.get(`/registry/pods/${k.namespace}/${k.pod.name}`);
      if (!pod || getPath(pod, 'metadata.uid') !== k.pod.uid) return { error: `pod ${k.namespace}/${k.pod.name} has been deleted` };
      extra['authentication.kubernetes.io/pod-name'] = [k.pod.name];
      extra['authentication.kubernetes.io/pod-uid'] = [k.pod.uid];
    }
    const tokenAud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    return {
      user: {
        username: `system:serviceaccount:${k.namespace}:${k.serviceaccount.name}`,
        uid: k.serviceaccount.uid,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${k.namespace}`, 'system:authenticated'],
        extra: Object.keys(extra).length ? extra : undefined,
      },
      audiences: audiences.filter((a) => tokenAud.includes(a)),
    };
  }

  /**
   * A token from a service-account-token Secret. It carries no audience, so (as in Kubernetes)
   * it is good for the API server's own audiences only; it stays valid while the Secret still
   * holds it and the service account it names still exists.
   */
  private async authenticateLegacy(token: string, audiences: string[]): Promise<AuthnResult> {
    const { claims, error } = this.signer.verifyLegacy(token);
    if (!claims) return { error: error ?? 'invalid token' };
    const implied = audiences.filter((a) => this.apiAudiences.includes(a));
    if (implied.length === 0) return { error: 'token audiences do not match' };
    const ns = claims['kubernetes.io/serviceaccount/namespace'];
    const secretName = claims['kubernetes.io/serviceaccount/secret.name'];
    const saName = claims['kubernetes.io/serviceaccount/service-account.name'];
    const saUid = claims['kubernetes.io/serviceaccount/service-account.uid'];
    const secret = await this.store.get(`/registry/secrets/${ns}/${secretName}`);
    const stored = getPath(secret, 'data.token');
    if (!secret || typeof stored !== 'string' || !safeEqual(Buffer.from(stored, 'base64').toString('utf8'), token)) {
      return { error: `token secret ${ns}/${secretName} no longer holds this token` };
    }
    const sa = await this.store.get(`/registry/serviceaccounts/${ns}/${saName}`);
    if (!sa || getPath(sa, 'metadata.uid') !== saUid) return { error: `service account ${ns}/${saName} has been deleted` };
    return {
      user: {
        username: `system:serviceaccount:${ns}:${saName}`,
        uid: saUid,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
      },
      audiences: implied,
    };
  }
}

const CLIENT_AUTH_EKU = '1.3.6.1.5.5.7.3.2';

/**
 * The user of a verified client certificate, like kube-apiserver's x509 authenticator:
 * undefined when none was presented; an error when it does not verify against the client CA
 * or is not meant for client authentication.
 */
export function clientCertificateUser(socket: TLSSocket): AuthnResult | undefined {
  const peer = socket.getPeerCertificate?.();
  if (!peer || Object.keys(peer).length === 0 || !peer.raw) return undefined;
  if (!socket.authorized) return { error: `x509: certificate signed by unknown authority or invalid (${String(socket.authorizationError)})` };
  const x509 = new X509Certificate(peer.raw);
  const eku = x509.keyUsage;
  if (eku && eku.length > 0 && !eku.includes(CLIENT_AUTH_EKU)) return { error: 'x509: certificate specifies an incompatible key usage' };
  const asList = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
  const cn = asList(peer.subject?.CN)[0];
  if (!cn) return { error: 'x509: certificate has no common name' };
  const groups = asList(peer.subject?.O);
  if (!groups.includes('system:authenticated')) groups.push('system:authenticated');
  return { user: { username: cn, groups } };
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
