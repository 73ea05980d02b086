// Pilot's Prometheus metrics, with Istio's names. A registry per pilot instance, so tests
// can run several servers in one process.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class PilotMetrics {
  readonly registry = new Registry();
  readonly pushes = new Counter({ name: 'pilot_xds_pushes', help: 'xDS responses sent, by type (cds, eds, lds, rds).', labelNames: ['type'], registers: [this.registry] });
  readonly connected = new Gauge({ name: 'pilot_xds', help: 'Connected xDS clients.', labelNames: ['version'], registers: [this.registry] });
  readonly rejects = new Counter({ name: 'pilot_total_xds_rejects', help: 'xDS responses rejected (NACKed) by proxies, by type.', labelNames: ['type'], registers: [this.registry] });
  readonly convergence = new Histogram({
    name: 'pilot_proxy_convergence_time', help: 'Seconds from the first config change of a push to the last ACK of that push by a proxy (one observation per proxy and push).',
    buckets: [0.1, 0.5, 1, 3, 5, 10, 20, 30], registers: [this.registry],
  });
  readonly snapshots = new Counter({ name: 'pilot_push_contexts_total', help: 'Snapshots (push contexts) built.', registers: [this.registry] });
  readonly warnings = new Gauge({ name: 'pilot_config_warnings', help: 'Warnings in the current snapshot (see /debug/warnings).', registers: [this.registry] });
}
