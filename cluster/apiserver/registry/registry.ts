// The table of served kinds, mutable at runtime because CRDs add and remove entries.
import type { KindInfo } from './types.js';

export class Registry {
  private byGVR = new Map<string, KindInfo>();
  private kinds: KindInfo[] = [];

  constructor(builtins: KindInfo[]) {
    for (const k of builtins) this.add(k);
  }

  add(k: KindInfo): void {
    this.remove(k.group, k.resource);
    this.kinds.push(k);
    for (const v of k.versions) this.byGVR.set(gvrKey(k.group, v, k.resource), k);
  }

  remove(group: string, resource: string): void {
    const old = this.kinds.find((k) => k.group === group && k.resource === resource);
    if (!old) return;
    this.kinds = this.kinds.filter((k) => k !== old);
    for (const v of old.versions) this.byGVR.delete(gvrKey(group, v, resource));
  }

  lookup(group: string, version: string, resource: string): KindInfo | undefined {
    return this.byGVR.get(gvrKey(group, version, resource));
  }

  find(group: string, resource: string): KindInfo | undefined {
    return this.kinds.find((k) => k.group === group && k.resource === resource);
  }

  all(): KindInfo[] {
    return [...this.kinds];
  }

  /** Groups with their versions, in registration order (core group first if present). */
  groups(): { group: string; versions: string[] }[] {
    const out: { group: string; versions: string[] }[] = [];
    for (const k of this.kinds) {
      let g = out.find((x) => x.group === k.group);
      if (!g) { g = { group: k.group, versions: [] }; out.push(g); }
      for (const v of k.versions) if (!g.versions.includes(v)) g.versions.push(v);
    }
    for (const g of out) g.versions.sort(compareKubeVersions);
    return out;
  }

  kindsIn(group: string, version: string): KindInfo[] {
    return this.kinds.filter((k) => k.group === group && k.versions.includes(version));
  }
}

function gvrKey(g: string, v: string, r: string): string {
  return `${g}/${v}/${r}`;
}

/** Kubernetes version priority: GA > beta > alpha, higher numbers first (v1 > v1beta1 > v1alpha1). */
export function compareKubeVersions(a: string, b: string): number {
  const rank = (v: string): [number, number, number] => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return [0, 0, 0];
    const stage = m[2] === undefined ? 3 : m[2] === 'beta' ? 2 : 1;
    return [stage, Number(m[1]), Number(m[3] ?? 0)];
  };
  const ra = rank(a);
  const rb = rank(b);
  for (let i = 0; i < 3; i++) if (ra[i] !== rb[i]) return rb[i] - ra[i];
  return a < b ? -1 : a > b ? 1 : 0;
}
