// ServiceAccount tokens: RS256 JWTs shaped like Kubernetes' bound tokens, so anything that
// reads them (TokenReview callers, pilot's CA) sees the same claims as on a real cluster.
import { createHash, createPublicKey, createSign, createVerify, randomUUID } from 'node:crypto';

export interface ServiceAccountClaims {
  iss: string;
  sub: string;
  aud: string[];
  exp: number;
  iat: number;
  nbf: number;
  jti: string;
  'kubernetes.io': {
    namespace: string;
    serviceaccount: { name: string; uid: string };
    pod?: { name: string; uid: string };
    secret?: { name: string; uid: string };
  };
}

/**
 * A legacy token, the one the token controller writes into a `kubernetes.io/service-account-token`
 * Secret: no audience, no expiry; valid as long as its Secret and service account exist.
 */
export interface LegacyServiceAccountClaims {
  iss: typeof LEGACY_ISSUER;
  sub: string;
  'kubernetes.io/serviceaccount/namespace': string;
  'kubernetes.io/serviceaccount/secret.name': string;
  'kubernetes.io/serviceaccount/service-account.name': string;
  'kubernetes.io/serviceaccount/service-account.uid': string;
}

/** The issuer Kubernetes writes into legacy (Secret-based) tokens. */
export const LEGACY_ISSUER = 'kubernetes/serviceaccount';

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

export class TokenSigner {
  readonly keyId: string;

  constructor(private readonly privateKeyPem: string, readonly publicKeyPem: string, readonly issuer: string) {
    const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
    this.keyId = createHash('sha256').update(der).digest('base64url');
  }

  issue(opts: { namespace: string; name: string; uid: string; audiences: string[]; expirationSeconds: number; pod?: { name: string; uid: string } }): { token: string; claims: ServiceAccountClaims } {
    const now = Math.floor(Date.now() / 1000);
    const claims: ServiceAccountClaims = {
      iss: this.issuer,
      sub: `system:serviceaccount:${opts.namespace}:${opts.name}`,
      aud: opts.audiences,
      exp: now + opts.expirationSeconds,
      iat: now,
      nbf: now,
      jti: randomUUID(),
      'kubernetes.io': { namespace: opts.namespace, serviceaccount: { name: opts.name, uid: opts.uid } },
    };
    if (opts.pod) claims['kubernetes.io'].pod = opts.pod;
    return { token: this.sign(claims), claims };
  }

  /** The token the token controller stores in a service-account-token Secret. */
  issueLegacy(opts: { namespace: string; name: string; uid: string; secretName: string }): string {
    const claims: LegacyServiceAccountClaims = {
      iss: LEGACY_ISSUER,
      sub: `system:serviceaccount:${opts.namespace}:${opts.name}`,
      'kubernetes.io/serviceaccount/namespace': opts.namespace,
      'kubernetes.io/serviceaccount/secret.name': opts.secretName,
      'kubernetes.io/serviceaccount/service-account.name': opts.name,
      'kubernetes.io/serviceaccount/service-account.uid': opts.uid,
    };
    return this.sign(claims);
  }

  /** The issuer a signed token claims, read without verifying anything (to pick a verifier). */
  static issuerOf(token: string): string | undefined {
    try {
      const iss = (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss?: unknown }).iss;
      return typeof iss === 'string' ? iss : undefined;
    } catch {
      return undefined;
    }
  }

  /** Checks a legacy token's signature and shape; whether its Secret still exists is the caller's check. */
  verifyLegacy(token: string): { claims?: LegacyServiceAccountClaims; error?: string } {
    const { payload, error } = this.checkSignature(token);
    if (!payload) return { error };
    const claims = payload as unknown as LegacyServiceAccountClaims;
    if (claims.iss !== LEGACY_ISSUER) return { error: 'wrong issuer' };
    for (const k of ['kubernetes.io/serviceaccount/namespace', 'kubernetes.io/serviceaccount/secret.name', 'kubernetes.io/serviceaccount/service-account.name', 'kubernetes.io/serviceaccount/service-account.uid'] as const) {
      if (typeof claims[k] !== 'string' || !claims[k]) return { error: `legacy token lacks ${k}` };
    }
    return { claims };
  }

  /** Checks signature, issuer, time and audience; returns the claims or a reason. */
  verify(token: string, audiences: string[]): { claims?: ServiceAccountClaims; error?: string } {
    const { payload, error } = this.checkSignature(token);
    if (!payload) return { error };
    const claims = payload as unknown as ServiceAccountClaims;
    if (claims.iss !== this.issuer) return { error: 'wrong issuer' };
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.exp !== 'number' || claims.exp < now) return { error: 'token has expired' };
    if (typeof claims.nbf === 'number' && claims.nbf > now + 60) return { error: 'token not yet valid' };
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (audiences.length > 0 && !aud.some((a) => audiences.includes(a))) return { error: 'token audiences do not match' };
    if (!claims['kubernetes.io']?.serviceaccount) return { error: 'not a service account token' };
    return { claims };
  }

  private sign(claims: object): string {
    const header = b64url(JSON.stringify({ alg: 'RS256', kid: this.keyId }));
    const payload = b64url(JSON.stringify(claims));
    const sig = createSign('RSA-SHA256').update(`${header}.${payload}`).sign(this.privateKeyPem);
    return `${header}.${payload}.${b64url(sig)}`;
  }

  private checkSignature(token: string): { payload?: Record<string, unknown>; error?: string } {
    const parts = token.split('.');
    if (parts.length !== 3) return { error: 'not a JWT' };
    const [h, p, s] = parts;
    let header: { alg?: string };
    let payload: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { alg?: string };
      payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      return { error: 'malformed JWT' };
    }
    if (header.alg !== 'RS256') return { error: `unsupported alg ${String(header.alg)}` };
    const ok = createVerify('RSA-SHA256').update(`${h}.${p}`).verify(this.publicKeyPem, Buffer.from(s, 'base64url'));
    if (!ok) return { error: 'invalid signature' };
    if (typeof payload !== 'object' || payload === null) return { error: 'malformed JWT' };
    return { payload };
  }
}
