// The sidecar: wires the xDS client to the config store, and the config store to the
// listener and cluster managers; serves admin, metrics and readiness.
import net from 'node:net';
import { TYPE_URL } from '../api/xds/protos.js';
import { AdsClient } from './xds/ads-client.js';
import { DownstreamH2Sessions } from './http/h2-drain.js';
import { LogLevels } from './admin/log-levels.js';
import { DeltaAdsClient } from './xds/delta-ads-client.js';
import type { ResponseHandler, XdsTransport } from './xds/xds-transport.js';
import { buildNode, type ProxyIdentity } from './xds/node.js';
import { XdsConfig } from './xds/xds-config.js';
import { ClusterManager } from './upstream/cluster-manager.js';
import { ListenerManager, type OriginalDstResolver } from './listener/listener-manager.js';
import { IstioMetrics } from './stats/istio-metrics.js';
import { EnvoyStats } from './stats/envoy-stats.js';
import { stdoutAccessLog, type AccessLogSink } from './stats/access-log.js';
import { AdminServers, type AdminPorts } from './admin/admin-server.js';
import { originalDstOrLocal, type SocketAddress } from './interception/original-dst.js';
import type { ProxyRuntime } from './runtime.js';
import type { Direction } from './stats/labels.js';
import type { WorkloadCertManager } from './security/cert-manager.js';
import { SecretResolver, type CertificateSource } from './security/sds.js';
import type { AppProbers } from './health/app-probes.js';
import type { XdsTlsOptions } from './xds/ads-stream.js';

export interface SidecarOptions {
  pilotAddress: string;
  /** TLS and token for pilot's 15012 (with CA settings); plaintext without. */
  xdsTls?: XdsTlsOptions;
  identity: ProxyIdentity;
  /** Metric series idle this long are dropped (0 = never); default 10 min. */
  metricExpiryMs?: number;
  /** Delta ADS (DeltaAggregatedResources) instead of state-of-the-world (ISTIO_DELTA_XDS). */
  deltaXds?: boolean;
  /** Defaults: Istio's 15000 / 15090 / 15021. 0 picks a free port (tests). */
  ports?: Partial<AdminPorts>;
  accessLog?: AccessLogSink;
  log?: (msg: string) => void;
  /** Called by POST /quitquitquit after the reply is sent; defaults to stop() then exit(0). */
  onQuit?: () => void;
  /** How a connection's original destination is found; defaults to SO_ORIGINAL_DST. */
  originalDst?: OriginalDstResolver;
  /** The workload certificate to obtain (and rotate) from the mesh CA; readiness waits for it. */
  certificates?: WorkloadCertManager;
  /**
   * `router` for a gateway: the node id says so (pilot then sends gateway listeners, bound
   * to their own ports); there is no interception in front of it. Default `sidecar`.
   */
  nodeType?: 'sidecar' | 'router';
  /** A fixed workload certificate for SDS `default` / `ROOTCA` when there is no cert manager. */
  tlsSecrets?: CertificateSource;
  /** The app's probes the injector moved to the status port (ISTIO_KUBE_APP_PROBERS). */
  appProbes?: AppProbers;
  /** Forward app probes to 127.0.0.1 instead of the pod IP (REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION). */
  legacyLocalhostProbes?: boolean;
  /** How long connections of a filter chain replaced by a push may finish; default CHAIN_DRAIN_MS. */
  chainDrainMs?: number;
}

const DEFAULT_METRIC_EXPIRY_MS = 10 * 60_000;

export class Sidecar {
  readonly config = new XdsConfig();
  readonly metrics: IstioMetrics;
  readonly stats = new EnvoyStats();
  readonly clusters = new ClusterManager(this.stats);
  private readonly runtime: ProxyRuntime;
  private readonly listeners: ListenerManager;
  private readonly admin: AdminServers;
  private ads: XdsTransport | undefined;
  private applying: Promise<void> = Promise.resolve();
  private certificateIssued = false;
  private stopped = false;
  ports: AdminPorts | undefined;

