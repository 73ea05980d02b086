// One container of a pod across its restarts: the current process, the previous
// termination, the restart back-off and its probes. The pod runtime decides when to start
// or restart it; this class knows how, and what its status is.
import path from 'node:path';
import type { Container, ContainerStatus, KubeClient, Pod } from '../../api/kube/index.js';
import { RestartBackoff } from './backoff.js';
import { parseMemoryQuantity, type PodCgroup } from './cgroups.js';
import { containerFieldPath, type EventSink, type EventType } from './events.js';
import { ImageNotInCatalogError, lookupImage } from './catalog.js';
import { ContainerConfigError, ObjectSource, containerEnv, expandVars } from './env.js';
import { launchArgv, type Mount } from './launcher.js';
import { CapabilityError, containerPrivileges, type Privileges } from './capabilities.js';
import { ContainerProcess, type ExitInfo } from './process.js';
import { Prober, type ProbeKind, type ProbeTarget } from './probes.js';

export type ContainerRole = 'init' | 'sidecar' | 'app';

type State = NonNullable<ContainerStatus['state']>;

export interface ContainerContext {
  pod: Pod;
  client: KubeClient;
  podDir: string;
  netns?: string;
  podIP: string;
  hostIP: string;
  mounts: (c: Container) => Mount[];
  imageCatalogs: string[];
  /** The pod's cgroup when memory limits are enforced on this machine. */
  cgroup?: PodCgroup;
  events?: EventSink;
  onChange: () => void; // the container exited or a probe result changed: sync the pod
}

function terminatedState(e: ExitInfo): State {
  const reason = e.reason ?? (e.exitCode === 0 ? 'Completed' : 'Error');
  return { terminated: { exitCode: e.exitCode, reason, startedAt: e.startedAt, finishedAt: e.finishedAt } };
}

/** The container's privileges; an unknown capability is a container config error. */
function privilegesOf(pod: Pod, c: Container, where: string): Privileges {
  try {
    return containerPrivileges(pod, c, where);
  } catch (e) {
    if (e instanceof CapabilityError) throw new ContainerConfigError(e.message);
    throw e;
  }
}

export class ContainerRun {
  proc?: ContainerProcess;
  restartCount = 0;
  lastState?: State;
  nextStartAt = 0;
  /** Why it cannot start (bad image, missing ConfigMap...), reported as its waiting reason. */
  startError?: { reason: string; message: string };
  /** Set when the kubelet killed it (failed liveness/startup probe), for the log. */
  killedBy?: ProbeKind;
  private readonly backoff = new RestartBackoff();
  private probers: Prober[] = [];
  private startupDone = false;
  private readyNow = false;
  private readyEver = false;
  uid = 0;
  gid = 0;
  /** User, capabilities and no_new_privs, set when the container starts (a bad field is a config error). */
  privileges?: Privileges;
  /** The container's cgroup.procs, where cgroups are on (exec probes and hooks join it). */
  cgroupProcs?: string;
  env: Record<string, string> = {};

  constructor(readonly spec: Container, readonly role: ContainerRole, private readonly ctx: ContainerContext) {
    const sc = spec.securityContext ?? {};
    const psc = ctx.pod.spec.securityContext ?? {};
    this.uid = sc.runAsUser ?? psc.runAsUser ?? 0;
    this.gid = sc.runAsGroup ?? psc.runAsGroup ?? 0;
  }

  get name(): string { return this.spec.name; }
  get running(): boolean { return !!this.proc?.running; }
  get everStarted(): boolean { return !!this.proc; }
  get exit(): ExitInfo | undefined { return this.proc?.exit; }
  /** An init container that ran to success. */
  get succeeded(): boolean { return this.proc?.exit?.exitCode === 0; }

  /** started: the startup probe passed (or there is none) while running. */
  get started(): boolean { return this.running && this.startupDone; }

  get ready(): boolean {
    if (!this.running || !this.startupDone) return false;
    return this.spec.readinessProbe ? this.readyNow : true;
  }

  /** A sidecar lets the next container start once started and (if probed) ready once. */
  get sidecarStarted(): boolean {
    if (!this.started) return false;
    return this.spec.readinessProbe ? this.readyEver : true;
  }

