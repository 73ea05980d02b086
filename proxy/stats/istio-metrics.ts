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
  'reporter', 'source_workload', 'source_workload_namespace', 'destination_workload', 'destination_workload_namespace',
  'destination_service', 'destination_service_name', 'destination_service_namespace', 'response_flags', 'connection_security_policy',
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
  private readonly requestSeries = new Map<string, { count: ReturnType<client.Counter<string>['labels']>; duration: ReturnType<client.Histogram<string>['labels']> }>();
  private readonly upstreamSeries = new Map<string, { total: ReturnType<client.Counter<string>['labels']>; byClass: ReturnType<client.Counter<string>['labels']> }>();

  constructor() {
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
  }

  recordRequest(labels: RequestLabels, durationMs: number): void {
    // prom-client validates and hashes a label object on every call; the label sets of a
    // proxy are few, so their children are looked up once and kept.
    let key = '';
    for (const name of REQUEST_LABELS) key += labels[name] + '\u0000';
    let series = this.requestSeries.get(key);
    if (!series) {
      series = { count: this.requests.labels(labels), duration: this.duration.labels(labels) };
      this.requestSeries.set(key, series);
    }
    series.count.inc();
    series.duration.observe(durationMs);
  }

  recordUpstream(cluster: string, status: number): void {
    const cls = `${Math.floor(status / 100)}xx`;
    const key = `${cluster}\u0000${cls}`;
    let series = this.upstreamSeries.get(key);
    if (!series) {
      series = { total: this.upstreamRqTotal.labels({ envoy_cluster_name: cluster }), byClass: this.upstreamRq.labels({ envoy_response_code_class: cls, envoy_cluster_name: cluster }) };
      this.upstreamSeries.set(key, series);
    }
    series.total.inc();
    series.byClass.inc();
  }

  tcpOpen(labels: TcpLabels): void {
    this.tcpOpened.inc(labels);
  }

  tcpClose(labels: TcpLabels, sent: number, received: number): void {
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
