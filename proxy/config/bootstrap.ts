// The sidecar's bootstrap: who it is and where pilot is, from the environment the
// injector sets on the proxy container.
import type { ProxyIdentity } from '../xds/node.js';

export interface SidecarBootstrap {
  pilotAddress: string;
  identity: ProxyIdentity;
}

function parseLabels(raw: string | undefined): Record<string, string> {
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw new Error(`bootstrap: TRELLIS_POD_LABELS is not JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('bootstrap: TRELLIS_POD_LABELS must be a JSON object of label -> value');
  }
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed)) labels[k] = String(v);
  return labels;
}

export function bootstrapFromEnv(env: NodeJS.ProcessEnv = process.env): SidecarBootstrap {
  const podName = env.POD_NAME ?? '';
  const namespace = env.POD_NAMESPACE ?? 'default';
  const labels = parseLabels(env.TRELLIS_POD_LABELS);
  const missing = ['POD_NAME', 'INSTANCE_IP'].filter((k) => !env[k]);
  if (missing.length > 0) throw new Error(`bootstrap: environment variable(s) ${missing.join(', ')} required`);
  return {
    pilotAddress: env.PILOT_ADDRESS || 'istiod.trellis-system.svc:15010',
    identity: {
      podName,
      namespace,
      instanceIp: env.INSTANCE_IP ?? '',
      serviceAccount: env.SERVICE_ACCOUNT || 'default',
      workloadName: env.ISTIO_META_WORKLOAD_NAME || labels.app || podName,
      labels,
      domain: env.TRELLIS_DNS_DOMAIN || 'cluster.local',
    },
  };
}
