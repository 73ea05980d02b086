// Istio's traffic.sidecar.istio.io/* pod annotations, translated into istio-iptables flags
// for the init container. Values are checked here so a bad annotation rejects the pod at
// admission (as Istio does) instead of crash-looping its init container later.
import type { TemplateValues } from './template.js';

export const TRAFFIC_ANNOTATIONS = {
  includeOutboundIPRanges: 'traffic.sidecar.istio.io/includeOutboundIPRanges',
  excludeOutboundIPRanges: 'traffic.sidecar.istio.io/excludeOutboundIPRanges',
  includeInboundPorts: 'traffic.sidecar.istio.io/includeInboundPorts',
  excludeInboundPorts: 'traffic.sidecar.istio.io/excludeInboundPorts',
  excludeOutboundPorts: 'traffic.sidecar.istio.io/excludeOutboundPorts',
} as const;

export class InjectionError extends Error {}

const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/;

function splitList(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

function checkPorts(annotation: string, items: string[], allowStar: boolean): void {
  for (const p of items) {
    if (allowStar && p === '*') continue;
    if (!/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 65535) {
      throw new InjectionError(`metadata.annotations[${annotation}]: "${p}" is not a port (1-65535)`);
    }
  }
}

function checkCidrs(annotation: string, items: string[], allowStar: boolean): void {
  for (const c of items) {
    if (allowStar && c === '*') continue;
    const m = IPV4_CIDR.exec(c);
    const ok = m !== null && m.slice(1, 5).every((o) => Number(o) <= 255) && (m[5] === undefined || Number(m[5]) <= 32);
    if (!ok) throw new InjectionError(`metadata.annotations[${annotation}]: "${c}" is not an IPv4 CIDR`);
  }
}

function unique(items: string[]): string[] {
  return [...new Set(items)];
}

/** The args of the istio-init container for a pod with these annotations. */
export function iptablesArgs(annotations: Record<string, string>, values: TemplateValues): string[] {
  const a = TRAFFIC_ANNOTATIONS;
  let include = '*';
  let exclude = '';
  let inboundInclude = '*';
  let inboundExclude = [...values.inboundExcludePorts];
  let outboundExcludePorts: string[] = [];

  if (annotations[a.includeOutboundIPRanges] !== undefined) {
    const items = splitList(annotations[a.includeOutboundIPRanges]);
    checkCidrs(a.includeOutboundIPRanges, items, true);
    include = items.includes('*') ? '*' : items.join(',');
  }
  if (annotations[a.excludeOutboundIPRanges] !== undefined) {
    const items = splitList(annotations[a.excludeOutboundIPRanges]);
    checkCidrs(a.excludeOutboundIPRanges, items, false);
    exclude = unique(items).join(',');
  }
  if (annotations[a.includeInboundPorts] !== undefined) {
    const items = splitList(annotations[a.includeInboundPorts]);
    checkPorts(a.includeInboundPorts, items, true);
    inboundInclude = items.includes('*') ? '*' : unique(items).join(',');
  }
  if (annotations[a.excludeInboundPorts] !== undefined) {
    const items = splitList(annotations[a.excludeInboundPorts]);
    checkPorts(a.excludeInboundPorts, items, false);
    // Istio adds the user's ports to the proxy's own; they are never dropped.
    inboundExclude = unique([...inboundExclude, ...items]);
  }
  if (annotations[a.excludeOutboundPorts] !== undefined) {
    const items = splitList(annotations[a.excludeOutboundPorts]);
    checkPorts(a.excludeOutboundPorts, items, false);
    outboundExcludePorts = unique(items);
  }

  const args = [
    'istio-iptables',
    '-p', String(values.outboundCapturePort),
    '-z', String(values.inboundCapturePort),
    '-u', String(values.proxyUid),
    '-m', 'REDIRECT',
    '-i', include,
    '-x', exclude,
    '-b', inboundInclude,
    '-d', inboundExclude.join(','),
  ];
  if (outboundExcludePorts.length > 0) args.push('-o', outboundExcludePorts.join(','));
  // The init container checks that a connection is really redirected before the pod starts.
  args.push('--run-validation');
  return args;
}
