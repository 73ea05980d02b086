// The CA's Prometheus metrics, with Istio's (citadel_) names.
import { Counter, Gauge, Registry } from 'prom-client';

export class CAMetrics {
  readonly rootExpiry: Gauge;
  readonly csrCount: Counter;
  readonly issued: Counter;
  readonly authnFailures: Counter;
  readonly signErrors: Counter;

  constructor(readonly registry: Registry = new Registry()) {
    const registers = [registry];
    this.rootExpiry = new Gauge({ name: 'citadel_server_root_cert_expiry_timestamp', help: 'Unix time (seconds) at which the CA root certificate expires.', registers });
    this.csrCount = new Counter({ name: 'citadel_server_csr_count', help: 'Certificate signing requests received.', registers });
    this.issued = new Counter({ name: 'citadel_server_success_cert_issuance_count', help: 'Certificates issued.', registers });
    this.authnFailures = new Counter({ name: 'citadel_server_authentication_failure_count', help: 'Requests whose caller could not be authenticated.', registers });
    this.signErrors = new Counter({ name: 'citadel_server_csr_sign_error_count', help: 'Requests refused or failed after authentication, by reason.', labelNames: ['reason'], registers });
  }
}
