// Everything the kubelet runs for one pod (one UID): the sandbox, volumes and containers.
// sync(pod) is idempotent and level-triggered: it looks at what is running and takes the
// next step (start the next init container, restart an exited one after its back-off,
// declare the pod finished); process exits and probe changes just request another sync.
import fs from 'node:fs';
import path from 'node:path';
import type { Container, ContainerStatus, KubeClient, Pod, PodCondition, PodStatus } from '../../api/kube/index.js';
import { PodCgroup, type MemoryCgroupBackend } from './cgroups.js';
import { ContainerRun, type ContainerContext, type ContainerRole } from './container-run.js';
import type { EventSink } from './events.js';
import { ContainerConfigError } from './env.js';
import type { Ipam } from './ipam.js';
import type { Mount } from './launcher.js';
import { hostsFile, resolvConf, usesClusterDNS } from './pod-files.js';
import { rfc3339 } from './process.js';
import { runProbeOnce } from './probes.js';
import { ensureSandbox, removeSandbox } from './sandbox.js';
import { PodVolumes } from './volumes.js';

export interface PodRuntimeDeps {
  client: KubeClient;
  prefix: string;
  bridge: string;
  gatewayIP: string;
  prefixLength: number;
  dataDir: string;
  clusterDNS: string;
  clusterDomain: string;
  imageCatalogs: string[];
  ipam: Ipam;
  /** Where pod cgroups go; undefined when memory limits cannot be enforced here. */
  cgroups?: MemoryCgroupBackend;
  events?: EventSink;
  requeue: (ms?: number) => void;
}

type Phase = NonNullable<PodStatus['phase']>;

const SIDECAR_MIN_GRACE_MS = 2_000;
const CONFIG_RETRY_MS = 5_000;

export class PodRuntime {
  readonly uid: string;
  readonly podDir: string;
  private pod: Pod;
  private readonly ctx: ContainerContext;
  private readonly inits: ContainerRun[];
  private readonly apps: ContainerRun[];
  private volumes?: PodVolumes;
  private sandboxReady = false;
  private sandboxError?: string;
  private podIP?: string;
  private initialized = false;
  private finalPhase?: Phase;
  private terminating = false;
  private readonly startTime: string;

  constructor(pod: Pod, private readonly deps: PodRuntimeDeps) {
    this.pod = pod;
    this.uid = pod.metadata.uid ?? '';
    this.podDir = path.join(deps.dataDir, 'pods', this.uid);
    this.startTime = pod.status?.startTime ?? rfc3339(Date.now());
    this.ctx = {
      pod, client: deps.client, podDir: this.podDir, podIP: '', hostIP: deps.gatewayIP,
      mounts: (c) => this.mountsFor(c), imageCatalogs: deps.imageCatalogs, onChange: () => deps.requeue(),
      cgroup: deps.cgroups ? new PodCgroup(deps.cgroups, this.uid) : undefined,
      events: deps.events,
    };
    const role = (c: Container): ContainerRole => (c.restartPolicy === 'Always' ? 'sidecar' : 'init');
    this.inits = (pod.spec.initContainers ?? []).map((c) => new ContainerRun(c, role(c), this.ctx));
    this.apps = pod.spec.containers.map((c) => new ContainerRun(c, 'app', this.ctx));
  }

  get finished(): boolean { return this.finalPhase !== undefined; }

  private get where(): string { return `pod ${this.pod.metadata.namespace}/${this.pod.metadata.name}`; }
  private get policy(): 'Always' | 'OnFailure' | 'Never' { return this.pod.spec.restartPolicy ?? 'Always'; }

  /** PIDs of the running containers (for diagnostics and tests). */
  pids(): number[] {
    return [...this.inits, ...this.apps].filter((c) => c.running).map((c) => c.proc?.pid ?? -1);
  }

  /** The log file of a container's current run, or of the previous one. */
  logPath(container: string, previous: boolean): string | undefined {
    const c = [...this.inits, ...this.apps].find((x) => x.name === container);
    if (!c || !c.everStarted) return undefined;
    const run = previous ? c.restartCount - 1 : c.restartCount;
    return run < 0 ? undefined : path.join(this.podDir, container, `${run}.log`);
  }

