// The sidecar's certificate manager configured the way Istio's agent is: CA_ADDR,
// POD_NAMESPACE, SERVICE_ACCOUNT, TRUST_DOMAIN, the projected `istio-token` and the mounted
// `istio-ca-root-cert` ConfigMap, at Istio's paths.
import fs from 'node:fs';
import { WorkloadCertManager, type CertManagerOptions } from './cert-manager.js';
import type { XdsTlsOptions } from '../xds/ads-stream.js';

export const ISTIO_TOKEN_FILE = '/var/run/secrets/tokens/istio-token';
export const ISTIO_ROOT_CERT_FILE = '/var/run/secrets/istio/root-cert.pem';

const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };

/** A Go duration as Istio's agent takes it ("24h", "90m", "1h30m", "20s") in seconds. */
export function parseGoDuration(name: string, text: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  let m: RegExpExecArray | null;
  // A failed sticky exec resets lastIndex, so the matched length is tracked apart.
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * UNIT_SECONDS[m[2]];
    end = re.lastIndex;
  }
  if (end !== text.length || text === '' || total <= 0) throw new Error(`sidecar certificates: env ${name}: "${text}" is not a positive duration like 24h, 90m or 30s`);
  return total;
}

/**
 * The certificate lifetime asked of the CA: SECRET_TTL (Istio's agent, a duration, default
 * 24h there and here) or SECRET_TTL_SECONDS; undefined = the CA's default. The CA caps it at
 * its maximum workload TTL.
 */
export function secretTtlSeconds(env: NodeJS.ProcessEnv): number | undefined {
  if (env.SECRET_TTL) return Math.max(1, Math.round(parseGoDuration('SECRET_TTL', env.SECRET_TTL)));
  if (env.SECRET_TTL_SECONDS) {
    const n = Number(env.SECRET_TTL_SECONDS);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`sidecar certificates: env SECRET_TTL_SECONDS: "${env.SECRET_TTL_SECONDS}" is not a positive whole number of seconds`);
    return n;
  }
  return undefined;
}

/** undefined when CA_ADDR is unset (mTLS off: the proxy runs without a certificate). */
export function certManagerFromEnv(env: NodeJS.ProcessEnv = process.env, overrides: Partial<CertManagerOptions> = {}): WorkloadCertManager | undefined {
  const caAddress = env.CA_ADDR;
  if (!caAddress) return undefined;
  const need = (name: string): string => {
    const v = env[name];
    if (!v) throw new Error(`sidecar certificates: env ${name} is required when CA_ADDR is set`);
    return v;
  };
  return new WorkloadCertManager({
    caAddress,
    caServerName: env.CA_SERVER_NAME || undefined,
    caRootCertFile: env.CA_ROOT_CERT_FILE || ISTIO_ROOT_CERT_FILE,
    tokenFile: env.ISTIO_TOKEN_FILE || ISTIO_TOKEN_FILE,
    trustDomain: env.TRUST_DOMAIN || 'cluster.local',
    namespace: need('POD_NAMESPACE'),
    serviceAccount: need('SERVICE_ACCOUNT'),
    ttlSeconds: secretTtlSeconds(env),
    ...overrides,
  });
}

/**
 * xDS over TLS with the ServiceAccount token when the proxy has CA settings (CA_ADDR: pilot's
 * 15012 serves both), as Istio's agent does; undefined (plaintext) without them. The root is
 * read once; the token on every reconnect.
 */
export function xdsTlsFromEnv(env: NodeJS.ProcessEnv = process.env): XdsTlsOptions | undefined {
  if (!env.CA_ADDR) return undefined;
  const rootFile = env.CA_ROOT_CERT_FILE || ISTIO_ROOT_CERT_FILE;
  const tokenFile = env.ISTIO_TOKEN_FILE || ISTIO_TOKEN_FILE;
  let rootCertPem: string;
  try {
    rootCertPem = fs.readFileSync(rootFile, 'utf8');
  } catch (e) {
    throw new Error(`xDS over TLS: the mesh root ${rootFile} (CA_ROOT_CERT_FILE) is unreadable: ${(e as Error).message}`);
  }
  return {
    rootCertPem, rootCerts: () => fs.readFileSync(rootFile, 'utf8'),
    serverName: env.CA_SERVER_NAME || undefined, token: () => fs.readFileSync(tokenFile, 'utf8'),
  };
}
