// Prometheus metrics with Istio's standard names and labels, plus the few Envoy cluster
// stats dashboards look at. One registry per proxy instance.
import client from 'prom-client';

export const REQUEST_LABELS = [
  'reporter', 'source_workload', 'source_workload_namespace', 'source_app', 'source_version', 'source_principal',
  'destination_workload', 'destination_workload_namespace', 'destination_app', 'destination_version', 'destination_principal',
  'destination_service', 'destination_service_name', 'destination_service_namespace',
  'request_protocol', 'response_code', 'response_flags', 'connection_security_policy',
] as const;

export type RequestLabels = Record<(typeof REQUEST_LABELS)[number], string>;

export const TCP_LABELS = [
  'reporter', 'source_workload', 'source_workload_namespace', 'source_principal', 'destination_workload', 'destination_workload_namespace',
  'destination_principal', 'destination_service', 'destination_service_name', 'destination_service_namespace', 'response_flags',
  'connection_security_policy',
] as const;

export type TcpLabels = Record<(typeof TCP_LABELS)[number], string>;

// Istio's default request duration buckets (milliseconds).
const DURATION_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

export class IstioMetrics {
  readonly registry = new client.Registry();
  private readonly requests: client.Counter<string>;
  private readonly duration: client.Histogram<string>;
  private readonly upstreamRqTotal: client.Counter<string>;
  private readonly upstreamRq: client.Counter<string>;
  private readonly tcpOpened: client.Counter<string>;
  private readonly tcpClosed: client.Counter<string>;
  private readonly tcpSent: client.Counter<string>;
  private readonly tcpReceived: client.Counter<string>;
  private readonly requestSeries = new Map<string, { count: ReturnType<client.Counter<string>['labels']>; duration: ReturnType<client.Histogram<string>['labels']>; labels: RequestLabels; last: number }>();
  private readonly upstreamSeries = new Map<string, { total: ReturnType<client.Counter<string>['labels']>; byClass: ReturnType<client.Counter<string>['labels']>; cluster: string; cls: string; last: number }>();
  private readonly tcpSeries = new Map<string, { labels: TcpLabels; last: number }>();
  private sweeper: NodeJS.Timeout | undefined;
  /** Series expired so far (the proxy's own stats show it). */
  expired = 0;

  /**
   * expiryMs: a series not updated for that long is dropped from the exposition (Istio's
   * metric_expiry_duration), so label sets of workloads long gone stop costing memory and
   * scrape time. 0 keeps every series.
   */
  constructor(readonly expiryMs = 0) {
    const registers = [this.registry];
    this.requests = new client.Counter({ name: 'istio_requests_total', help: 'Requests handled by the proxy', labelNames: REQUEST_LABELS, registers });
    this.duration = new client.Histogram({
      name: 'istio_request_duration_milliseconds', help: 'Request duration', labelNames: REQUEST_LABELS, buckets: DURATION_BUCKETS, registers,
    });
    this.upstreamRqTotal = new client.Counter({ name: 'envoy_cluster_upstream_rq_total', help: 'Upstream requests per cluster', labelNames: ['envoy_cluster_name'], registers });
    this.upstreamRq = new client.Counter({
      name: 'envoy_cluster_upstream_rq', help: 'Upstream requests per cluster and response code class',
      labelNames: ['envoy_response_code_class', 'envoy_cluster_name'], registers,
    });
    this.tcpOpened = new client.Counter({ name: 'istio_tcp_connections_opened_total', help: 'TCP connections opened', labelNames: TCP_LABELS, registers });
    this.tcpClosed = new client.Counter({ name: 'istio_tcp_connections_closed_total', help: 'TCP connections closed', labelNames: TCP_LABELS, registers });
    this.tcpSent = new client.Counter({ name: 'istio_tcp_sent_bytes_total', help: 'Bytes sent to the downstream', labelNames: TCP_LABELS, registers });
    this.tcpReceived = new client.Counter({ name: 'istio_tcp_received_bytes_total', help: 'Bytes received from the downstream', labelNames: TCP_LABELS, registers });
    if (expiryMs > 0) {
      this.sweeper = setInterval(() => this.sweep(), Math.max(50, Math.min(expiryMs / 2, 60_000)));
      this.sweeper.unref();
    }
  }

  /** Drops series idle for longer than the expiry; returns how many went. */
  sweep(now = Date.now()): number {
    if (this.expiryMs <= 0) return 0;
    const cutoff = now - this.expiryMs;
    let n = 0;
    for (const [key, s] of this.requestSeries) {
      if (s.last >= cutoff) continue;
      this.requests.remove(s.labels);
      this.duration.remove(s.labels);
      this.requestSeries.delete(key);
      n++;
    }
    for (const [key, s] of this.upstreamSeries) {
      if (s.last >= cutoff) continue;
      this.upstreamRq.remove({ envoy_response_code_class: s.cls, envoy_cluster_name: s.cluster });
      this.upstreamSeries.delete(key);
      // The per-cluster total goes with the cluster's last class.
      if (![...this.upstreamSeries.values()].some((o) => o.cluster === s.cluster)) this.upstreamRqTotal.remove({ envoy_cluster_name: s.cluster });
      n++;
    }
    for (const [key, s] of this.tcpSeries) {
      if (s.last >= cutoff) continue;
      for (const c of [this.tcpOpened, this.tcpClosed, this.tcpSent, this.tcpReceived]) c.remove(s.labels);
      this.tcpSeries.delete(key);
      n++;
    }
    this.expired += n;
    return n;
  }

  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
  }

  private touchTcp(labels: TcpLabels): void {
    if (this.expiryMs <= 0) return;
    let key = '';
    for (const name of TCP_LABELS) key += labels[name] + '\u0000';
    const s = this.tcpSeries.get(key);
    if (s) s.last = Date.now();
    else this.tcpSeries.set(key, { labels, last: Date.now() });
  }

  recordRequest(labels: RequestLabels, durationMs: number): void {
    // prom-client validates and hashes a label object on every call; the label sets of a
    // proxy are few, so their children are looked up once and kept.
    let key = '';
    for (const name of REQUEST_LABELS) key += labels[name] + '\u0000';
    let series = this.requestSeries.get(key);
    if (!series) {
      series = { count: this.requests.labels(labels), duration: this.duration.labels(labels), labels, last: 0 };
      this.requestSeries.set(key, series);
    }
    if (this.expiryMs > 0) series.last = Date.now();
    series.count.inc();
    series.duration.observe(durationMs);
  }

  recordUpstream(cluster: string, status: number): void {
    const cls = `${Math.floor(status / 100)}xx`;
    const key = `${cluster}\u0000${cls}`;
    let series = this.upstreamSeries.get(key);
    if (!series) {
      series = { total: this.upstreamRqTotal.labels({ envoy_cluster_name: cluster }), byClass: this.upstreamRq.labels({ envoy_response_code_class: cls, envoy_cluster_name: cluster }), cluster, cls, last: 0 };
      this.upstreamSeries.set(key, series);
    }
    if (this.expiryMs > 0) series.last = Date.now();
    series.total.inc();
    series.byClass.inc();
  }

  tcpOpen(labels: TcpLabels): void {
    this.touchTcp(labels);
    this.tcpOpened.inc(labels);
  }

  tcpClose(labels: TcpLabels, sent: number, received: number): void {
    this.touchTcp(labels);
    this.tcpClosed.inc(labels);
    if (sent > 0) this.tcpSent.inc(labels, sent);
    if (received > 0) this.tcpReceived.inc(labels, received);
  }

  async prometheusText(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
