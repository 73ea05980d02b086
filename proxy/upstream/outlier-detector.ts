// Passive health checking for one cluster (Envoy's outlier detection): consecutive 5xx and
// consecutive gateway failures eject a host for base_ejection_time x (times ejected), capped
// at max_ejection_time; at most max_ejection_percent of hosts (but always at least one) are
// ejected at a time. Every interval, ejections that ran out end and a healthy host's
// ejection multiplier decays by one.
import type { OutlierDetectionConfig } from '../xds/resources/cluster-policies.js';

interface HostState {
  consecutive5xx: number;
  consecutiveGateway: number;
  ejectedUntil: number;
  /** How many times the host has been ejected without decaying back (the multiplier). */
  ejections: number;
}

export interface OutlierEvents {
  onEject(host: string, reason: 'consecutive_5xx' | 'consecutive_gateway_failure'): void;
}

export class OutlierDetector {
  private readonly hosts = new Map<string, HostState>();
  private lastSweep = Date.now();

  constructor(public config: OutlierDetectionConfig, private readonly events: OutlierEvents, private readonly now = Date.now) {}

  private state(host: string): HostState {
    let s = this.hosts.get(host);
    if (!s) {
      s = { consecutive5xx: 0, consecutiveGateway: 0, ejectedUntil: 0, ejections: 0 };
      this.hosts.set(host, s);
    }
    return s;
  }

  isEjected(host: string): boolean {
    this.sweep();
    const s = this.hosts.get(host);
    return s !== undefined && s.ejectedUntil > 0;
  }

  ejectedCount(): number {
    let n = 0;
    for (const s of this.hosts.values()) if (s.ejectedUntil > 0) n++;
    return n;
  }

  /** Envoy's interval timer, run lazily: at most once per interval, on the request path. */
  private sweep(): void {
    const now = this.now();
    if (now - this.lastSweep < this.config.intervalMs) return;
    this.lastSweep = now;
    for (const s of this.hosts.values()) {
      if (s.ejectedUntil > 0 && now >= s.ejectedUntil) s.ejectedUntil = 0;
      else if (s.ejectedUntil === 0 && s.ejections > 0) s.ejections--;
    }
  }

  /** One upstream result: an HTTP status, or 'connect-failure' / 'reset' / 'timeout' (locally originated). */
  record(host: string, result: number | 'connect-failure' | 'reset' | 'timeout', hostCount: number): void {
    const s = this.state(host);
    const is5xx = typeof result !== 'number' || result >= 500;
    const isGateway = typeof result !== 'number' || result === 502 || result === 503 || result === 504;
    if (!is5xx) {
      s.consecutive5xx = 0;
      s.consecutiveGateway = 0;
      return;
    }
    s.consecutive5xx++;
    if (isGateway) s.consecutiveGateway++;
    else s.consecutiveGateway = 0;
    const c = this.config;
    if (c.consecutive5xx > 0 && s.consecutive5xx >= c.consecutive5xx && Math.random() * 100 < c.enforcingConsecutive5xx) {
      this.eject(host, s, 'consecutive_5xx', hostCount);
    } else if (c.consecutiveGatewayFailure > 0 && s.consecutiveGateway >= c.consecutiveGatewayFailure
      && Math.random() * 100 < c.enforcingConsecutiveGatewayFailure) {
      this.eject(host, s, 'consecutive_gateway_failure', hostCount);
    }
  }

  private eject(host: string, s: HostState, reason: 'consecutive_5xx' | 'consecutive_gateway_failure', hostCount: number): void {
    if (s.ejectedUntil > 0) return;
    const ejected = this.ejectedCount();
    // max_ejection_percent bounds ejections, but one host can always be ejected.
    if (ejected > 0 && ((ejected + 1) / Math.max(1, hostCount)) * 100 > this.config.maxEjectionPercent) return;
    s.ejections++;
    s.consecutive5xx = 0;
    s.consecutiveGateway = 0;
    s.ejectedUntil = this.now() + Math.min(this.config.baseEjectionTimeMs * s.ejections, Math.max(this.config.maxEjectionTimeMs, this.config.baseEjectionTimeMs));
    this.events.onEject(host, reason);
  }

  /** For /clusters. */
  ejectionsOf(host: string): number {
    return this.hosts.get(host)?.ejections ?? 0;
  }
}
