// ISTIO_KUBE_APP_PROBERS: the app's original probes, keyed by the path the injector rewrote them
// to on the sidecar's status port (Istio's JSON shape). The injector writes it, the proxy reads it.

export const APP_PROBERS_ENV = 'ISTIO_KUBE_APP_PROBERS';

export interface AppHttpGet {
  path?: string;
  port: number;
  host?: string;
  scheme?: 'HTTP' | 'HTTPS';
  httpHeaders?: { name: string; value: string }[];
}

export interface AppProber {
  httpGet?: AppHttpGet;
  tcpSocket?: { port: number; host?: string };
  timeoutSeconds?: number;
}

/** `/app-health/<container>/livez|readyz|startupz`. */
export function appProbePath(container: string, kind: 'liveness' | 'readiness' | 'startup'): string {
  return `/app-health/${container}/${kind === 'liveness' ? 'livez' : kind === 'readiness' ? 'readyz' : 'startupz'}`;
}
