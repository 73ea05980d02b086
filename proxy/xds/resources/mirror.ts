// RouteAction.request_mirror_policies: shadow a share of a route's requests to other clusters.
import { arr, FieldErrors, obj, str } from './fields.js';
import { fractionalPercent } from './fault.js';

export interface MirrorPolicy {
  cluster: string;
  /** Probability in [0, 1]; Envoy mirrors everything when runtime_fraction is unset. */
  fraction: number;
}

export function decodeMirrorPolicies(v: unknown, field: string, errors: FieldErrors): MirrorPolicy[] {
  const out: MirrorPolicy[] = [];
  arr(v).forEach((m, i) => {
    const p = obj(m) ?? {};
    const f = `${field}[${i}]`;
    const cluster = str(p.cluster);
    if (!cluster) {
      errors.add(`${f}.cluster`, 'required');
      return;
    }
    const rf = obj(p.runtimeFraction);
    const fraction = rf ? fractionalPercent(rf.defaultValue, `${f}.runtimeFraction.defaultValue`, errors) : 1;
    out.push({ cluster, fraction });
  });
  return out;
}
