// Pilot assembled: the informers feed the push controller, each snapshot goes to the xDS
// server, and the debug server reports on all of it. main.ts only parses flags and signals.
import { R, type KubeClient } from '../api/kube/index.js';
import { VirtualServiceStatusWriter } from './analysis/status.js';
import { KubeSources } from './model/sources.js';
import { PushController } from './model/controller.js';
import { XdsServer } from './xds/server.js';
import { DebugServer } from './debug.js';
import { PilotMetrics } from './metrics.js';
import type { SecurityOptions } from './security/options.js';
import type { MeshOptions } from './model/mesh-config.js';

export interface PilotOptions {
  host?: string;
  xdsPort?: number;
  debugPort?: number;
  domain?: string;
  quietMs?: number;
  maxMs?: number;
  syncTimeoutMs?: number;
  /** Mesh root namespace, mTLS/authorization emission, trust domain (pilot/security/options.ts). */
  security?: Partial<SecurityOptions>;
  /** MeshConfig accessLogFile / accessLogEncoding (pilot/model/mesh-config.ts). */
  mesh?: Partial<MeshOptions>;
  /** Write analysis findings into VirtualService status (default true). */
  writeStatus?: boolean;
}

export class Pilot {
  readonly metrics = new PilotMetrics();
  readonly sources: KubeSources;
  readonly controller: PushController;
  readonly xds: XdsServer;
  readonly debug: DebugServer;
  readonly status?: VirtualServiceStatusWriter;
  private synced = false;

  constructor(client: KubeClient, private readonly opts: PilotOptions = {}) {
    this.sources = new KubeSources(client, () => { if (this.synced) this.controller.trigger(); });
    if (opts.writeStatus !== false) {
      // The served version of the CRD (v1, or v1beta1 on older clusters).
      this.status = new VirtualServiceStatusWriter(client, () => ({ ...R.virtualServices, version: this.sources.crdVersions.virtualservices ?? R.virtualServices.version }), opts.domain,
        () => ({ ...R.gateways, version: this.sources.crdVersions.gateways ?? R.gateways.version }));
    }
    this.controller = new PushController(this.sources, { quietMs: opts.quietMs, maxMs: opts.maxMs, domain: opts.domain, security: opts.security, mesh: opts.mesh });
    this.xds = new XdsServer({ host: opts.host, port: opts.xdsPort, metrics: this.metrics });
    this.controller.onPush(({ push, burst }) => {
      this.metrics.snapshots.inc();
      this.metrics.warnings.set(push.warnings.length);
      this.xds.update(push, burst);
      this.status?.report(push.inputs);
    });
    this.debug = new DebugServer({
      ready: () => this.synced && this.controller.current !== undefined,
      snapshot: () => this.controller.current,
      syncz: () => this.xds.syncz(),
      configDump: (id) => this.xds.configDump(id),
      pushStatus: () => this.xds.pushStatus(),
      metrics: this.metrics,
      extra: () => ({ crdVersions: this.sources.crdVersions }),
    }, { host: opts.host, port: opts.debugPort });
  }

  /** Starts serving, then syncs the informers and builds the first snapshot. */
  async start(): Promise<{ xdsPort: number; debugPort: number }> {
    const xdsPort = await this.xds.start();
    const debugPort = await this.debug.start();
    this.sources.start();
    await this.sources.waitForSync(this.opts.syncTimeoutMs ?? 60_000);
    this.synced = true;
    this.controller.rebuild();
    return { xdsPort, debugPort };
  }

  async stop(): Promise<void> {
    this.controller.stop();
    this.sources.stop();
    await this.xds.stop();
    await this.debug.stop();
  }
}
