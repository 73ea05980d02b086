// Envoy-style flat counters ("cluster.<name>.upstream_rq_200: 3") for the admin /stats page.
export class EnvoyStats {
  private readonly counters = new Map<string, number>();

  inc(name: string, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }

  get(name: string): number {
    return this.counters.get(name) ?? 0;
  }

  /** Counters plus gauges computed by the caller, sorted, one "name: value" per line. */
  text(extra: Record<string, number> = {}): string {
    const all = new Map(this.counters);
    for (const [k, v] of Object.entries(extra)) all.set(k, v);
    return [...all.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}: ${v}`).join('\n') + '\n';
  }
}
