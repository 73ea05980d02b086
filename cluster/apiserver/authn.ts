// Bearer-token authentication: the admin token, and ServiceAccount JWTs that are checked
// on every request against the store (the service account, and a bound pod, must still exist).
import { timingSafeEqual } from 'node:crypto';
import type { Store } from '../store/types.js';
import type { TokenSigner } from './tokens.js';
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
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
