// Where a client finds its cluster: an explicit kubeconfig file, $KUBECONFIG, or the
// in-cluster service account (as every Kubernetes client library does).
import fs from 'node:fs';
import YAML from 'yaml';

export interface ClusterAccess {
  server: string; // https://host:port
  caPem?: string;
  token?: string;
  /** Re-read on each request when set (projected tokens are rotated by the kubelet). */
  tokenFile?: string;
  insecureSkipTLSVerify?: boolean;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

interface KubeconfigFile {
  clusters?: { name: string; cluster: { server: string; 'certificate-authority-data'?: string; 'certificate-authority'?: string; 'insecure-skip-tls-verify'?: boolean } }[];
  users?: { name: string; user: { token?: string; tokenFile?: string } }[];
  contexts?: { name: string; context: { cluster: string; user: string } }[];
  'current-context'?: string;
}

export function loadKubeconfigFile(file: string): ClusterAccess {
  const doc = YAML.parse(fs.readFileSync(file, 'utf8')) as KubeconfigFile;
  const ctxName = doc['current-context'];
  const ctx = doc.contexts?.find((c) => c.name === ctxName) ?? doc.contexts?.[0];
  if (!ctx) throw new Error(`kubeconfig ${file}: no context`);
  const cluster = doc.clusters?.find((c) => c.name === ctx.context.cluster);
  if (!cluster) throw new Error(`kubeconfig ${file}: context ${ctx.name} names cluster ${ctx.context.cluster}, which is not defined`);
  const user = doc.users?.find((u) => u.name === ctx.context.user);
  const c = cluster.cluster;
  let caPem: string | undefined;
  if (c['certificate-authority-data']) caPem = Buffer.from(c['certificate-authority-data'], 'base64').toString('utf8');
  else if (c['certificate-authority']) caPem = fs.readFileSync(c['certificate-authority'], 'utf8');
  return {
    server: c.server.replace(/\/$/, ''),
    caPem,
    token: user?.user.token,
    tokenFile: user?.user.tokenFile,
    insecureSkipTLSVerify: c['insecure-skip-tls-verify'],
  };
}

export function inClusterAccess(dir = SERVICE_ACCOUNT_DIR): ClusterAccess | undefined {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host || !fs.existsSync(`${dir}/token`)) return undefined;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return {
    server: `https://${hostPart}:${port}`,
    caPem: fs.existsSync(`${dir}/ca.crt`) ? fs.readFileSync(`${dir}/ca.crt`, 'utf8') : undefined,
    tokenFile: `${dir}/token`,
  };
}

/** The usual resolution order: explicit file, $KUBECONFIG, in-cluster, ~/.kube/config. */
export function resolveClusterAccess(explicitFile?: string): ClusterAccess {
  if (explicitFile) return loadKubeconfigFile(explicitFile);
  if (process.env.KUBECONFIG) return loadKubeconfigFile(process.env.KUBECONFIG.split(':')[0]);
  const inCluster = inClusterAccess();
  if (inCluster) return inCluster;
  const home = `${process.env.HOME ?? '/root'}/.kube/config`;
  if (fs.existsSync(home)) return loadKubeconfigFile(home);
  throw new Error('no cluster access: pass a kubeconfig, set KUBECONFIG, or run in a pod with a service account token');
}
