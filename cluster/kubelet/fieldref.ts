// Downward API field paths, shared by env valueFrom.fieldRef and downwardAPI volumes.
import type { Pod } from '../../api/kube/index.js';

export interface PodAddresses { podIP?: string; hostIP?: string }

/** The value of a fieldRef.fieldPath, or an error naming the unsupported path. */
export function resolveFieldPath(pod: Pod, fieldPath: string, addr: PodAddresses): string {
  const m = /^metadata\.(labels|annotations)\['(.*)'\]$/.exec(fieldPath);
  if (m) return (m[1] === 'labels' ? pod.metadata.labels : pod.metadata.annotations)?.[m[2]] ?? '';
  switch (fieldPath) {
    case 'metadata.name': return pod.metadata.name ?? '';
    case 'metadata.namespace': return pod.metadata.namespace ?? '';
    case 'metadata.uid': return pod.metadata.uid ?? '';
    case 'metadata.labels': return formatMap(pod.metadata.labels);
    case 'metadata.annotations': return formatMap(pod.metadata.annotations);
    case 'spec.nodeName': return pod.spec.nodeName ?? '';
    case 'spec.serviceAccountName': return pod.spec.serviceAccountName ?? 'default';
    case 'status.podIP': return addr.podIP ?? '';
    case 'status.podIPs': return addr.podIP ?? '';
    case 'status.hostIP': return addr.hostIP ?? '';
    case 'status.hostIPs': return addr.hostIP ?? '';
    default: throw new Error(`fieldRef.fieldPath "${fieldPath}" is not supported`);
  }
}

/** The downward API file format for label/annotation maps: key="value" lines, sorted. */
function formatMap(m: Record<string, string> | undefined): string {
  return Object.keys(m ?? {}).sort().map((k) => `${k}=${JSON.stringify((m ?? {})[k])}`).join('\n');
}
