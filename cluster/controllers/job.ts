// Job controller (batch/v1, NonIndexed): runs pods until `completions` have succeeded,
// `parallelism` at a time; fails the Job when more than backoffLimit pods failed
// (BackoffLimitExceeded) or it ran longer than activeDeadlineSeconds (DeadlineExceeded).
// Level-triggered: handlers enqueue the Job key, sync(key) converges from the caches.
import {
  R, WorkQueue, isNotFound, keyOf,
  type Informer, type KubeClient, type Pod,
} from '../../api/kube/index.js';
import { quietConflicts } from './conflict.js';
import { referenceTo, type EventRecorder } from './events.js';
import { Expectations } from './expectations.js';
import { controllerKey, controllerRefOf, newControllerRef } from './owner.js';
import { isPodActive, isPodReady } from './pod-util.js';
import type { SharedInformers } from './shared-informers.js';
import { WR, type Job, type WorkloadCondition } from './workload-types.js';

export const JOB_NAME_LABEL = 'batch.kubernetes.io/job-name';
export const CONTROLLER_UID_LABEL = 'batch.kubernetes.io/controller-uid';
const DEFAULT_BACKOFF_LIMIT = 6;
const MAX_POD_BACKOFF_MS = 6 * 60_000;

export interface JobControllerOptions {
  /** Delay before replacing a failed pod, doubled per failure up to 6 min (Kubernetes: 10 s). */
  podFailureBackoffMs?: number;
}

export function jobFinished(job: Job): WorkloadCondition | undefined {
  return job.status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
}

export class JobController {
  private readonly jobInformer: Informer<Job>;
  private readonly podInformer: Informer<Pod>;
  private readonly queue: WorkQueue;
  private readonly expectations = new Expectations();
  /** When each Job's failure count last grew, for the back-off before replacing a failed pod. */
  private readonly lastFailure = new Map<string, { failures: number; at: number }>();
  private readonly backoffBaseMs: number;

  constructor(private readonly client: KubeClient, informers: SharedInformers, private readonly recorder?: EventRecorder, opts: JobControllerOptions = {}) {
    this.backoffBaseMs = opts.podFailureBackoffMs ?? 10_000;
    this.jobInformer = informers.for<Job>(WR.jobs);
    this.podInformer = informers.for<Pod>(R.pods);
    this.queue = new WorkQueue('job', quietConflicts((k) => this.sync(k), (k, ms) => this.queue.addAfter(k, ms)), 2);
    this.jobInformer.on({
      add: (j) => this.queue.add(keyOf(j)),
      update: (_o, j) => this.queue.add(keyOf(j)),
      delete: (j) => { this.expectations.forget(keyOf(j)); this.lastFailure.delete(keyOf(j)); },
    });
    this.podInformer.on({
      add: (p) => { const k = controllerKey(p, 'Job'); if (k) { this.expectations.creationObserved(k); this.queue.add(k); } },
      update: (_o, p) => { const k = controllerKey(p, 'Job'); if (k) this.queue.add(k); },
      delete: (p) => { const k = controllerKey(p, 'Job'); if (k) { this.expectations.deletionObserved(k, p.metadata.uid); this.queue.add(k); } },
    });
  }

  stop(): void { this.queue.stop(); }

