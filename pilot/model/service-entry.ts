// ServiceEntries folded into the service registry: one service per host, with the entry's
// ports (Istio port protocols), its first address as the "cluster IP", and endpoints by
// resolution: STATIC lists the entry's endpoints (served by EDS), DNS resolves the
// endpoints' names (or the host itself) in the proxy (STRICT_DNS), NONE forwards to the
// address the client connected to (ORIGINAL_DST).
import type { ServiceEntry } from '../../api/istio/index.js';
import { byAge } from './istio-config.js';
import { portProtocol, type EndpointModel, type ServiceModel, type ServicePortModel } from './service.js';

export function serviceEntryModels(entries: readonly ServiceEntry[], warn: (m: string) => void): ServiceModel[] {
  const out: ServiceModel[] = [];
  for (const se of [...entries].sort(byAge)) {
    const namespace = se.metadata.namespace ?? 'default';
    const id = `ServiceEntry ${namespace}/${se.metadata.name}`;
    const spec = se.spec ?? {};
    const resolution = spec.resolution === 'DNS_ROUND_ROBIN' ? 'DNS' : spec.resolution ?? 'NONE';
    if (resolution !== 'NONE' && resolution !== 'STATIC' && resolution !== 'DNS') { warn(`${id}: spec.resolution '${String(spec.resolution)}' is not supported; entry ignored`); continue; }
    const ports: ServicePortModel[] = [];
    (spec.ports ?? []).forEach((p, i) => {
      if (!Number.isInteger(p?.number) || p.number <= 0 || p.number > 65535) { warn(`${id}: spec.ports[${i}].number is not a port; port ignored`); return; }
      // Istio's port protocol is a field of its own; the name is only a fallback.
      ports.push({ name: p.name, port: p.number, targetPort: p.targetPort, protocol: 'TCP', appProtocol: portProtocol(p.name, p.protocol, 'TCP') });
    });
    if (!ports.length) { warn(`${id}: spec.ports is empty; entry ignored`); continue; }
    const hosts = spec.hosts ?? [];
    if (!hosts.length) { warn(`${id}: spec.hosts is empty; entry ignored`); continue; }
    if (resolution === 'STATIC' && !(spec.endpoints ?? []).length) warn(`${id}: resolution STATIC without spec.endpoints: requests fail with 503`);
    hosts.forEach((host, i) => {
      if (host.includes('*') && resolution !== 'NONE') { warn(`${id}: spec.hosts[${i}] '${host}' is a wildcard, which needs resolution NONE; host ignored`); return; }
      const endpoints = new Map<number, EndpointModel[]>();
      // DNS without endpoints: the proxy resolves the host itself.
      const listed = resolution === 'DNS' && !(spec.endpoints ?? []).length ? [{ address: host }] : spec.endpoints ?? [];
      for (const sp of ports) {
        endpoints.set(sp.port, listed.filter((e) => e.address).map((e: { address?: string; ports?: Record<string, number>; labels?: Record<string, string> }) => ({
          address: e.address as string,
          port: (sp.name ? e.ports?.[sp.name] : undefined) ?? (typeof sp.targetPort === 'number' ? sp.targetPort : sp.port),
          labels: e.labels ?? {}, namespace,
        })));
      }
      out.push({
        name: host, namespace, fqdn: host, clusterIP: spec.addresses?.[0], ports, endpoints,
        entry: { resolution, meshExternal: spec.location !== 'MESH_INTERNAL', exportTo: spec.exportTo },
      });
    });
  }
  return out;
}