  /** Builds the program, environment and mounts, then spawns. Errors become startError. */
  async start(): Promise<boolean> {
    const { pod } = this.ctx;
    const where = `pod ${pod.metadata.namespace}/${pod.metadata.name} container ${this.name}`;
    let argv: string[];
    let mounts: Mount[];
    let cgroupProcs: string | undefined;
    try {
      this.env = await containerEnv(pod, this.spec, { podIP: this.ctx.podIP, hostIP: this.ctx.hostIP },
        new ObjectSource(this.ctx.client, pod.metadata.namespace ?? 'default'), this.uid === 0 ? '/root' : '/');
      argv = this.program(where);
      mounts = this.ctx.mounts(this.spec);
      this.privileges = privilegesOf(pod, this.spec, where);
      cgroupProcs = this.prepareCgroup(where);
      this.cgroupProcs = cgroupProcs;
    } catch (e) {
      if (e instanceof ImageNotInCatalogError || e instanceof ContainerConfigError) {
        this.startError = { reason: e.reason, message: e.message };
        this.event('Warning', 'Failed', `Error: ${e.reason}: ${e.message}`);
        return false;
      }
      throw e;
    }
    this.startError = undefined;
    if (this.proc) {
      this.lastState = terminatedState(this.proc.exit as ExitInfo);
      this.restartCount++;
    }
    const { file, args } = launchArgv({
      netns: this.ctx.netns, mounts, privileges: this.privileges, workingDir: this.spec.workingDir, argv, cgroupProcs,
    });
    const log = path.join(this.ctx.podDir, this.name, `${this.restartCount}.log`);
    this.startupDone = !this.spec.startupProbe;
    this.readyNow = false;
    this.readyEver = false;
    this.killedBy = undefined;
    const proc = new ContainerProcess(file, args, this.env, log, (e) => {
      if (this.ctx.cgroup?.oomKilled(this.name)) e.reason = 'OOMKilled';
      this.stopProbes();
      this.ctx.onChange();
    });
    this.proc = proc;
    if (this.spec.image) this.event('Normal', 'Pulled', `Container image "${this.spec.image}" already present on machine`);
    this.event('Normal', 'Created', `Created container ${this.name}`);
    this.event('Normal', 'Started', `Started container ${this.name}`);
    if (proc.running && this.role !== 'init') this.startProbes(where);
    return true;
  }

  /** The container's cgroup with resources.limits.memory; undefined where cgroups are off. */
  private prepareCgroup(where: string): string | undefined {
    const cg = this.ctx.cgroup;
    if (!cg) return undefined;
    const limit = this.spec.resources?.limits?.memory;
    let bytes: number | undefined;
    try {
      bytes = limit === undefined ? undefined : parseMemoryQuantity(limit, `${where}: resources.limits.memory`);
    } catch (e) {
      throw new ContainerConfigError((e as Error).message);
    }
    try {
      return cg.prepareContainer(this.name, bytes);
    } catch (e) {
      throw new ContainerConfigError(`${where}: cgroup: ${(e as Error).message}`);
    }
  }

  /** An event about this container (no-op without a recorder). */
  event(type: EventType, reason: string, message: string): void {
    this.ctx.events?.record(this.ctx.pod, type, reason, message, containerFieldPath(this.ctx.pod, this.name));
  }

  private program(where: string): string[] {
    let command = this.spec.command ?? [];
    let args = this.spec.args;
    if (command.length === 0) {
      if (!this.spec.image) throw new ContainerConfigError(`${where}: neither command nor image is set`);
      const entry = lookupImage(this.spec.image, this.ctx.imageCatalogs);
      command = entry.command;
      args = args ?? entry.args;
    }
    const argv = [...command, ...(args ?? [])].map((s) => expandVars(s, this.env));
    if (argv.length === 0) throw new ContainerConfigError(`${where}: image catalog entry for "${this.spec.image}" has no command`);
    return argv;
  }

  /** Where exec probes and hooks run: inside this container (see execArgv). */
  probeTarget(): ProbeTarget {
    return {
      podIP: this.ctx.podIP, pid: () => this.proc?.pid ?? -1, env: this.env, cgroupProcs: this.cgroupProcs,
      privileges: this.privileges ?? { uid: this.uid, gid: this.gid, capabilities: [], noNewPrivs: true },
    };
  }

