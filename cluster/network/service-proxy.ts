import { readFile, writeFile } from 'node:fs/promises';
import { bridgeName, chainName, chainPrefix, validatePrefix } from './names.js';
import { chainsWithPrefix, ensureRule, restoreNoFlush, saveTable, type IptablesTable } from './iptables.js';
import { buildServiceRules, type DnsRedirect, type Ruleset } from './service-rules.js';
import { ruleDelta } from './service-delta.js';
import type { Collection, Endpoints, Service } from './kube-types.js';
import { runCommand } from './exec.js';

export interface ServiceProxyOptions {
  prefix: string;
  /** Redirect for the cluster DNS service IP (10.96.0.10:53 -> gateway:53), udp and tcp. */
  dns?: DnsRedirect;
  /** The node bridge (default `<prefix>-br0`); node ports on 127.0.0.1 are routed onto it. */
  bridge?: string;
  /** Every node bridge, when the cluster has several nodes (replaces `bridge`). */
  bridges?: string[];
  /** Coalesces bursts of updates into one iptables-restore. Default 100 ms. */
  debounceMs?: number;
  /** Failures of debounced syncs (they are retried); default logs to stderr. */
  onError?: (err: Error) => void;
  /** Service ports that could not be programmed, with the reason. */
  onSkipped?: (reasons: string[]) => void;
  /**
   * A sync after this long since the last full one re-reads the tables and re-ensures the
   * hooks (kube-proxy's periodic full sync), repairing changes made by others. Default 1 h.
   */
  fullSyncPeriodMs?: number;
}

/** What one sync did, for tests and measurements. */
export interface SyncStats {
  kind: 'full' | 'delta' | 'none';
  rewritten: string[];
  deleted: string[];
}

interface Hook {
  table: IptablesTable;
  chain: string;
  target: string;
  comment: string;
}

/**
 * kube-proxy in iptables mode for one prefix. Level-triggered: every sync computes the
 * prefix's whole service ruleset from the given state, so a missed or repeated update is
 * harmless. Like kube-proxy, it remembers the chains it wrote and sends the kernel only the
 * chains that changed, in one atomic `iptables-restore --noflush` per sync; it reads the
 * tables back (iptables-save, costly on a big nat table) only for a full sync: at start-up,
 * after a failed restore and once per fullSyncPeriodMs.
 */
export class ServiceProxy {
  private readonly prefix: string;
  private readonly debounceMs: number;
  private readonly bridges: string[];
  private services: Collection<Service> = [];
  private endpoints: Collection<Endpoints> = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  /** The chains in the kernel as this proxy last wrote them; undefined forces a full sync. */
  private written: Ruleset | undefined;
  private lastFullSync = 0;
  private readonly fullSyncPeriodMs: number;
  /** The last sync's work (kind 'none' when nothing had changed). */
  lastSync: SyncStats = { kind: 'none', rewritten: [], deleted: [] };
  private stopped = false;
  private retryMs = 0;

  constructor(private readonly opts: ServiceProxyOptions) {
    validatePrefix(opts.prefix);
    this.prefix = opts.prefix;
    this.debounceMs = opts.debounceMs ?? 100;
    this.fullSyncPeriodMs = opts.fullSyncPeriodMs ?? 3_600_000;
    this.bridges = opts.bridges?.length ? [...opts.bridges] : [opts.bridge ?? bridgeName(opts.prefix)];
  }

  /**
   * Node ports on 127.0.0.1: nat OUTPUT DNATs the host's connection to a pod, but its source
   * stays 127.0.0.1, which the kernel refuses to route out of (and accept back on) a
   * non-loopback device unless route_localnet is set on that device. kube-proxy sets it on
   * `all`, for every interface of the host; we set it only on our own bridge, which leads
   * nowhere but our pods' namespaces and disappears with it (nothing host-wide is left
   * behind), and the LOCALNET filter rule drops any unsolicited packet from a pod to
   * 127.0.0.0/8. The masquerade in POSTROUTING gives the pod the bridge address as source.
   */
  private async enableRouteLocalnet(): Promise<void> {
    for (const bridge of this.bridges) {
      const file = `/proc/sys/net/ipv4/conf/${bridge}/route_localnet`;
      const now = await readFile(file, 'utf8').catch(() => undefined);
      if (now === undefined) continue; // no bridge (yet): node ports on 127.0.0.1 wait for the next apply
      if (now.trim() !== '1') await writeFile(file, '1\n');
    }
  }

  private get hooks(): Hook[] {
    const services = chainName(this.prefix, 'SERVICES');
    const portals = `${this.prefix} service portals`;
    return [
      { table: 'nat', chain: 'PREROUTING', target: services, comment: portals },
      { table: 'nat', chain: 'OUTPUT', target: services, comment: portals },
      { table: 'nat', chain: 'POSTROUTING', target: chainName(this.prefix, 'POSTROUTING'), comment: `${this.prefix} service masquerade` },
      { table: 'filter', chain: 'FORWARD', target: services, comment: `${this.prefix} services without endpoints` },
      { table: 'filter', chain: 'OUTPUT', target: services, comment: `${this.prefix} services without endpoints` },
      { table: 'filter', chain: 'INPUT', target: chainName(this.prefix, 'LOCALNET'), comment: `${this.prefix} localnet guard` },
    ];
  }

