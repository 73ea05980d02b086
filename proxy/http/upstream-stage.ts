// Stage: from a cluster name to one upstream host, or the reason there is none.
import type { ConfigSnapshot } from '../xds/snapshot.js';
import { resolveCluster, type ActiveCluster, type ClusterManager } from '../upstream/cluster-manager.js';
import { originalDstTarget, type ConnectionContext } from '../runtime.js';
import type { SocketAddress } from '../interception/original-dst.js';

export type UpstreamChoice =
  | { ok: true; cluster: ActiveCluster; host: SocketAddress }
  | { ok: false; status: number; flag: string; text: string };

export function chooseUpstream(snapshot: ConfigSnapshot, clusters: ClusterManager, name: string, ctx: ConnectionContext): UpstreamChoice {
  const r = resolveCluster(snapshot, name);
  if ('missing' in r) return { ok: false, status: 503, flag: 'NC', text: `cluster not found: ${name}` };
  // A warming EDS cluster has no hosts yet: Envoy answers "no healthy upstream".
  if ('warming' in r) return { ok: false, status: 503, flag: 'UH', text: `no healthy upstream (cluster ${name} is warming)` };
  const cluster = r.cluster;
  if (cluster.config.type === 'ORIGINAL_DST') return { ok: true, cluster, host: originalDstTarget(ctx) };
  const host = clusters.pick(cluster);
  if (!host) return { ok: false, status: 503, flag: 'UH', text: `no healthy upstream in cluster ${name}` };
  return { ok: true, cluster, host: { address: host.address, port: host.port } };
}
