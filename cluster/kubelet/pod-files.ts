// The per-pod /etc/resolv.conf and /etc/hosts, bind-mounted into every container.
import type { Pod } from '../../api/kube/index.js';

export function resolvConf(namespace: string, clusterDomain: string, clusterDNS: string): string {
  return [
    `search ${namespace}.svc.${clusterDomain} svc.${clusterDomain} ${clusterDomain}`,
    `nameserver ${clusterDNS}`,
    'options ndots:5',
    '',
  ].join('\n');
}

export function hostsFile(pod: Pod, podIP: string): string {
  const name = pod.metadata.name ?? '';
  const lines = [
    '# Kubernetes-managed hosts file.',
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'fe00::0\tip6-mcastprefix',
    'fe00::1\tip6-allnodes',
    'fe00::2\tip6-allrouters',
  ];
  const spec = pod.spec as { hostname?: string; subdomain?: string; hostAliases?: { ip: string; hostnames: string[] }[] };
  const host = spec.hostname ?? name;
  lines.push(`${podIP}\t${host}`);
  for (const a of spec.hostAliases ?? []) lines.push(`${a.ip}\t${a.hostnames.join('\t')}`);
  return lines.join('\n') + '\n';
}

/** Whether the pod uses the cluster DNS (host-network pods keep the host's unless asked). */
export function usesClusterDNS(pod: Pod): boolean {
  const policy = pod.spec.dnsPolicy ?? 'ClusterFirst';
  if (policy === 'Default' || policy === 'None') return false;
  if (pod.spec.hostNetwork) return policy === 'ClusterFirstWithHostNet';
  return true;
}