  async sync(key: string): Promise<void> {
    const job = this.jobInformer.get(key);
    if (!job || job.metadata.deletionTimestamp) { this.expectations.forget(key); return; }
    const pods = this.podInformer.list().filter((p) => p.metadata.namespace === job.metadata.namespace && controllerRefOf(p)?.uid === job.metadata.uid);
    const active = pods.filter(isPodActive);
    const prev = job.status ?? {};
    const now = new Date();
    const status: NonNullable<Job['status']> = { ...prev, startTime: prev.startTime ?? now.toISOString() };
    // Terminal pods may be deleted by users; the counts never go back.
    status.succeeded = Math.max(prev.succeeded ?? 0, pods.filter((p) => p.status?.phase === 'Succeeded').length);
    status.failed = Math.max(prev.failed ?? 0, pods.filter((p) => p.status?.phase === 'Failed').length);
    // With OnFailure the kubelet restarts a failing container in place: restarts count as failures.
    const restarts = job.spec.template.spec.restartPolicy === 'OnFailure'
      ? active.reduce((n, p) => n + (p.status?.containerStatuses ?? []).reduce((m, c) => m + (c.restartCount ?? 0), 0), 0) : 0;

    // Events about the outcome wait for the status write: a stale cache must not report twice.
    const outcome: [type: 'Normal' | 'Warning', reason: string, message: string][] = [];
    if (!jobFinished(job)) {
      const failure = this.failureReason(job, status.failed + restarts, status.startTime as string, now);
      if (failure) {
        await this.deletePods(key, job, active);
        status.conditions = setCondition(status.conditions, { type: 'Failed', status: 'True', ...failure }, now);
        outcome.push(['Warning', failure.reason, failure.message]);
      } else if (this.isComplete(job, status.succeeded, active.length)) {
        status.conditions = setCondition(status.conditions, { type: 'Complete', status: 'True', reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods' }, now);
        status.completionTime = now.toISOString();
        outcome.push(['Normal', 'Completed', 'Job completed']);
      } else if (this.expectations.satisfied(key)) {
        const wait = this.backoffRemaining(key, status.failed + restarts, now.getTime());
        if (wait > 0 && active.length < (job.spec.parallelism ?? 1)) this.queue.addAfter(key, wait);
        else await this.manageActive(key, job, active, status.succeeded);
      }
      const deadline = job.spec.activeDeadlineSeconds;
      if (deadline !== undefined && !jobFinished({ ...job, status })) {
        this.queue.addAfter(key, Math.max(0, Date.parse(status.startTime as string) + deadline * 1000 - now.getTime()) + 50);
      }
    } else if (jobFinished(job)?.type === 'Failed' && active.length) {
      await this.deletePods(key, job, active);
    }
    const stillActive = jobFinished({ ...job, status }) ? [] : active;
    status.active = stillActive.length;
    status.ready = stillActive.filter(isPodReady).length;
    if (JSON.stringify(status) !== JSON.stringify(prev)) {
      try { await this.client.updateStatus(WR.jobs, { ...job, status }); } catch (e) {
        if (isNotFound(e)) return;
        throw e;
      }
      for (const [type, reason, message] of outcome) this.recorder?.event(referenceTo(job, WR.jobs), type, reason, message);
    }
  }

  /** Milliseconds left before a failed pod may be replaced (base * 2^(failures-1), capped). */
  private backoffRemaining(key: string, failures: number, now: number): number {
    if (failures <= 0) return 0;
    const last = this.lastFailure.get(key);
    if (!last || last.failures < failures) { this.lastFailure.set(key, { failures, at: now }); }
    const at = (this.lastFailure.get(key) as { at: number }).at;
    const delay = Math.min(MAX_POD_BACKOFF_MS, this.backoffBaseMs * 2 ** Math.min(failures - 1, 20));
    return Math.max(0, at + delay - now);
  }

  private failureReason(job: Job, failures: number, startTime: string, now: Date): { reason: string; message: string } | undefined {
    if (failures > (job.spec.backoffLimit ?? DEFAULT_BACKOFF_LIMIT)) {
      return { reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' };
    }
    const deadline = job.spec.activeDeadlineSeconds;
    if (deadline !== undefined && Date.parse(startTime) + deadline * 1000 <= now.getTime()) {
      return { reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' };
    }
    return undefined;
  }

  /** completions unset: done when one pod succeeded and none is left running (a work queue). */
  private isComplete(job: Job, succeeded: number, active: number): boolean {
    const completions = job.spec.completions;
    if (completions === undefined || completions === null) return succeeded > 0 && active === 0;
    return succeeded >= completions;
  }

  private async manageActive(key: string, job: Job, active: Pod[], succeeded: number): Promise<void> {
    const parallelism = job.spec.parallelism ?? 1;
    const completions = job.spec.completions;
    let want = parallelism;
    if (completions !== undefined && completions !== null) want = Math.min(parallelism, completions - succeeded);
    else if (succeeded > 0) want = 0; // a work-queue Job starts nothing after the first success
    if (job.spec.suspend) want = 0;
    if (active.length < want) {
      const n = want - active.length;
      this.expectations.expectCreations(key, n);
      const results = await Promise.allSettled(Array.from({ length: n }, () => this.createPod(job)));
      const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
      for (let i = 0; i < failed.length; i++) this.expectations.creationObserved(key);
      if (failed.length) throw failed[0].reason;
    } else if (active.length > want) {
      // Newest first: the oldest pods have done the most work.
      const victims = [...active].sort((a, b) => (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '')).slice(0, active.length - want);
      await this.deletePods(key, job, victims);
    }
  }

  private async createPod(job: Job): Promise<void> {
    const t = job.spec.template;
    const name = job.metadata.name as string;
    const uid = job.metadata.uid as string;
    const pod: Pod = {
      metadata: {
        generateName: `${name}-`,
        namespace: job.metadata.namespace,
        labels: { ...(t.metadata?.labels ?? {}), [JOB_NAME_LABEL]: name, 'job-name': name, [CONTROLLER_UID_LABEL]: uid, 'controller-uid': uid },
        annotations: t.metadata?.annotations ? { ...t.metadata.annotations } : undefined,
        ownerReferences: [newControllerRef(job, 'batch/v1', 'Job')],
      },
      spec: { ...structuredClone(t.spec), restartPolicy: t.spec.restartPolicy === 'OnFailure' ? 'OnFailure' : 'Never' },
    };
    try {
      const created = await this.client.create(R.pods, pod);
      this.recorder?.event(referenceTo(job, WR.jobs), 'Normal', 'SuccessfulCreate', `Created pod: ${created.metadata.name}`);
    } catch (e) {
      this.recorder?.event(referenceTo(job, WR.jobs), 'Warning', 'FailedCreate', `Error creating: ${(e as Error).message}`);
      throw e;
    }
  }

  private async deletePods(key: string, job: Job, pods: Pod[]): Promise<void> {
    if (!pods.length) return;
    this.expectations.expectDeletions(key, pods.map((p) => p.metadata.uid as string));
    await Promise.all(pods.map(async (p) => {
      try {
        await this.client.delete(R.pods, p.metadata.name as string, p.metadata.namespace);
        this.recorder?.event(referenceTo(job, WR.jobs), 'Normal', 'SuccessfulDelete', `Deleted pod: ${p.metadata.name}`);
      } catch (e) {
        this.expectations.deletionObserved(key, p.metadata.uid);
        if (!isNotFound(e)) throw e;
      }
    }));
  }
}

function setCondition(conds: WorkloadCondition[] | undefined, c: WorkloadCondition, now: Date): WorkloadCondition[] {
  const ts = now.toISOString();
  return [...(conds ?? []).filter((x) => x.type !== c.type), { ...c, lastProbeTime: ts, lastTransitionTime: ts }];
}
