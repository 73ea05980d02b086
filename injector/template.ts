// The values the injection template is rendered with. Kept apart from inject() so the
// pure function gets everything it needs as an argument, and env parsing lives in one place.

export interface TemplateValues {
  /** Image of both the init container and the sidecar (Istio's proxyv2 image). */
  proxyImage: string;
  /** Version the proxy reports (ISTIO_META_ISTIO_VERSION). */
  proxyVersion: string;
  /** Plaintext xDS address of pilot, host:port. */
  pilotAddress: string;
  /** The mesh CA (IstioCertificateService over TLS), host:port. */
  caAddress: string;
  trustDomain: string;
  clusterId: string;
  /** Revision recorded in the sidecar.istio.io/status annotation. */
  revision: string;
  proxyUid: number;
  proxyGid: number;
  outboundCapturePort: number;
  inboundCapturePort: number;
  statusPort: number;
  prometheusPort: number;
  /** Inbound ports never captured (the proxy's own). Annotations add to this list. */
  inboundExcludePorts: string[];
  /** Namespaces never injected (Istio's defaults). */
  ignoredNamespaces: string[];
  /**
   * Rewrite the app's httpGet/tcpSocket probes to the sidecar's status port, so the kubelet's
   * plaintext probes still work under STRICT mTLS (Istio's sidecarInjectorWebhook.rewriteAppHTTPProbe).
   */
  rewriteAppProbes: boolean;
}

export const DEFAULT_PROXY_VERSION = '0.1.0';

export function defaultTemplateValues(): TemplateValues {
  return {
    proxyImage: `trellis/proxyv2:${DEFAULT_PROXY_VERSION}`,
    proxyVersion: DEFAULT_PROXY_VERSION,
    pilotAddress: 'istiod.trellis-system.svc:15012',
    caAddress: 'istiod.trellis-system.svc:15012',
    trustDomain: 'cluster.local',
    clusterId: 'Kubernetes',
    revision: 'default',
    proxyUid: 1337,
    proxyGid: 1337,
    outboundCapturePort: 15001,
    inboundCapturePort: 15006,
    statusPort: 15021,
    prometheusPort: 15090,
    inboundExcludePorts: ['15090', '15021', '15020', '15000'],
    ignoredNamespaces: ['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage'],
    rewriteAppProbes: true,
  };
}

/**
 * Template values from the environment:
 * PROXY_IMAGE (full reference) or HUB + PROXY_VERSION (-> `${HUB}/proxyv2:${PROXY_VERSION}`),
 * PILOT_ADDRESS, CA_ADDR, TRUST_DOMAIN, CLUSTER_ID, REVISION.
 */
export function templateValuesFromEnv(env: NodeJS.ProcessEnv = process.env): TemplateValues {
  const v = defaultTemplateValues();
  const version = env.PROXY_VERSION || v.proxyVersion;
  const hub = env.HUB || 'trellis';
  return {
    ...v,
    proxyVersion: version,
    proxyImage: env.PROXY_IMAGE || `${hub}/proxyv2:${version}`,
    pilotAddress: env.PILOT_ADDRESS || v.pilotAddress,
    caAddress: env.CA_ADDR || v.caAddress,
    trustDomain: env.TRUST_DOMAIN || v.trustDomain,
    clusterId: env.CLUSTER_ID || v.clusterId,
    revision: env.REVISION || v.revision,
  };
}
