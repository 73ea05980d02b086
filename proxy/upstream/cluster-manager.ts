// Clusters as the router sees them: which clusters are active (EDS clusters warm until
// their assignment arrives), their endpoints, load balancers and connection pools.
import { Pool } from 'undici';
import { Http1Pool, type UpstreamPool } from './upstream-pool.js';
import { Http2Pool } from './h2-pool.js';
import { tlsPool } from './tls-pool.js';
import { SecretResolver } from '../security/sds.js';
import type { UpstreamTlsConfig } from '../xds/resources/tls-context.js';
import { transportFor } from '../xds/resources/upstream-transport.js';
import type { ConfigSnapshot } from '../xds/snapshot.js';
import type { ClusterConfig } from '../xds/resources/cluster.js';
import type { Endpoint, LocalityGroup } from '../xds/resources/endpoint.js';
import { choosePriorityHosts } from './priority-load.js';
import { createLoadBalancer, type LoadBalancer } from './load-balancer.js';
import { ResourceManager } from './resource-manager.js';
import { OutlierDetector } from './outlier-detector.js';
import type { EnvoyStats } from '../stats/envoy-stats.js';
import { DnsClusterResolver } from './dns-resolver.js';
import type { ConnectionOptions } from '../xds/resources/connection-options.js';

export interface ActiveCluster {
  config: ClusterConfig;
  endpoints: readonly Endpoint[];
  /** Priorities / locality weights of an EDS assignment that uses them. */
  groups?: readonly LocalityGroup[];
  overprovisioning?: number;
}

export type ClusterLookup = { cluster: ActiveCluster } | { warming: true } | { missing: true };

export function resolveCluster(snapshot: ConfigSnapshot, name: string): ClusterLookup {
  const c = snapshot.clusters.get(name)?.value;
  if (!c) return { missing: true };
  if (c.type === 'EDS') {
    const la = snapshot.assignments.get(c.edsServiceName ?? c.name);
    if (!la) return { warming: true };
    return { cluster: { config: c, endpoints: la.value.endpoints, groups: la.value.groups, overprovisioning: la.value.overprovisioning } };
  }
  if (c.dnsHosts) {
    // A DNS cluster warms until its first resolution.
    const endpoints = c.dnsHosts.endpoints;
    return endpoints ? { cluster: { config: c, endpoints } } : { warming: true };
  }
  return { cluster: { config: c, endpoints: c.staticEndpoints } };
}

export interface HostCounters {
  rqTotal: number;
  rqActive: number;
  cxConnectFail: number;
}

export interface PickOptions {
  hash?: number;
  /** Hosts ("ip:port") to avoid (retry_host_predicate previous_hosts). */
  exclude?: ReadonlySet<string>;
}

export class ClusterManager {
  private readonly balancers = new Map<string, { policy: string; lb: LoadBalancer }>();
  private readonly pools = new Map<string, UpstreamPool>();
  private readonly resources = new Map<string, ResourceManager>();
  private readonly outliers = new Map<string, OutlierDetector>();
  private readonly dnsResolvers = new Map<string, DnsClusterResolver>();
  /** Clusters whose last pick ran in panic mode (healthy hosts below the threshold). */
  readonly panicking = new Set<string>();
  readonly hostCounters = new Map<string, HostCounters>();

  /** SDS for upstream TLS (set by the sidecar). */
  secrets: SecretResolver = new SecretResolver();

  constructor(private readonly stats?: EnvoyStats, private readonly log: (msg: string) => void = () => undefined) {}

  pick(cluster: ActiveCluster, opts: PickOptions = {}): Endpoint | undefined {
    const name = cluster.config.name;
    let entry = this.balancers.get(name);
    if (!entry || entry.policy !== cluster.config.lbPolicy) {
      entry = { policy: cluster.config.lbPolicy, lb: createLoadBalancer(cluster.config.lbPolicy, cluster.config.lb) };
      this.balancers.set(name, entry);
    }
    let hosts = cluster.endpoints;
    const od = this.outlierDetector(cluster);
    if (cluster.groups) {
      const healthy = od ? (e: Endpoint): boolean => !od.isEjected(`${e.address}:${e.port}`) : (): boolean => true;
      hosts = choosePriorityHosts(cluster.groups, cluster.overprovisioning ?? 1.4, healthy) ?? hosts;
    }
    if (od && hosts.length > 0) {
      const healthy = hosts.filter((e) => !od.isEjected(`${e.address}:${e.port}`));
      // Panic mode: below the healthy threshold Envoy balances over all hosts, ejected or not.
      if ((healthy.length / hosts.length) * 100 < cluster.config.lb.panicThresholdPercent) {
        if (!this.panicking.has(name)) this.panicking.add(name);
        this.stats?.inc(`cluster.${name}.lb_healthy_panic`);
      } else {
        this.panicking.delete(name);
        hosts = healthy;
      }
    }
    if (opts.exclude && opts.exclude.size > 0) {
      const rest = hosts.filter((e) => !opts.exclude?.has(`${e.address}:${e.port}`));
      if (rest.length > 0) hosts = rest;
    }
    return entry.lb.pick(hosts, { hash: opts.hash, active: (e) => this.counters(name, `${e.address}:${e.port}`).rqActive });
  }

  /** The cluster's circuit breakers; limits follow the latest config. */
  resourceManager(cluster: ActiveCluster): ResourceManager {
    const name = cluster.config.name;
    let rm = this.resources.get(name);
    if (!rm) {
      rm = new ResourceManager(cluster.config.circuitBreakers);
      this.resources.set(name, rm);
    }
    rm.limits = cluster.config.circuitBreakers;
    return rm;
  }

