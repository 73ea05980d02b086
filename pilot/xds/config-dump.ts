// What pilot last sent one proxy, in Envoy's admin ConfigDump shape (envoy.admin.v3.*), so
// the same tools read pilot's view and the proxy's own /config_dump alike.
import { TYPE_URL } from '../../api/xds/protos.js';

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';

/** A type's resources as the proxy holds them (decoded, with '@type'), and the version. */
export type HeldResources = (typeUrl: string) => { version: string; at: number; resources: object[] } | undefined;

export function configDump(held: HeldResources): { configs: object[] } {
  const get = (t: string) => held(t) ?? { version: '', at: 0, resources: [] };
  const lds = get(TYPE_URL.listener), cds = get(TYPE_URL.cluster), rds = get(TYPE_URL.routeConfiguration), eds = get(TYPE_URL.clusterLoadAssignment), sds = get(TYPE_URL.secret);
  const when = (at: number): string | undefined => (at ? new Date(at).toISOString() : undefined);
  return {
    configs: [
      {
        '@type': `${ADMIN}ListenersConfigDump`, versionInfo: lds.version,
        dynamicListeners: lds.resources.map((l) => ({ name: (l as { name?: string }).name, activeState: { versionInfo: lds.version, listener: l, lastUpdated: when(lds.at) } })),
      },
      {
        '@type': `${ADMIN}ClustersConfigDump`, versionInfo: cds.version,
        dynamicActiveClusters: cds.resources.map((c) => ({ versionInfo: cds.version, cluster: c, lastUpdated: when(cds.at) })),
      },
      {
        '@type': `${ADMIN}RoutesConfigDump`,
        dynamicRouteConfigs: rds.resources.map((r) => ({ versionInfo: rds.version, routeConfig: r, lastUpdated: when(rds.at) })),
      },
      {
        '@type': `${ADMIN}EndpointsConfigDump`,
        dynamicEndpointConfigs: eds.resources.map((e) => ({ versionInfo: eds.version, endpointConfig: e, lastUpdated: when(eds.at) })),
      },
      {
        // Names only: a debug endpoint never shows key material.
        '@type': `${ADMIN}SecretsConfigDump`,
        dynamicActiveSecrets: sds.resources.map((s) => ({ name: (s as { name?: string }).name, versionInfo: sds.version, lastUpdated: when(sds.at), secret: '[redacted]' })),
      },
    ],
  };
}
