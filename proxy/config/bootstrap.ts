// The sidecar's bootstrap: who it is and where pilot is, from the environment the
// injector sets on the proxy container.
import type { ProxyIdentity } from '../xds/node.js';

export interface SidecarBootstrap {
  pilotAddress: string;
  identity: ProxyIdentity;
  /** Use the delta ADS stream (DeltaAggregatedResources) instead of state-of-the-world. */
  deltaXds: boolean;
}

/** Istio's ISTIO_DELTA_XDS: a boolean env var; anything else is a configuration error. */
export function parseDeltaXds(raw: string | undefined): boolean {
  if (raw === undefined || raw === '') return false;
  const v = raw.trim().toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new Error(`bootstrap: ISTIO_DELTA_XDS must be true or false, got "${raw}"`);
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
    deltaXds: parseDeltaXds(env.ISTIO_DELTA_XDS),
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
