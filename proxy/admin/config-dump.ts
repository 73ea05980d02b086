// /config_dump in Envoy's admin shape (envoy.admin.v3.*ConfigDump), built from the snapshot.
import { TYPE_URL } from '../../api/xds/protos.js';
import type { ConfigSnapshot } from '../xds/snapshot.js';

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';

export function configDump(s: ConfigSnapshot): unknown {
  const listeners = [...s.listeners.values()].map((l) => ({
    name: l.value.name,
    activeState: { versionInfo: l.version, listener: { '@type': TYPE_URL.listener, ...l.raw }, lastUpdated: l.lastUpdated.toISOString() },
  }));
  const clusters = [...s.clusters.values()].map((c) => ({
    versionInfo: c.version,
    cluster: { '@type': TYPE_URL.cluster, ...c.raw },
    lastUpdated: c.lastUpdated.toISOString(),
  }));
  const routes = [...s.routes.values()].map((r) => ({
    versionInfo: r.version,
    routeConfig: { '@type': TYPE_URL.routeConfiguration, ...r.raw },
    lastUpdated: r.lastUpdated.toISOString(),
  }));
  const endpoints = [...s.assignments.values()].map((e) => ({
    versionInfo: e.version,
    endpointConfig: { '@type': TYPE_URL.clusterLoadAssignment, ...e.raw },
    lastUpdated: e.lastUpdated.toISOString(),
  }));
  // Envoy's SecretsConfigDump: the private key is never shown.
  const secrets = [...s.secrets.entries()].map(([name, v]) => ({
    name, versionInfo: v.version, lastUpdated: v.lastUpdated.toISOString(),
    secret: { '@type': TYPE_URL.secret, ...redactKey(v.raw) },
  }));
  return {
    configs: [
      { '@type': `${ADMIN}ListenersConfigDump`, versionInfo: s.versions.lds, dynamicListeners: listeners },
      { '@type': `${ADMIN}ClustersConfigDump`, versionInfo: s.versions.cds, dynamicActiveClusters: clusters },
      { '@type': `${ADMIN}RoutesConfigDump`, dynamicRouteConfigs: routes },
      { '@type': `${ADMIN}EndpointsConfigDump`, dynamicEndpointConfigs: endpoints },
      { '@type': `${ADMIN}SecretsConfigDump`, dynamicActiveSecrets: secrets },
    ],
  };
}

function redactKey(raw: Record<string, unknown>): Record<string, unknown> {
  const cert = raw.tlsCertificate as Record<string, unknown> | undefined;
  return cert ? { ...raw, tlsCertificate: { ...cert, privateKey: { inlineString: '[redacted]' } } } : raw;
}
