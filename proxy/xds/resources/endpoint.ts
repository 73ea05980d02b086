// ClusterLoadAssignment: decode and validate into a flat list of healthy endpoints.
import { arr, FieldErrors, num, obj, str, socketAddress, wrapped, type HostPort, type Obj } from './fields.js';

export interface Endpoint extends HostPort {
  weight: number;
  /** filterMetadata["envoy.transport_socket_match"]: picks the cluster's transportSocketMatches entry. */
  transportMatch?: Record<string, string>;
}

/** A google.protobuf.Struct of strings, in either decoded form ({ fields: { k: { stringValue } } } or plain). */
export function stringStruct(v: unknown): Record<string, string> | undefined {
  const o = obj(v);
  if (!o) return undefined;
  const fields = obj(o.fields);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(fields ?? o)) {
    const s = typeof val === 'string' ? val : str(obj(val)?.stringValue);
    if (s !== undefined) out[k] = s;
  }
  return out;
}

/** One LocalityLbEndpoints: its priority, locality weight and hosts. */
export interface LocalityGroup {
  priority: number;
  /** load_balancing_weight of the locality; undefined when unset. */
  weight?: number;
  /** Routable hosts (health UNKNOWN/HEALTHY). */
  hosts: Endpoint[];
  /** All hosts the group lists, routable or not (the base of its healthy share). */
  total: number;
}

export interface LoadAssignment {
  clusterName: string;
  endpoints: Endpoint[];
  /** Present when priorities or locality weights matter (more than one priority, or weights). */
  groups?: LocalityGroup[];
  /** policy.overprovisioning_factor / 100 (Envoy's default 140 -> 1.4). */
  overprovisioning: number;
}

// Envoy routes only to hosts whose health status is UNKNOWN or HEALTHY.
const ROUTABLE = new Set([undefined, 'UNKNOWN', 'HEALTHY']);

/** Shared by EDS and the inline loadAssignment of STATIC clusters. */
export function compileLoadAssignment(raw: Obj, errors: FieldErrors, prefix = ''): Endpoint[] {
  return compileGroups(raw, errors, prefix).flatMap((g) => g.hosts);
}

export function compileGroups(raw: Obj, errors: FieldErrors, prefix = ''): LocalityGroup[] {
  const groups: LocalityGroup[] = [];
  arr(raw.endpoints).forEach((l, li) => {
    const lo = obj(l) ?? {};
    const priority = num(lo.priority) ?? 0;
    if (!Number.isInteger(priority) || priority < 0) errors.add(`${prefix}endpoints[${li}].priority`, `${String(lo.priority)} is not a non-negative integer`);
    const lw = num(wrapped(lo.loadBalancingWeight));
    if (lw !== undefined && (!Number.isInteger(lw) || lw < 1)) errors.add(`${prefix}endpoints[${li}].loadBalancingWeight`, `${String(lw)} must be a positive integer`);
    const endpoints: Endpoint[] = [];
    const lbEndpoints = arr(lo.lbEndpoints);
    groups.push({ priority, weight: lw, hosts: endpoints, total: lbEndpoints.length });
    lbEndpoints.forEach((e, ei) => {
      const lb = obj(e) ?? {};
      const field = `${prefix}endpoints[${li}].lbEndpoints[${ei}]`;
      const ep = obj(lb.endpoint);
      if (!ep) {
        errors.add(`${field}.endpoint`, 'required');
        return;
      }
      const addr = socketAddress(ep.address, `${field}.endpoint.address`, errors, true);
      if (!addr) return;
      if (addr.port === 0) {
        errors.add(`${field}.endpoint.address.socketAddress.portValue`, 'must not be 0');
        return;
      }
      if (!ROUTABLE.has(str(lb.healthStatus))) return;
      const transportMatch = stringStruct(obj(obj(lb.metadata)?.filterMetadata)?.['envoy.transport_socket_match']);
      endpoints.push({ ...addr, weight: num(wrapped(lb.loadBalancingWeight)) ?? 1, ...(transportMatch ? { transportMatch } : {}) });
    });
  });
  return groups;
}

export function decodeLoadAssignment(raw: Obj): { name: string; value?: LoadAssignment; errors: string[] } {
  const name = str(raw.clusterName) ?? '';
  const errors = new FieldErrors(`ClusterLoadAssignment "${name}"`);
  if (!name) errors.add('clusterName', 'required');
  const groups = compileGroups(raw, errors);
  const endpoints = groups.flatMap((g) => g.hosts);
  const factor = num(wrapped(obj(raw.policy)?.overprovisioningFactor)) ?? 140;
  if (!Number.isFinite(factor) || factor <= 0) errors.add('policy.overprovisioningFactor', 'must be positive');
  // Priorities and locality weights only matter when there is more than one priority or a weight.
  const layered = new Set(groups.map((g) => g.priority)).size > 1 || groups.some((g) => g.weight !== undefined);
  const value: LoadAssignment = { clusterName: name, endpoints, groups: layered ? groups : undefined, overprovisioning: factor / 100 };
  return errors.ok ? { name, value, errors: [] } : { name, errors: errors.list };
}