  constructor(private readonly opts: SidecarOptions) {
    this.metrics = new IstioMetrics(opts.metricExpiryMs ?? DEFAULT_METRIC_EXPIRY_MS);
    const sink = opts.log ?? ((msg: string) => process.stderr.write(`${new Date().toISOString()} ${msg}\n`));
    const logLevels = new LogLevels(sink);
    const log = (msg: string): void => logLevels.info(msg);
    this.runtime = {
      config: this.config,
      clusters: this.clusters,
      metrics: this.metrics,
      stats: this.stats,
      accessLog: opts.accessLog ?? stdoutAccessLog,
      identity: opts.identity,
      log,
      secrets: new SecretResolver(opts.certificates ?? opts.tlsSecrets, () => this.config.current.secrets),
      isOwnListener: (a) => this.isOwnListener(a),
      draining: new Set(),
      logLevels,
      h2Sessions: new DownstreamH2Sessions(),
      ready: () => this.config.ready && (!opts.certificates || this.certificateIssued),
    };
    this.clusters.secrets = this.runtime.secrets;
    this.listeners = new ListenerManager(this.runtime, opts.originalDst ?? originalDstOrLocal, opts.chainDrainMs);
    this.admin = new AdminServers(this.runtime, () => this.ads, {
      drainListeners: (inboundOnly) => this.drain(inboundOnly ? ['inbound'] : ['inbound', 'outbound']),
      listeners: () => this.listeners.describe(),
      quit: () => (opts.onQuit ?? (() => { void this.stop().finally(() => process.exit(0)); }))(),
    }, opts.appProbes, opts.legacyLocalhostProbes);
    this.config.on('change', (snapshot) => {
      this.clusters.reconcile(snapshot);
      // Binds are serialized so two quick pushes cannot bind the same listener twice.
      this.applying = this.applying.then(() => this.listeners.reconcile(snapshot)).catch((err: Error) => log(`listeners: ${err.message}`));
    });
  }

  async start(): Promise<void> {
    this.ports = await this.admin.start({ admin: 15000, prometheus: 15090, readiness: 15021, ...this.opts.ports });
    const onResponse: ResponseHandler = (typeUrl, resources, version, delta) => {
      const error = this.config.apply(typeUrl, resources, version, delta);
      if (error) return error;
      // Follow-up subscriptions go out before this response's ACK, as Envoy does.
      if (typeUrl === TYPE_URL.cluster) ads.subscribe(TYPE_URL.clusterLoadAssignment, this.config.edsNames());
      if (typeUrl === TYPE_URL.listener) {
        ads.subscribe(TYPE_URL.routeConfiguration, this.config.rdsNames());
        // Secrets the listeners name (a gateway's credentialName) come over the same stream.
        ads.subscribe(TYPE_URL.secret, this.config.sdsNames());
      }
      return undefined;
    };
    const transport = { address: this.opts.pilotAddress, tls: this.opts.xdsTls, node: this.node(), log: this.runtime.log, onResponse };
    const ads: XdsTransport = this.opts.deltaXds ? new DeltaAdsClient(transport) : new AdsClient(transport);
    this.ads = ads;
    ads.subscribe(TYPE_URL.cluster, undefined);
    ads.subscribe(TYPE_URL.listener, undefined);
    ads.start();
    if (this.opts.certificates) void this.obtainCertificate(this.opts.certificates);
  }

  private node(): ReturnType<typeof buildNode> {
    const node = buildNode(this.opts.identity);
    if (this.opts.nodeType === 'router') node.id = node.id.replace(/^sidecar~/, 'router~');
    return node;
  }

  /** The first certificate, retried with back-off (the CA may start after the proxy); the manager rotates it from then on. */
  private async obtainCertificate(certs: WorkloadCertManager): Promise<void> {
    certs.on('rotationFailed', (e: Error) => this.runtime.log(`certificate ${certs.spiffeId}: rotation failed: ${e.message}`));
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        const cert = await certs.start();
        this.certificateIssued = true;
        this.runtime.log(`certificate issued for ${certs.spiffeId}, valid until ${cert.notAfter.toISOString()}`);
        return;
      } catch (e) {
        this.runtime.log(`certificate ${certs.spiffeId}: ${(e as Error).message}; retrying`);
        await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** attempt, 5_000)));
      }
    }
  }

  /** The SPIFFE identity the proxy holds a certificate for, once it has one. */
  get certificateIdentity(): string | undefined {
    return this.certificateIssued ? this.opts.certificates?.spiffeId : undefined;
  }

  /**
   * Drains the listeners of these directions: no new connections are accepted and HTTP/1.1
   * responses on existing ones carry Connection: close. Other directions keep working.
   */
  async drain(directions: Direction[]): Promise<string[]> {
    for (const d of directions) this.runtime.draining.add(d);
    const goaways = this.runtime.h2Sessions?.goAway(new Set(directions)) ?? 0;
    if (goaways > 0) this.runtime.log(`draining: GOAWAY sent on ${goaways} HTTP/2 connection(s)`);
    await this.applying;
    const closed = await this.listeners.stopAccepting(new Set(directions));
    this.runtime.log(`draining ${directions.join(', ')} listeners: ${closed.join(', ') || 'none bound'}`);
    return closed;
  }

  /** Resolves once pending listener binds for the latest config are done. */
  async settled(): Promise<void> {
    await this.applying;
  }

  private isOwnListener(a: SocketAddress): boolean {
    if (!this.listeners.isBoundPort(a.port)) return false;
    return a.address.startsWith('127.') || a.address === '0.0.0.0' || a.address === this.opts.identity.instanceIp
      || a.address === '::1' || net.isIP(a.address) === 0;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.opts.certificates?.stop();
    this.ads?.stop();
    await this.applying;
    await this.listeners.close();
    await this.admin.close();
    await this.clusters.close();
    this.metrics.close();
  }
}
