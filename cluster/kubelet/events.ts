// The kubelet's event recorder: core/v1 Events about pods (Started, Killing, BackOff,
// Unhealthy...) posted through the API, as `kubectl describe pod` and `kubectl get events`
// read them. Like client-go's recorder it never blocks the caller, and it folds repeats of
// the same event (same object, reason and message) into one Event with a growing count.
import { randomBytes } from 'node:crypto';
import { R, isNotFound, type KubeClient, type KubeObject, type Pod } from '../../api/kube/index.js';

export type EventType = 'Normal' | 'Warning';

export interface CoreEvent extends KubeObject {
  involvedObject: { kind: string; apiVersion: string; namespace?: string; name?: string; uid?: string; fieldPath?: string };
  reason: string;
  message: string;
  type: EventType;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
  source: { component: string; host?: string };
  reportingComponent: string;
  reportingInstance: string;
}

/** What the pod runtime and containers call; a no-op sink is fine in tests. */
export interface EventSink {
  /** fieldPath names the container, e.g. `spec.containers{app}`. */
  record(pod: Pod, type: EventType, reason: string, message: string, fieldPath?: string): void;
}

/** Events of the same series within this window are folded into one (client-go uses 10 minutes). */
const SERIES_WINDOW_MS = 10 * 60_000;
const MAX_SERIES = 4096;
const MAX_PENDING = 1000;

interface Series { name: string; namespace: string; count: number; firstTimestamp: string; lastMs: number }

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Kubernetes caps event messages at 1 KiB. */
function clip(message: string): string {
  return message.length > 1024 ? `${message.slice(0, 1021)}...` : message;
}

export class EventRecorder implements EventSink {
  private readonly series = new Map<string, Series>();
  private chain: Promise<void> = Promise.resolve();
  private pending = 0;
  private warned = false;

  constructor(private readonly client: KubeClient, private readonly host: string, private readonly component = 'kubelet') {}

  record(pod: Pod, type: EventType, reason: string, message: string, fieldPath?: string): void {
    if (this.pending >= MAX_PENDING) return; // the apiserver is not keeping up: drop, never block
    this.pending++;
    // One at a time, in order: a repeat must see the series its first occurrence created.
    this.chain = this.chain.then(() => this.write(pod, type, reason, clip(message), fieldPath)).catch((e: unknown) => {
      if (!this.warned) console.error(`kubelet events: ${(e as Error).message}`);
      this.warned = true;
    }).finally(() => { this.pending--; });
  }

  /** Resolves when everything recorded so far was written (tests, shutdown). */
  flush(): Promise<void> {
    return this.chain;
  }

  private async write(pod: Pod, type: EventType, reason: string, message: string, fieldPath?: string): Promise<void> {
    const namespace = pod.metadata.namespace ?? 'default';
    const key = [pod.metadata.uid, fieldPath ?? '', type, reason, message].join('\u0000');
    const ts = now();
    const existing = this.series.get(key);
    if (existing && Date.now() - existing.lastMs < SERIES_WINDOW_MS) {
      existing.count++;
      existing.lastMs = Date.now();
      try {
        await this.client.patch(R.events, existing.name, existing.namespace, { count: existing.count, lastTimestamp: ts }, 'merge');
        return;
      } catch (e) {
        if (!isNotFound(e)) throw e;
        // Expired or deleted: start a new series below.
      }
    }
    const name = `${pod.metadata.name ?? 'pod'}.${randomBytes(8).toString('hex')}`;
    const event: CoreEvent = {
      metadata: { name, namespace },
      involvedObject: { kind: 'Pod', apiVersion: 'v1', namespace, name: pod.metadata.name, uid: pod.metadata.uid, ...(fieldPath ? { fieldPath } : {}) },
      reason, message, type, count: 1, firstTimestamp: ts, lastTimestamp: ts,
      source: { component: this.component, host: this.host },
      reportingComponent: this.component, reportingInstance: this.host,
    };
    await this.client.create(R.events, event);
    if (this.series.size >= MAX_SERIES) this.series.delete(this.series.keys().next().value as string);
    this.series.set(key, { name, namespace, count: 1, firstTimestamp: ts, lastMs: Date.now() });
  }
}

/** fieldPath of a container, as the kubelet writes it in events. */
export function containerFieldPath(pod: Pod, container: string): string {
  const init = (pod.spec.initContainers ?? []).some((c) => c.name === container);
  return `spec.${init ? 'initContainers' : 'containers'}{${container}}`;
}