  /** Container names in spec order (init containers first). */
  containerNames(): string[] {
    return [...this.inits, ...this.apps].map((c) => c.name);
  }

  async sync(pod: Pod): Promise<void> {
    this.pod = pod;
    this.ctx.pod = pod;
    if (this.finished || this.terminating) return;
    if (!this.sandboxReady) {
      try {
        await this.setupSandbox();
        this.sandboxError = undefined;
      } catch (e) {
        this.sandboxError = (e as Error).message;
        console.error(`kubelet: ${this.where}: ${this.sandboxError}`);
        this.deps.requeue(CONFIG_RETRY_MS);
        return;
      }
    }

    if (!(await this.syncInitContainers())) return;
    this.initialized = true;

    for (const c of this.apps) {
      if (c.running || (c.exit && !this.appRestarts(c))) continue;
      await this.startOrRestart(c);
    }
    if (this.apps.every((c) => c.exit && !c.running && !this.appRestarts(c))) {
      await this.finish(this.apps.some((c) => c.exit?.exitCode !== 0) ? 'Failed' : 'Succeeded');
    }
  }

  /** Walks the init containers in order; true once initialization is complete. */
  private async syncInitContainers(): Promise<boolean> {
    for (const c of this.inits) {
      if (c.role === 'sidecar') {
        // Sidecars are restarted whenever they exit, also after initialization.
        if (!c.running) await this.startOrRestart(c);
        if (!this.initialized && !c.sidecarStarted) return false;
        continue;
      }
      if (this.initialized || c.succeeded) continue;
      if (c.running) return false;
      if (c.exit && this.policy === 'Never') {
        await this.finish('Failed');
        return false;
      }
      await this.startOrRestart(c);
      return false;
    }
    return true;
  }

  private appRestarts(c: ContainerRun): boolean {
    if (this.policy === 'Always') return true;
    if (this.policy === 'OnFailure') return (c.exit?.exitCode ?? 0) !== 0;
    return false;
  }

  /** Starts a container, or restarts an exited one once its back-off has passed. */
  private async startOrRestart(c: ContainerRun): Promise<void> {
    if (c.exit) {
      const delay = c.restartDelay();
      if (delay > 0) { this.deps.requeue(delay); return; }
    }
    if (!(await c.start())) this.deps.requeue(CONFIG_RETRY_MS);
  }

  private async setupSandbox(): Promise<void> {
    const d = this.deps;
    if (this.pod.spec.hostNetwork) {
      this.podIP = d.gatewayIP;
    } else {
      const podIP = d.ipam.allocate(this.uid);
      const sb = await ensureSandbox({ prefix: d.prefix, podUID: this.uid, bridge: d.bridge, gatewayIP: d.gatewayIP, podIP, prefixLength: d.prefixLength });
      this.podIP = podIP;
      this.ctx.netns = sb.netns;
    }
    this.ctx.podIP = this.podIP;
    fs.mkdirSync(this.podDir, { recursive: true });
    fs.writeFileSync(path.join(this.podDir, 'hosts'), hostsFile(this.pod, this.podIP));
    fs.writeFileSync(path.join(this.podDir, 'resolv.conf'), resolvConf(this.pod.metadata.namespace ?? 'default', d.clusterDomain, d.clusterDNS));
    this.volumes ??= new PodVolumes(d.client, this.pod, this.podDir);
    await this.volumes.prepare({ podIP: this.podIP, hostIP: d.gatewayIP });
    this.volumes.startRefresh();
    this.sandboxReady = true;
  }

