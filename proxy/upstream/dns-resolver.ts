// STRICT_DNS and LOGICAL_DNS: resolve the hostnames of the cluster's load assignment, through
// the system resolver (getaddrinfo, so /etc/hosts too) or the cluster's own DNS servers,
// re-resolve every dns_refresh_rate and replace the cluster's hosts when the answer changes.
// STRICT_DNS makes a host of every address; LOGICAL_DNS has one logical host at the first
// address of the latest answer, so new connections follow DNS while open ones stay where
// they are (their pools are closed only once idle). A failed resolution keeps the last hosts (Envoy).
import dns from 'node:dns';
import net from 'node:net';
import type { ClusterConfig } from '../xds/resources/cluster.js';
import type { Endpoint } from '../xds/resources/endpoint.js';

export class DnsClusterResolver {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly resolver: dns.promises.Resolver | undefined;
  /** Resolutions done (tests and /clusters read it). */
  resolutions = 0;

  constructor(
    readonly config: ClusterConfig,
    private readonly onChange: (name: string, endpoints: Endpoint[]) => void,
    private readonly log: (msg: string) => void = () => undefined,
  ) {
    const servers = config.dns?.resolvers ?? [];
    if (servers.length > 0) {
      this.resolver = new dns.promises.Resolver({ timeout: 1000, tries: 2 });
      this.resolver.setServers(servers.map((s) => (net.isIPv6(s.address) ? `[${s.address}]:${s.port}` : `${s.address}:${s.port}`)));
    }
  }

  start(): void {
    void this.refresh();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.resolver?.cancel();
  }

  private async refresh(): Promise<void> {
    const hosts = this.config.dnsHosts;
    try {
      const next: Endpoint[] = [];
      for (const e of this.config.staticEndpoints) {
        const addresses = await this.resolve(e.address);
        if (this.config.type === 'LOGICAL_DNS') {
          if (addresses.length === 0) throw new Error(`no address for ${e.address}`);
          next.push({ ...e, address: addresses[0] });
          continue;
        }
        for (const address of addresses) next.push({ ...e, address });
      }
      this.resolutions++;
      if (this.stopped) return;
      const key = (l: readonly Endpoint[]): string => l.map((e) => `${e.address}:${e.port}/${e.weight}`).sort().join(',');
      if (hosts && (hosts.endpoints === undefined || key(hosts.endpoints) !== key(next))) {
        hosts.endpoints = next;
        this.onChange(this.config.name, next);
      }
    } catch (e) {
      this.log(`cluster ${this.config.name}: DNS resolution failed, keeping the last hosts: ${(e as Error).message}`);
    } finally {
      if (!this.stopped) {
        this.timer = setTimeout(() => void this.refresh(), this.config.dns?.refreshMs ?? 5_000);
        this.timer.unref();
      }
    }
  }

  private async resolve(host: string): Promise<string[]> {
    if (net.isIP(host) !== 0) return [host];
    const family = this.config.dns?.family ?? 0;
    if (this.resolver) {
      const out: string[] = [];
      if (family !== 6) out.push(...(await this.resolver.resolve4(host).catch((e: NodeJS.ErrnoException) => (family === 4 ? Promise.reject(e) : []))));
      if (family === 6 || out.length === 0) out.push(...(await this.resolver.resolve6(host)));
      return out;
    }
    const found = await dns.promises.lookup(host, { all: true, family });
    return [...new Set(found.map((a) => a.address))];
  }
}
