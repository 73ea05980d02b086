// TLS of Gateway servers as istiod serves it to a gateway proxy: which servers terminate
// TLS, pass it through or redirect, where their certificate comes from (credentialName: a
// Secret in the gateway workload's namespace, read through SDS as `kubernetes://<name>`;
// the client CA of MUTUAL as `kubernetes://<name>-cacert`, from the Secret `<name>-cacert`
// else the `ca.crt`/`cacert` key of `<name>`), and why a server cannot be served.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { Secret } from '../../api/kube/index.js';
import type { GatewayServer } from '../../api/istio/index.js';
import type { PushContext } from './push-context.js';

export const SDS_PREFIX = 'kubernetes://';
export const CA_SUFFIX = '-cacert';

/** A Secret's TLS material, already checked to parse (PEM text). */
export interface CredentialMaterial {
  cert?: { certChainPem: string; keyPem: string };
  caPem?: string;
}

export type ServerTlsMode = 'PASSTHROUGH' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL' | 'OPTIONAL_MUTUAL' | 'AUTO_PASSTHROUGH';

/** Servers whose port protocol carries TLS (the connection's SNI picks the server). */
export function isTlsProtocol(protocol: string): boolean {
  return protocol === 'HTTPS' || protocol === 'TLS';
}

export function tlsMode(server: GatewayServer): ServerTlsMode {
  return (server.tls?.mode ?? 'PASSTHROUGH') as ServerTlsMode;
}

/** Whether the gateway terminates TLS for this server (else it forwards the TLS stream by SNI). */
export function terminatesTls(server: GatewayServer): boolean {
  const protocol = (server.port?.protocol ?? '').toUpperCase();
  return isTlsProtocol(protocol) && !!server.tls && tlsMode(server) !== 'PASSTHROUGH' && tlsMode(server) !== 'AUTO_PASSTHROUGH';
}

const decoded = new WeakMap<Secret, CredentialMaterial>();

function text(secret: Secret, key: string): string | undefined {
  const b64 = secret.data?.[key];
  if (typeof b64 === 'string' && b64) return Buffer.from(b64, 'base64').toString('utf8');
  const plain = secret.stringData?.[key];
  return typeof plain === 'string' && plain ? plain : undefined;
}

/**
 * Istio's key names: generic Secrets hold `cert`/`key`/`cacert`, kubernetes.io/tls ones
 * `tls.crt`/`tls.key`/`ca.crt`. Material that does not parse counts as absent, so the
 * proxy is never sent a secret it would reject.
 */
export function credentialMaterial(secret: Secret): CredentialMaterial {
  const cached = decoded.get(secret);
  if (cached) return cached;
  const out: CredentialMaterial = {};
  const certChainPem = text(secret, 'cert') ?? text(secret, 'tls.crt');
  const keyPem = text(secret, 'cert') ? text(secret, 'key') : text(secret, 'tls.key');
  if (certChainPem && keyPem) {
    try {
      new X509Certificate(certChainPem);
      createPrivateKey(keyPem);
      out.cert = { certChainPem, keyPem };
    } catch { /* unusable: reported as a missing certificate */ }
  }
  const caPem = text(secret, 'cacert') ?? text(secret, 'ca.crt');
  if (caPem) {
    try { new X509Certificate(caPem); out.caPem = caPem; } catch { /* unusable */ }
  }
  decoded.set(secret, out);
  return out;
}

/** Whether a Secret may hold gateway credentials (other kinds, e.g. tokens, are not read). */
export function isCredentialSecret(secret: Secret): boolean {
  const t = secret.type ?? 'Opaque';
  if (t !== 'Opaque' && t !== 'kubernetes.io/tls' && t !== 'istio.io/key-and-cert') return false;
  const keys = new Set([...Object.keys(secret.data ?? {}), ...Object.keys(secret.stringData ?? {})]);
  return ['cert', 'tls.crt', 'cacert', 'ca.crt'].some((k) => keys.has(k));
}

const indexes = new WeakMap<PushContext, Map<string, Secret>>();

function secretIndex(push: PushContext): Map<string, Secret> {
  let idx = indexes.get(push);
  if (!idx) {
    idx = new Map((push.inputs.secrets ?? []).map((s) => [`${s.metadata.namespace ?? 'default'}/${s.metadata.name}`, s]));
    indexes.set(push, idx);
  }
  return idx;
}

