// ClusterLoadAssignment: decode and validate into a flat list of healthy endpoints.
import { arr, FieldErrors, num, obj, str, socketAddress, wrapped, type HostPort, type Obj } from './fields.js';

export interface Endpoint extends HostPort {
  weight: number;
}

export interface LoadAssignment {
  clusterName: string;
  endpoints: Endpoint[];
}

// Envoy routes only to hosts whose health status is UNKNOWN or HEALTHY.
const ROUTABLE = new Set([undefined, 'UNKNOWN', 'HEALTHY']);

/** Shared by EDS and the inline loadAssignment of STATIC clusters. */
export function compileLoadAssignment(raw: Obj, errors: FieldErrors, prefix = ''): Endpoint[] {
  const endpoints: Endpoint[] = [];
  arr(raw.endpoints).forEach((l, li) => {
    arr(obj(l)?.lbEndpoints).forEach((e, ei) => {
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
      endpoints.push({ ...addr, weight: num(wrapped(lb.loadBalancingWeight)) ?? 1 });
    });
  });
  return endpoints;
}

export function decodeLoadAssignment(raw: Obj): { name: string; value?: LoadAssignment; errors: string[] } {
  const name = str(raw.clusterName) ?? '';
  const errors = new FieldErrors(`ClusterLoadAssignment "${name}"`);
  if (!name) errors.add('clusterName', 'required');
  const endpoints = compileLoadAssignment(raw, errors);
  return errors.ok ? { name, value: { clusterName: name, endpoints }, errors: [] } : { name, errors: errors.list };
}
