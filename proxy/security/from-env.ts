// The sidecar's certificate manager configured the way Istio's agent is: CA_ADDR,
// POD_NAMESPACE, SERVICE_ACCOUNT, TRUST_DOMAIN, the projected `istio-token` and the mounted
// `istio-ca-root-cert` ConfigMap, at Istio's paths.
import { WorkloadCertManager, type CertManagerOptions } from './cert-manager.js';

export const ISTIO_TOKEN_FILE = '/var/run/secrets/tokens/istio-token';
export const ISTIO_ROOT_CERT_FILE = '/var/run/secrets/istio/root-cert.pem';

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
    ttlSeconds: env.SECRET_TTL_SECONDS ? Number(env.SECRET_TTL_SECONDS) : undefined,
    ...overrides,
  });
}