  private startProbes(where: string): void {
    const target = this.probeTarget();
    const mk = (kind: ProbeKind): Prober | undefined => {
      const probe = kind === 'startup' ? this.spec.startupProbe : kind === 'readiness' ? this.spec.readinessProbe : this.spec.livenessProbe;
      if (!probe) return undefined;
      const title = `${kind[0].toUpperCase()}${kind.slice(1)}`;
      return new Prober(kind, this.spec, probe, target, `${where}.${kind}Probe`, (k, ok) => this.onProbe(k, ok),
        (_k, message) => this.event('Warning', 'Unhealthy', `${title} probe failed: ${message}`));
    };
    const startup = mk('startup');
    const rest = [mk('readiness'), mk('liveness')].filter((p): p is Prober => !!p);
    this.probers = startup ? [startup] : rest;
    // Readiness and liveness begin only after the startup probe succeeded.
    if (startup) this.pendingProbers = rest;
    for (const p of this.probers) p.start();
  }

  private pendingProbers: Prober[] = [];

  private onProbe(kind: ProbeKind, ok: boolean): void {
    if (!this.running) return;
    if (kind === 'startup' && ok) {
      this.startupDone = true;
      for (const p of this.pendingProbers) { this.probers.push(p); p.start(); }
      this.pendingProbers = [];
    } else if (kind === 'readiness') {
      this.readyNow = ok;
      if (ok) this.readyEver = true;
    } else if (!ok) {
      // Failed liveness or startup: kill; the exit makes the pod sync restart it per policy.
      this.killedBy = kind;
      this.event('Normal', 'Killing', `Container ${this.name} failed ${kind} probe, will be restarted`);
      console.error(`kubelet: pod ${this.ctx.pod.metadata.namespace}/${this.ctx.pod.metadata.name} container ${this.name} failed its ${kind} probe, killing it`);
      void this.proc?.stop((this.ctx.pod.spec.terminationGracePeriodSeconds ?? 30) * 1000);
    }
    this.ctx.onChange();
  }

  stopProbes(): void {
    for (const p of [...this.probers, ...this.pendingProbers]) p.stop();
    this.probers = [];
    this.pendingProbers = [];
  }

  private backoffFor?: ExitInfo;

  /** The delay before this exited container may start again; back-off advances once per exit. */
  restartDelay(): number {
    const e = this.proc?.exit;
    if (!e) return 0;
    if (this.backoffFor !== e) {
      this.backoffFor = e;
      const ranFor = Date.parse(e.finishedAt) - (this.proc?.startedMs ?? 0);
      const delay = this.backoff.onExit(ranFor);
      this.nextStartAt = Date.now() + delay;
      if (delay > 0) {
        const pod = this.ctx.pod.metadata;
        this.event('Warning', 'BackOff', `Back-off restarting failed container ${this.name} in pod ${pod.name}_${pod.namespace}(${pod.uid})`);
      }
    }
    return Math.max(0, this.nextStartAt - Date.now());
  }

  async stop(graceMs: number): Promise<void> {
    this.stopProbes();
    if (this.proc) await this.proc.stop(graceMs);
  }

  status(opts: { waitingReason: string; waitingMessage?: string; restartPending: boolean }): ContainerStatus {
    let state: State;
    let lastState = this.lastState;
    if (this.proc?.running) {
      state = { running: { startedAt: this.proc.startedAt } };
    } else if (this.proc?.exit) {
      if (opts.restartPending) {
        lastState = terminatedState(this.proc.exit);
        state = this.startError
          ? { waiting: { reason: this.startError.reason, message: this.startError.message } }
          : { waiting: { reason: 'CrashLoopBackOff', message: `back-off restarting failed container ${this.name} in pod ${this.ctx.pod.metadata.name}` } };
      } else {
        state = terminatedState(this.proc.exit);
      }
    } else if (this.startError) {
      state = { waiting: { reason: this.startError.reason, message: this.startError.message } };
    } else {
      state = { waiting: opts.waitingMessage ? { reason: opts.waitingReason, message: opts.waitingMessage } : { reason: opts.waitingReason } };
    }
    const s: ContainerStatus = {
      name: this.name,
      state,
      lastState: lastState ?? {},
      ready: this.ready,
      restartCount: this.restartCount,
      image: this.spec.image ?? '',
      imageID: '',
      started: this.started,
    };
    return s;
  }
}
