// What the data path stages share: the current config, the cluster manager, stats,
// the access log and who this proxy is. Built once by the sidecar and passed down.
import type { ClusterManager } from './upstream/cluster-manager.js';
import type { XdsConfig } from './xds/xds-config.js';
import type { IstioMetrics } from './stats/istio-metrics.js';
import type { EnvoyStats } from './stats/envoy-stats.js';
import type { AccessLogSink } from './stats/access-log.js';
import type { ProxyIdentity } from './xds/node.js';
import type { SocketAddress } from './interception/original-dst.js';
import type { Direction } from './stats/labels.js';
import type { FilterChain, ListenerConfig } from './xds/resources/listener.js';
import type { DownstreamH2Sessions } from './http/h2-drain.js';
import type { SecretResolver } from './security/sds.js';
import type { DownstreamPeer } from './listener/tls-termination.js';
import type { LogLevels } from './admin/log-levels.js';

export interface ProxyRuntime {
  config: XdsConfig;
  clusters: ClusterManager;
  metrics: IstioMetrics;
  stats: EnvoyStats;
  accessLog: AccessLogSink;
  identity: ProxyIdentity;
  log: (msg: string) => void;
  /** SDS `default` / `ROOTCA` and TLS contexts for listeners and upstream connections. */
  secrets: SecretResolver;
  /** True if connecting to this address would reach one of the proxy's own listeners again. */
  isOwnListener(address: SocketAddress): boolean;
  /** Directions being drained: their HTTP/1.1 responses carry Connection: close. */
  draining: Set<Direction>;
  /** Logger levels (admin /logging); absent in tests that build a runtime by hand. */
  logLevels?: LogLevels;
  /** Downstream HTTP/2 sessions, told GOAWAY when their direction drains (optional for tests). */
  h2Sessions?: DownstreamH2Sessions;
  /** Config received and, when the proxy has an identity to obtain, its certificate too. */
  ready(): boolean;
}

/** Per downstream connection: which listener and chain took it and where it was headed. */
export interface ConnectionContext {
  listener: ListenerConfig;
  chain: FilterChain;
  direction: Direction;
  originalDst: SocketAddress;
  downstreamRemote: string;
  /** Set when the chain terminated TLS: the verified peer, SNI and ALPN. */
  downstreamTls?: DownstreamPeer;
}

/**
 * Where an ORIGINAL_DST cluster sends a connection: the original destination, except
 * inbound, where the app listens on loopback (Istio's InboundPassthroughCluster).
 */
export function originalDstTarget(ctx: ConnectionContext): SocketAddress {
  return ctx.direction === 'inbound' ? { address: '127.0.0.1', port: ctx.originalDst.port } : ctx.originalDst;
}
