// Authenticates a workload's ServiceAccount token the way istiod does: a TokenReview through
// the Kubernetes API, then `system:serviceaccount:<ns>:<sa>` gives the caller's identity.
import { R, type KubeClient, type KubeObject } from '../../api/kube/index.js';

export interface ReviewedCaller { namespace: string; serviceAccount: string; username: string }

export interface TokenReviewer {
  /** The caller behind a token; throws (message says why) when it is not an authenticated ServiceAccount. */
  review(token: string): Promise<ReviewedCaller>;
}

interface TokenReview extends KubeObject {
  spec: { token: string; audiences?: string[] };
  status?: { authenticated?: boolean; error?: string; audiences?: string[]; user?: { username?: string } };
}

const SA_PREFIX = 'system:serviceaccount:';

/** Splits `system:serviceaccount:<ns>:<sa>`; undefined for any other user name. */
export function serviceAccountOf(username: string): { namespace: string; serviceAccount: string } | undefined {
  if (!username.startsWith(SA_PREFIX)) return undefined;
  const parts = username.slice(SA_PREFIX.length).split(':');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
  return { namespace: parts[0], serviceAccount: parts[1] };
}

export class KubeTokenReviewer implements TokenReviewer {
  /** `audiences`: the token must be meant for one of these (Istio: `istio-ca`); empty accepts the API server's. */
  constructor(private readonly client: KubeClient, private readonly audiences: string[] = ['istio-ca']) {}

  async review(token: string): Promise<ReviewedCaller> {
    const spec: TokenReview['spec'] = { token };
    if (this.audiences.length > 0) spec.audiences = this.audiences;
    const res = await this.client.create<TokenReview>(R.tokenReviews, { metadata: {}, spec });
    const st = res.status;
    if (!st?.authenticated) throw new Error(`token review: not authenticated: ${st?.error ?? 'no reason given'}`);
    if (this.audiences.length > 0 && !(st.audiences ?? []).some((a) => this.audiences.includes(a))) {
      throw new Error(`token review: token audiences ${JSON.stringify(st.audiences ?? [])} do not include ${JSON.stringify(this.audiences)}`);
    }
    const username = st.user?.username ?? '';
    const sa = serviceAccountOf(username);
    if (!sa) throw new Error(`token review: user "${username}" is not a service account`);
    return { ...sa, username };
  }
}
