// batch/v1 Job, apps/v1 StatefulSet and DaemonSet: the resources and the (partial) types the
// workload controllers use.
import { R, type KubeObject, type LabelSelector, type PodTemplateSpec } from '../../api/kube/index.js';

export const WR = { jobs: R.jobs, statefulSets: R.statefulSets, daemonSets: R.daemonSets } as const;

export interface WorkloadCondition {
  type: string; status: 'True' | 'False' | 'Unknown'; reason?: string; message?: string;
  lastProbeTime?: string; lastTransitionTime?: string;
}

export interface Job extends KubeObject {
  spec: {
    parallelism?: number;
    completions?: number | null;
    backoffLimit?: number;
    activeDeadlineSeconds?: number;
    selector?: LabelSelector;
    manualSelector?: boolean;
    suspend?: boolean;
    template: PodTemplateSpec;
  };
  status?: {
    active?: number; succeeded?: number; failed?: number; ready?: number;
    startTime?: string; completionTime?: string; conditions?: WorkloadCondition[];
  };
}

export interface StatefulSet extends KubeObject {
  spec: {
    replicas?: number;
    selector: LabelSelector;
    serviceName?: string;
    template: PodTemplateSpec;
    podManagementPolicy?: 'OrderedReady' | 'Parallel';
    updateStrategy?: { type?: 'RollingUpdate' | 'OnDelete' };
    minReadySeconds?: number;
  };
  status?: {
    observedGeneration?: number; replicas?: number; readyReplicas?: number; currentReplicas?: number;
    updatedReplicas?: number; availableReplicas?: number; currentRevision?: string; updateRevision?: string;
  };
}

export interface DaemonSet extends KubeObject {
  spec: {
    selector: LabelSelector;
    template: PodTemplateSpec;
    updateStrategy?: { type?: 'RollingUpdate' | 'OnDelete'; rollingUpdate?: { maxUnavailable?: number | string } };
    minReadySeconds?: number;
  };
  status?: {
    observedGeneration?: number; desiredNumberScheduled?: number; currentNumberScheduled?: number;
    numberMisscheduled?: number; numberReady?: number; numberAvailable?: number; numberUnavailable?: number;
    updatedNumberScheduled?: number;
  };
}
