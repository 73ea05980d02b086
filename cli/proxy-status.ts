// `trellis proxy-status`: every proxy connected to pilot and, per xDS type, whether it has
// ACKed the latest push, is still waiting, or NACKed it (with the proxy's reason), read
// from pilot's /debug/syncz as `istioctl proxy-status` reads istiod's.
import { KubeClient, R, type Pod } from '../api/kube/index.js';
import { stringFlag, type ParsedArgs } from './args.js';
import { MESH_NAMESPACE } from './mesh.js';

interface TypeStatus { type: string; status: 'PENDING' | 'SENT' | 'ACKED' | 'NACKED'; sentVersion?: string; ackedVersion?: string; lastNack?: { message: string } }
interface ProxyStatus { nodeId?: string; pod?: string; types: Record<string, TypeStatus> }

const COLUMNS: [string, string][] = [['CDS', 'Cluster'], ['LDS', 'Listener'], ['EDS', 'ClusterLoadAssignment'], ['RDS', 'RouteConfiguration']];

export function kubeconfigFlag(args: ParsedArgs): string {
  return stringFlag(args, 'kubeconfig', process.env.KUBECONFIG ?? '.trellis/kubeconfig');
}

/** pilot's debug base URLs: the istiod pods' IPs, port 15014. */
export async function pilotDebugURLs(client: KubeClient): Promise<{ pod: string; url: string }[]> {
  const pods = await client.list<Pod>(R.pods, { namespace: MESH_NAMESPACE, labelSelector: 'app=istiod' });
  const running = pods.items.filter((p) => p.status?.podIP && p.status.phase === 'Running');
  if (!running.length) throw new Error(`no running pilot (pods with label app=istiod in ${MESH_NAMESPACE})`);
  return running.map((p) => ({ pod: p.metadata.name ?? '', url: `http://${p.status?.podIP}:15014` }));
}

/** One cell: SYNCED, NOT SENT, STALE (sent, not yet ACKed) or NACKED. */
export function syncState(t: TypeStatus | undefined): string {
  if (!t || t.status === 'PENDING') return 'NOT SENT';
  if (t.status === 'NACKED') return 'NACKED';
  if (t.status === 'ACKED' && t.ackedVersion === t.sentVersion) return 'SYNCED';
  return 'STALE';
}

export function formatProxyStatus(rows: { pilot: string; proxies: ProxyStatus[] }[]): string {
  const header = ['NAME', ...COLUMNS.map(([c]) => c), 'PILOT', 'VERSION'];
  const lines: string[][] = [header];
  const nacks: string[] = [];
  for (const { pilot, proxies } of rows) {
    for (const p of proxies) {
      const byShort = (suffix: string): TypeStatus | undefined => Object.values(p.types).find((t) => t.type.endsWith(`.${suffix}`));
      const name = p.pod ?? p.nodeId ?? '?';
      const cells = COLUMNS.map(([, suffix]) => syncState(byShort(suffix)));
      lines.push([name, ...cells, pilot, byShort('Listener')?.sentVersion ?? '-']);
      for (const [, suffix] of COLUMNS) {
        const t = byShort(suffix);
        if (t?.status === 'NACKED') nacks.push(`${name} rejected ${suffix}: ${t.lastNack?.message ?? '(no message)'}`);
      }
    }
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const table = lines.map((l) => l.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
  return nacks.length ? `${table}\n\n${nacks.join('\n')}` : table;
}

export async function proxyStatus(args: ParsedArgs): Promise<void> {
  const client = KubeClient.fromKubeconfig(kubeconfigFlag(args), 'trellis-cli');
  try {
    const rows = [];
    for (const { pod, url } of await pilotDebugURLs(client)) {
      const res = await fetch(`${url}/debug/syncz`);
      if (!res.ok) throw new Error(`${url}/debug/syncz answered ${res.status}`);
      rows.push({ pilot: pod, proxies: (await res.json()) as ProxyStatus[] });
    }
    console.log(formatProxyStatus(rows));
  } finally {
    await client.close();
  }
}