/** The SDS resources of a namespace: `kubernetes://<name>` (certificate) and `...-cacert` (client CA). */
export function sdsResources(push: PushContext, namespace: string): { name: string; material: CredentialMaterial }[] {
  const idx = secretIndex(push);
  const out: { name: string; material: CredentialMaterial }[] = [];
  for (const s of push.inputs.secrets ?? []) {
    if ((s.metadata.namespace ?? 'default') !== namespace) continue;
    const name = s.metadata.name ?? '';
    const m = credentialMaterial(s);
    if (name.endsWith(CA_SUFFIX)) {
      if (m.caPem) out.push({ name: `${SDS_PREFIX}${name}`, material: { caPem: m.caPem } });
      continue;
    }
    if (m.cert) out.push({ name: `${SDS_PREFIX}${name}`, material: { cert: m.cert } });
    // The `<name>-cacert` Secret, when there is one, wins over the `ca.crt` key (as in istiod).
    if (m.caPem && !caFromSecret(idx, namespace, `${name}${CA_SUFFIX}`)) out.push({ name: `${SDS_PREFIX}${name}${CA_SUFFIX}`, material: { caPem: m.caPem } });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function caFromSecret(idx: Map<string, Secret>, namespace: string, name: string): string | undefined {
  const s = idx.get(`${namespace}/${name}`);
  return s ? credentialMaterial(s).caPem : undefined;
}

/** The client CA for credentialName `name`: the `<name>-cacert` Secret, else `<name>`'s CA key. */
export function clientCa(push: PushContext, namespace: string, name: string): string | undefined {
  const idx = secretIndex(push);
  const base = idx.get(`${namespace}/${name}`);
  return caFromSecret(idx, namespace, `${name}${CA_SUFFIX}`) ?? (base ? credentialMaterial(base).caPem : undefined);
}

/**
 * Why a server cannot be served to a gateway workload in `namespace`, or undefined. Istio's
 * rule: the credential must be readable by the gateway's identity; here, the Secret must be
 * in the gateway workload's own namespace.
 */
export function serverTlsProblem(push: PushContext, server: GatewayServer, namespace: string): string | undefined {
  const protocol = (server.port?.protocol ?? 'HTTP').toUpperCase();
  if (!isTlsProtocol(protocol)) return undefined;
  const tls = server.tls;
  if (!tls) return `tls: required for ${protocol} servers`;
  const mode = tlsMode(server);
  if (mode === 'AUTO_PASSTHROUGH') return 'tls.mode: AUTO_PASSTHROUGH is not supported';
  if (mode !== 'SIMPLE' && mode !== 'MUTUAL' && mode !== 'OPTIONAL_MUTUAL') return undefined;
  const cred = tls.credentialName;
  if (!cred) {
    if (!tls.serverCertificate || !tls.privateKey) return `tls.credentialName: ${mode} TLS needs credentialName (or serverCertificate and privateKey)`;
    if (mode !== 'SIMPLE' && !tls.caCertificates) return `tls.caCertificates: ${mode} TLS with serverCertificate needs caCertificates`;
    return undefined;
  }
  // Inputs without Secrets (not readable, or hand-built) cannot tell: the proxy then waits for it.
  if (push.inputs.secrets === undefined) return undefined;
  const secret = secretIndex(push).get(`${namespace}/${cred}`);
  if (!secret) return `tls.credentialName: Secret "${cred}" not found in namespace "${namespace}" (the gateway workload's)`;
  if (!credentialMaterial(secret).cert) return `tls.credentialName: Secret ${namespace}/${cred} has no usable certificate and key (tls.crt/tls.key or cert/key)`;
  if (mode !== 'SIMPLE' && !clientCa(push, namespace, cred)) return `tls.credentialName: ${mode} TLS needs a client CA: ca.crt/cacert in Secret ${namespace}/${cred} or a Secret ${namespace}/${cred}${CA_SUFFIX}`;
  return undefined;
}

export interface GatewayServerProblem { gateway: { namespace: string; name: string }; field: string; message: string; workloadNamespace: string }

/**
 * Servers that are not served, for every namespace that runs a workload the Gateway selects
 * (the Secret is looked up there): for pilot's warnings, `trellis analyze` and Gateway status.
 */
export function gatewayServerProblems(push: PushContext): GatewayServerProblem[] {
  const out: GatewayServerProblem[] = [];
  for (const gw of push.inputs.gateways ?? []) {
    const selector = gw.spec.selector ?? {};
    const namespaces = new Set(push.inputs.pods
      .filter((p) => Object.entries(selector).every(([k, v]) => p.metadata.labels?.[k] === v))
      .map((p) => p.metadata.namespace ?? 'default'));
    (gw.spec.servers ?? []).forEach((server, i) => {
      for (const ns of [...namespaces].sort()) {
        const problem = server?.port ? serverTlsProblem(push, server, ns) : undefined;
        if (!problem) continue;
        const cut = problem.indexOf(': ');
        out.push({
          gateway: { namespace: gw.metadata.namespace ?? 'default', name: gw.metadata.name ?? '' },
          field: `spec.servers[${i}].${problem.slice(0, cut)}`, message: problem.slice(cut + 2), workloadNamespace: ns,
        });
      }
    });
  }
  return out;
}