  /** Records the desired state and schedules a debounced apply. Never throws. */
  update(services: Collection<Service>, endpoints: Collection<Endpoints>): void {
    this.services = services;
    this.endpoints = endpoints;
    this.schedule(this.debounceMs);
  }

  /** Records the desired state and applies it now; resolves when the rules are in place. */
  async sync(services: Collection<Service>, endpoints: Collection<Endpoints>): Promise<void> {
    this.services = services;
    this.endpoints = endpoints;
    await this.flush();
  }

  /** Applies the latest state now (cancelling a pending debounce). */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const next = this.running.catch(() => undefined).then(() => this.apply());
    this.running = next;
    return next;
  }

  /** Stops scheduling; the rules stay (removeRules or teardownNodeNetwork removes them). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Removes the jumps and every chain this proxy owns (other chains of the prefix stay). */
  async removeRules(): Promise<void> {
    this.stop();
    await this.running.catch(() => undefined);
    for (const h of this.hooks) {
      await runCommand('iptables', ['-w', '5', '-t', h.table, '-D', h.chain, ...this.hookRule(h)]);
    }
    const owned = this.ownedChainPattern();
    for (const table of ['nat', 'filter'] as const) {
      const chains = chainsWithPrefix(await saveTable(table), chainPrefix(this.prefix)).filter((c) => owned.test(c));
      if (chains.length === 0) continue;
      await restoreNoFlush([`*${table}`, ...chains.map((c) => `:${c} - [0:0]`), ...chains.map((c) => `-X ${c}`), 'COMMIT', ''].join('\n'));
    }
    this.written = undefined;
  }

  private schedule(delayMs: number): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush().then(
        () => {
          this.retryMs = 0;
        },
        (err: Error) => {
          (this.opts.onError ?? ((e: Error) => console.error(`service proxy ${this.prefix}: ${e.message}`)))(err);
          this.retryMs = Math.min(Math.max(this.retryMs * 2, 500), 30_000);
          this.schedule(this.retryMs);
        },
      );
    }, delayMs);
  }

  private hookRule(h: Hook): string[] {
    return ['-m', 'comment', '--comment', h.comment, '-j', h.target];
  }

  private async apply(): Promise<void> {
    const rules = buildServiceRules({
      prefix: this.prefix,
      services: this.services,
      endpoints: this.endpoints,
      dns: this.opts.dns,
      bridges: this.bridges,
    });
    await this.enableRouteLocalnet();
    if (rules.skipped.length > 0) this.opts.onSkipped?.(rules.skipped);
    if (this.written && Date.now() - this.lastFullSync < this.fullSyncPeriodMs) {
      const delta = ruleDelta({ written: this.written, desired: rules.tables });
      if (delta.restore === '') {
        this.lastSync = { kind: 'none', rewritten: [], deleted: [] };
        return;
      }
      try {
        // Two attempts ride out an nf_tables commit conflict; any other failure means the
        // kernel is not what we think (someone changed our chains): re-read it below.
        await restoreNoFlush(delta.restore, 2);
        this.written = rules.tables;
        this.lastSync = { kind: 'delta', rewritten: delta.rewritten, deleted: delta.deleted };
        return;
      } catch (e) {
        this.written = undefined;
        (this.opts.onError ?? ((err: Error) => console.error(`service proxy ${this.prefix}: ${err.message}`)))(
          new Error(`incremental sync failed, re-reading the tables: ${(e as Error).message.split('\n')[0]}`),
        );
      }
    }
    await this.fullSync(rules.tables);
  }

  /** Rewrites every chain, deletes our chains no longer wanted (found in the kernel) and ensures the hooks. */
  private async fullSync(desired: Ruleset): Promise<void> {
    this.written = undefined;
    const owned = this.ownedChainPattern();
    const [nat, filter] = await Promise.all([saveTable('nat'), saveTable('filter')]);
    const existing = {
      nat: chainsWithPrefix(nat, chainPrefix(this.prefix)).filter((c) => owned.test(c)),
      filter: chainsWithPrefix(filter, chainPrefix(this.prefix)).filter((c) => owned.test(c)),
    };
    const delta = ruleDelta({ desired, existing });
    await restoreNoFlush(delta.restore);
    // The hooks live in built-in chains shared with others: ensured (and repaired) here only.
    for (const h of this.hooks) await ensureRule(h.table, h.chain, this.hookRule(h));
    this.written = desired;
    this.lastFullSync = Date.now();
    this.lastSync = { kind: 'full', rewritten: delta.rewritten, deleted: delta.deleted };
  }

  private ownedChainPattern(): RegExp {
    return new RegExp(`^${chainPrefix(this.prefix)}(SERVICES|POSTROUTING|MARK-MASQ|NODEPORTS|LOCALNET|SVC-.*|SEP-.*)$`);
  }
}

export function startServiceProxy(opts: ServiceProxyOptions): ServiceProxy {
  return new ServiceProxy(opts);
}
