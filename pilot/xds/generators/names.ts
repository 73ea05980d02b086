// Istio's xDS resource names.

export const VIRTUAL_OUTBOUND = 'virtualOutbound';
export const VIRTUAL_INBOUND = 'virtualInbound';
export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';
export const INBOUND_PASSTHROUGH_CLUSTER = 'InboundPassthroughCluster';
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';
export const OUTBOUND_CAPTURE_PORT = 15001;
export const INBOUND_CAPTURE_PORT = 15006;

/** `outbound|<port>|<subset>|<fqdn>`; the subset is empty for the whole service. */
export function outboundClusterName(port: number, subset: string, fqdn: string): string {
  return `outbound|${port}|${subset}|${fqdn}`;
}

export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}

export function outboundListenerName(port: number): string {
  return `0.0.0.0_${port}`;
}

/** Outbound HTTP route configurations are named by port. */
export function routeConfigName(port: number): string {
  return String(port);
}

export function parseOutboundClusterName(name: string): { port: number; subset: string; fqdn: string } | undefined {
  const parts = name.split('|');
  if (parts.length !== 4 || parts[0] !== 'outbound') return undefined;
  const port = Number(parts[1]);
  if (!Number.isInteger(port)) return undefined;
  return { port, subset: parts[2], fqdn: parts[3] };
}
