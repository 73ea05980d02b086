// Probe rewriting (Istio's rewriteAppHTTPProbe): under STRICT mTLS the kubelet's plaintext
// probes would be refused by the sidecar, so httpGet and tcpSocket probes of app containers
// are pointed at the sidecar's status port, /app-health/<container>/<kind>, and the originals
// travel to the proxy in ISTIO_KUBE_APP_PROBERS; the proxy probes the app on its pod IP.
import type { Container, Pod, Probe } from '../api/kube/index.js';
import { appProbePath, type AppProber } from '../api/security/app-probers.js';

export const REWRITE_PROBES_ANNOTATION = 'sidecar.istio.io/rewriteAppHTTPProbers';

const KINDS = [
  ['livenessProbe', 'liveness'],
  ['readinessProbe', 'readiness'],
  ['startupProbe', 'startup'],
] as const;

/** A probe port as a number: numbers as they are, names looked up in the container's ports. */
function resolvePort(c: Container, port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

function prober(c: Container, probe: Probe): AppProber | undefined {
  const timeoutSeconds = probe.timeoutSeconds ?? 1;
  if (probe.httpGet) {
    const port = resolvePort(c, probe.httpGet.port);
    if (port === undefined) return undefined;
    const { path, host, scheme, httpHeaders } = probe.httpGet;
    return {
      httpGet: { path: path ?? '/', port, ...(host ? { host } : {}), scheme: scheme === 'HTTPS' ? 'HTTPS' : 'HTTP', ...(httpHeaders?.length ? { httpHeaders } : {}) },
      timeoutSeconds,
    };
  }
  if (probe.tcpSocket) {
    const port = resolvePort(c, probe.tcpSocket.port);
    if (port === undefined) return undefined;
    return { tcpSocket: { port, ...(probe.tcpSocket.host ? { host: probe.tcpSocket.host } : {}) }, timeoutSeconds };
  }
  return undefined; // exec probes run inside the container and need no rewriting
}

export interface ProbeRewrite {
  /** The app containers with their probes pointed at the status port. */
  containers: Container[];
  /** ISTIO_KUBE_APP_PROBERS: rewritten path -> original probe. */
  probers: Record<string, AppProber>;
}

export function rewriteEnabled(pod: Pod, enabledByTemplate: boolean): boolean {
  const annotation = pod.metadata.annotations?.[REWRITE_PROBES_ANNOTATION];
  if (annotation === 'false') return false;
  if (annotation === 'true') return true;
  return enabledByTemplate;
}

/** Rewrites the probes of the pod's app containers; `undefined` when none needs it. */
export function rewriteProbes(pod: Pod, statusPort: number): ProbeRewrite | undefined {
  const probers: Record<string, AppProber> = {};
  const containers = pod.spec.containers.map((c) => {
    const out: Container = { ...c };
    for (const [field, kind] of KINDS) {
      const probe = c[field];
      if (!probe) continue;
      const original = prober(c, probe);
      if (!original) continue;
      const path = appProbePath(c.name, kind);
      probers[path] = original;
      // The kubelet keeps its timing and thresholds; only where it asks changes. Headers stay
      // on the rewritten probe too (Istio keeps them), the proxy forwards the original ones.
      const { httpGet: _h, tcpSocket: _t, ...timing } = probe;
      const headers = probe.httpGet?.httpHeaders;
      out[field] = { ...timing, httpGet: { path, port: statusPort, scheme: 'HTTP', ...(headers?.length ? { httpHeaders: headers } : {}) } };
    }
    return out;
  });
  return Object.keys(probers).length ? { containers, probers } : undefined;
}
