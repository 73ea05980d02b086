// Clusters as the router sees them: which clusters are active (EDS clusters warm until
// their assignment arrives), their endpoints, load balancers and connection pools.
import { Pool } from 'undici';
import { Http1Pool, type UpstreamPool } from './upstream-pool.js';
import { Http2Pool } from './h2-pool.js';
import type { ConfigSnapshot } from '../xds/snapshot.js';
import type { ClusterConfig } from '../xds/resources/cluster.js';
import type { Endpoint } from '../xds/resources/endpoint.js';
import { createLoadBalancer, type LoadBalancer } from './load-balancer.js';
import { ResourceManager } from './resource-manager.js';
import { OutlierDetector } from './outlier-detector.js';
import type { EnvoyStats } from '../stats/envoy-stats.js';

export interface ActiveCluster {
  config: ClusterConfig;
  endpoints: readonly Endpoint[];
}

export type ClusterLookup = { cluster: ActiveCluster } | { warming: true } | { missing: true };

export function resolveCluster(snapshot: ConfigSnapshot, name: string): ClusterLookup {
  const c = snapshot.clusters.get(name)?.value;
  if (!c) return { missing: true };
  if (c.type === 'EDS') {
    const la = snapshot.assignments.get(c.edsServiceName ?? c.name);
    if (!la) return { warming: true };
    return { cluster: { config: c, endpoints: la.value.endpoints } };
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
  /** Clusters whose last pick ran in panic mode (healthy hosts below the threshold). */
  readonly panicking = new Set<string>();
  readonly hostCounters = new Map<string, HostCounters>();

  constructor(private readonly stats?: EnvoyStats) {}

  pick(cluster: ActiveCluster, opts: PickOptions = {}): Endpoint | undefined {
    const name = cluster.config.name;
    let entry = this.balancers.get(name);
    if (!entry || entry.policy !== cluster.config.lbPolicy) {
      entry = { policy: cluster.config.lbPolicy, lb: createLoadBalancer(cluster.config.lbPolicy, cluster.config.lb) };
      this.balancers.set(name, entry);
    }
    let hosts = cluster.endpoints;
    const od = this.outlierDetector(cluster);
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
  pool(host: string, port: number, connectTimeoutMs: number, protocol: 'http1' | 'http2' = 'http1'): UpstreamPool {
    const key = poolKey(host, port, connectTimeoutMs, protocol);
    let pool = this.pools.get(key);
    if (!pool) {
      if (protocol === 'http2') pool = new Http2Pool(host, port, connectTimeoutMs);
      else {
        const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
        pool = new Http1Pool(new Pool(origin, { connect: { timeout: connectTimeoutMs }, keepAliveTimeout: 30_000, pipelining: 1 }));
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
        for (const proto of ['http1', 'http2'] as const) live.add(poolKey(e.address, e.port, r.cluster.config.connectTimeoutMs, proto));
      }
    }
    for (const name of this.balancers.keys()) if (!snapshot.clusters.has(name)) this.balancers.delete(name);
    for (const name of this.outliers.keys()) if (!snapshot.clusters.has(name)) this.outliers.delete(name);
    for (const [key, pool] of this.pools) {
      if (live.has(key)) continue;
      this.pools.delete(key);
      void pool.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }
}

function poolKey(host: string, port: number, timeoutMs: number, protocol: string): string {
  return `${host}:${port}/${timeoutMs}/${protocol}`;
}