  private mountsFor(c: Container): Mount[] {
    const mounts: Mount[] = [];
    if (!this.pod.spec.hostNetwork) mounts.push({ kind: 'file', source: path.join(this.podDir, 'hosts'), target: '/etc/hosts', readOnly: false });
    if (usesClusterDNS(this.pod)) mounts.push({ kind: 'file', source: path.join(this.podDir, 'resolv.conf'), target: '/etc/resolv.conf', readOnly: false });
    for (const [i, vm] of (c.volumeMounts ?? []).entries()) {
      const dir = this.volumes?.dirs.get(vm.name);
      const field = `${this.where} container ${c.name}: volumeMounts[${i}]`;
      if (!dir) throw new ContainerConfigError(`${field}.name: volume "${vm.name}" is not defined in spec.volumes`);
      if (!vm.mountPath.startsWith('/')) throw new ContainerConfigError(`${field}.mountPath: "${vm.mountPath}" must be absolute`);
      let source = dir;
      let kind: Mount['kind'] = 'dir';
      if (vm.subPath) {
        if (path.isAbsolute(vm.subPath) || vm.subPath.split('/').includes('..')) throw new ContainerConfigError(`${field}.subPath: "${vm.subPath}" must be relative without ".."`);
        source = path.join(dir, vm.subPath);
        if (!fs.existsSync(source)) fs.mkdirSync(source, { recursive: true, mode: 0o755 });
        if (fs.statSync(source).isFile()) kind = 'file';
      }
      mounts.push({ kind, source, target: vm.mountPath, readOnly: !!vm.readOnly });
    }
    return mounts;
  }

  /** All app containers are done for good: stop sidecars, release the sandbox, keep the status. */
  private async finish(phase: Phase): Promise<void> {
    this.finalPhase = phase;
    await this.stopAll(SIDECAR_MIN_GRACE_MS, false);
    await this.removeSandbox(false);
  }

  /** Runs a container's preStop hook (exec or httpGet), bounded by the deadline. */
  private async preStop(c: ContainerRun, deadline: number): Promise<void> {
    const hook = c.spec.lifecycle?.preStop;
    if (!hook || !c.running) return;
    const timeoutSeconds = Math.max(1, Math.floor((deadline - Date.now()) / 1000));
    const probe = hook.exec ? { exec: hook.exec, timeoutSeconds } : hook.httpGet ? { httpGet: hook.httpGet, timeoutSeconds } : undefined;
    if (!probe) return;
    const ok = await runProbeOnce(c.spec, probe, c.probeTarget(), `${this.where} container ${c.name}.lifecycle.preStop`);
    if (!ok) console.error(`kubelet: ${this.where} container ${c.name}: preStop hook failed`);
  }

  /**
   * App (and running init) containers first: preStop, SIGTERM, SIGKILL at the deadline.
   * Then sidecars in reverse order, each with what is left of the grace (at least a moment).
   */
  private async stopAll(graceMs: number, hooks: boolean): Promise<void> {
    const deadline = Date.now() + graceMs;
    const first = [...this.apps, ...this.inits.filter((c) => c.role === 'init')];
    const killing = (c: ContainerRun): void => { if (hooks && c.running) c.event('Normal', 'Killing', `Stopping container ${c.name}`); };
    await Promise.all(first.map(async (c) => {
      killing(c);
      if (hooks) await this.preStop(c, deadline);
      await c.stop(Math.max(0, deadline - Date.now()));
    }));
    for (const c of this.inits.filter((x) => x.role === 'sidecar').reverse()) {
      killing(c);
      if (hooks) await this.preStop(c, Math.max(deadline, Date.now() + SIDECAR_MIN_GRACE_MS));
      await c.stop(Math.max(SIDECAR_MIN_GRACE_MS, deadline - Date.now()));
    }
  }

  private async removeSandbox(releaseIP: boolean): Promise<void> {
    this.volumes?.close();
    // After stopAll: the containers' groups are empty (or hold only stragglers to kill).
    await this.ctx.cgroup?.remove();
    if (!this.pod.spec.hostNetwork) await removeSandbox(this.deps.prefix, this.uid);
    this.sandboxReady = false;
    if (releaseIP) this.deps.ipam.release(this.uid);
  }

  /** The pod is being deleted: graceful stop, then remove everything it had on this node. */
  async terminate(graceMs: number): Promise<void> {
    this.terminating = true;
    await this.stopAll(graceMs, true);
    await this.removeSandbox(true);
    fs.rmSync(this.podDir, { recursive: true, force: true });
  }