  outlierDetector(cluster: ActiveCluster): OutlierDetector | undefined {
    const name = cluster.config.name;
    const cfg = cluster.config.outlierDetection;
    if (!cfg) {
      this.outliers.delete(name);
      return undefined;
    }
    let od = this.outliers.get(name);
    if (!od) {
      od = new OutlierDetector(cfg, {
        onEject: (_host, reason) => {
          this.stats?.inc(`cluster.${name}.outlier_detection.ejections_enforced_total`);
          this.stats?.inc(`cluster.${name}.outlier_detection.ejections_enforced_${reason}`);
        },
      });
      this.outliers.set(name, od);
    }
    od.config = cfg;
    return od;
  }

  /** Outlier state for /clusters and /stats, without creating anything. */
  existingOutlierDetector(name: string): OutlierDetector | undefined {
    return this.outliers.get(name);
  }

  /**
   * A pool per (host, connect timeout, HTTP version); shared by clusters that share hosts.
   * HTTP/1.1 is a keep-alive undici pool; HTTP/2 one multiplexed h2c session.
   */
  pool(host: string, port: number, connectTimeoutMs: number, protocol: 'http1' | 'http2' = 'http1', conn: ConnectionOptions = DEFAULT_CONNECTION, tls?: UpstreamTlsConfig): UpstreamPool {
    const key = poolKey(host, port, connectTimeoutMs, protocol, conn, tls);
    let pool = this.pools.get(key);
    if (!pool) {
      if (tls) pool = tlsPool(host, port, connectTimeoutMs, protocol, conn, tls, this.secrets);
      else if (protocol === 'http2') pool = new Http2Pool(host, port, connectTimeoutMs, conn);
      else {
        const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
        // undici also honours a shorter `Keep-Alive: timeout=N` from the server (minus 1 s).
        pool = new Http1Pool(new Pool(origin, {
          connect: { timeout: connectTimeoutMs }, keepAliveTimeout: conn.idleTimeoutMs, keepAliveMaxTimeout: Math.max(conn.idleTimeoutMs, 1000),
          // undici closes after maxRequestsPerClient + 1 requests; one request per connection is a reset per request.
          maxRequestsPerClient: conn.maxRequestsPerConnection > 1 ? conn.maxRequestsPerConnection - 1 : undefined, pipelining: 1,
        }), conn.maxRequestsPerConnection === 1);
      }
      this.pools.set(key, pool);
    }
    return pool;
  }

  counters(cluster: string, host: string): HostCounters {
    const key = `${cluster}::${host}`;
    let c = this.hostCounters.get(key);
    if (!c) {
      c = { rqTotal: 0, rqActive: 0, cxConnectFail: 0 };
      this.hostCounters.set(key, c);
    }
    return c;
  }

  /** Drops balancers and pools nothing refers to anymore; pools close after their in-flight requests. */
  reconcile(snapshot: ConfigSnapshot): void {
    const live = new Set<string>();
    for (const name of snapshot.clusters.keys()) {
      const r = resolveCluster(snapshot, name);
      if (!('cluster' in r)) continue;
      for (const e of r.cluster.endpoints) {
        const tls = transportFor(r.cluster.config.transport, e.transportMatch);
        for (const proto of ['http1', 'http2'] as const) live.add(poolKey(e.address, e.port, r.cluster.config.connectTimeoutMs, proto, r.cluster.config.connection, tls));
      }
    }
    this.reconcileDns(snapshot);
    for (const name of this.balancers.keys()) if (!snapshot.clusters.has(name)) this.balancers.delete(name);
    for (const name of this.outliers.keys()) if (!snapshot.clusters.has(name)) this.outliers.delete(name);
    for (const [key, pool] of this.pools) {
      if (live.has(key)) continue;
      this.pools.delete(key);
      void pool.close().catch(() => undefined);
    }
  }

  /** One resolver per DNS cluster; a changed cluster starts from the hosts its predecessor resolved. */
  private reconcileDns(snapshot: ConfigSnapshot): void {
    for (const [name, r] of this.dnsResolvers) {
      const now = snapshot.clusters.get(name)?.value;
      if (now === r.config) continue;
      r.stop();
      this.dnsResolvers.delete(name);
      if (now?.dnsHosts && r.config.dnsHosts?.endpoints) now.dnsHosts.endpoints ??= r.config.dnsHosts.endpoints;
    }
    for (const { value: c } of snapshot.clusters.values()) {
      if (!c.dnsHosts || this.dnsResolvers.has(c.name)) continue;
      const r = new DnsClusterResolver(c, (name, endpoints) => {
        this.stats?.inc(`cluster.${name}.membership_change`);
        this.log(`cluster ${name}: DNS hosts now ${endpoints.map((e) => `${e.address}:${e.port}`).join(', ') || 'none'}`);
      }, this.log);
      this.dnsResolvers.set(c.name, r);
      r.start();
    }
  }

  /** The DNS resolver of a cluster, if it is a DNS cluster (tests, /clusters). */
  dnsResolver(name: string): DnsClusterResolver | undefined {
    return this.dnsResolvers.get(name);
  }

  async close(): Promise<void> {
    for (const r of this.dnsResolvers.values()) r.stop();
    this.dnsResolvers.clear();
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }
}

const DEFAULT_CONNECTION: ConnectionOptions = { idleTimeoutMs: 4_000, maxRequestsPerConnection: 0 };

function poolKey(host: string, port: number, timeoutMs: number, protocol: string, conn: ConnectionOptions, tls?: UpstreamTlsConfig): string {
  return `${host}:${port}/${timeoutMs}/${protocol}/${conn.idleTimeoutMs}/${conn.maxRequestsPerConnection}${tls ? `/tls:${tls.key}` : ''}`;
}