  /** The kubelet is stopping: kill quickly, remove netns and veth, keep the IP and files. */
  async shutdown(graceMs: number): Promise<void> {
    this.terminating = true;
    await this.stopAll(graceMs, false);
    await this.removeSandbox(false);
  }

  // ---- status ---------------------------------------------------------------

  private restartPending(c: ContainerRun): boolean {
    if (this.finished || this.terminating || !c.exit || c.running) return false;
    if (c.role === 'sidecar') return true;
    if (c.role === 'init') return c.exit.exitCode !== 0 && this.policy !== 'Never';
    return this.appRestarts(c);
  }

  private phase(): Phase {
    if (this.finalPhase) return this.finalPhase;
    if (!this.initialized) return 'Pending';
    let running = 0;
    let waiting = 0;
    for (const c of this.apps) {
      if (c.running) running++;
      else if (!c.exit) waiting++;
    }
    if (waiting > 0) return 'Pending';
    return 'Running'; // running, or exited and about to restart
  }

  status(existing: PodStatus | undefined): PodStatus {
    const now = rfc3339(Date.now());
    const waitingMessage = this.sandboxError;
    const initStatuses: ContainerStatus[] = this.inits.map((c) => c.status({
      waitingReason: this.sandboxReady ? 'PodInitializing' : 'ContainerCreating', waitingMessage, restartPending: this.restartPending(c),
    }));
    const appStatuses: ContainerStatus[] = this.apps.map((c) => c.status({
      waitingReason: !this.initialized && (this.sandboxReady || this.finished) ? 'PodInitializing' : 'ContainerCreating', waitingMessage, restartPending: this.restartPending(c),
    }));
    const phase = this.phase();
    const prev = new Map((existing?.conditions ?? []).map((c) => [c.type, c]));
    const cond = (type: string, ok: boolean, reason?: string, message?: string): PodCondition => {
      const status = ok ? 'True' : 'False';
      const old = prev.get(type);
      const c: PodCondition = { type, status, lastTransitionTime: old?.status === status && old.lastTransitionTime ? old.lastTransitionTime : now };
      if (!ok && reason) c.reason = reason;
      if (!ok && message) c.message = message;
      return c;
    };
    const incomplete = this.inits.filter((c) => !(c.role === 'sidecar' ? c.sidecarStarted : c.succeeded)).map((c) => c.name);
    const readyOnes = [...this.inits.filter((c) => c.role === 'sidecar'), ...this.apps];
    const unready = readyOnes.filter((c) => !c.ready).map((c) => c.name);
    const done = this.finished;
    const containersReady = !done && unready.length === 0;
    const notReadyReason = done ? 'PodCompleted' : 'ContainersNotReady';
    const notReadyMessage = done ? undefined : `containers with unready status: [${unready.join(' ')}]`;
    const managed = new Set(['PodScheduled', 'Initialized', 'ContainersReady', 'Ready']);
    const conditions: PodCondition[] = [
      cond('PodScheduled', true),
      cond('Initialized', this.initialized, 'ContainersNotInitialized', `containers with incomplete status: [${incomplete.join(' ')}]`),
      cond('ContainersReady', containersReady, notReadyReason, notReadyMessage),
      cond('Ready', containersReady, notReadyReason, notReadyMessage),
      ...(existing?.conditions ?? []).filter((c) => !managed.has(c.type)),
    ];
    const status: PodStatus = {
      ...(existing ?? {}),
      phase,
      conditions,
      hostIP: this.deps.gatewayIP,
      startTime: this.startTime,
      containerStatuses: appStatuses,
    };
    (status as Record<string, unknown>).hostIPs = [{ ip: this.deps.gatewayIP }];
    if (this.podIP) { status.podIP = this.podIP; status.podIPs = [{ ip: this.podIP }]; }
    if (initStatuses.length) status.initContainerStatuses = initStatuses;
    if (!this.sandboxReady && this.sandboxError && !done) status.message = this.sandboxError;
    else delete status.message;
    return status;
  }
}
