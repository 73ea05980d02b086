// API discovery (/api, /apis): which resources the server serves, so the namespace
// controller can empty a namespace of every kind (custom resources included) and the
// garbage collector can look up owners of any kind.
import type { KubeClient, ResourceRef } from '../../api/kube/index.js';

export interface DiscoveredResource extends ResourceRef { verbs: string[] }

interface APIResource { name: string; namespaced: boolean; kind: string; verbs?: string[] }
interface APIResourceList { groupVersion: string; resources: APIResource[] }
interface APIGroupList { groups: { name: string; preferredVersion?: { groupVersion: string; version: string }; versions: { groupVersion: string; version: string }[] }[] }

function splitGroupVersion(gv: string): { group: string; version: string } {
  const i = gv.indexOf('/');
  return i < 0 ? { group: '', version: gv } : { group: gv.slice(0, i), version: gv.slice(i + 1) };
}

/** The resources of one group/version (subresources left out). */
export async function resourcesOf(client: KubeClient, groupVersion: string): Promise<DiscoveredResource[]> {
  const path = groupVersion.includes('/') ? `/apis/${groupVersion}` : `/api/${groupVersion}`;
  const list = await client.raw<APIResourceList>('GET', path);
  const { group, version } = splitGroupVersion(groupVersion);
  return (list.resources ?? []).filter((r) => !r.name.includes('/'))
    .map((r) => ({ group, version, resource: r.name, kind: r.kind, namespaced: r.namespaced, verbs: r.verbs ?? [] }));
}

/** Every resource at its group's preferred version. A group that fails discovery is skipped. */
export async function discoverResources(client: KubeClient): Promise<DiscoveredResource[]> {
  const out = await resourcesOf(client, 'v1');
  const groups = await client.raw<APIGroupList>('GET', '/apis');
  for (const g of groups.groups ?? []) {
    const gv = g.preferredVersion?.groupVersion ?? g.versions?.[0]?.groupVersion;
    if (!gv) continue;
    try { out.push(...await resourcesOf(client, gv)); } catch (e) {
      console.error(`discovery: ${gv}: ${(e as Error).message}`);
    }
  }
  return out;
}

/** apiVersion+kind -> resource, cached per apiVersion for a minute (CRDs come and go). */
export class KindResolver {
  private readonly cache = new Map<string, { at: number; resources: DiscoveredResource[] }>();
  constructor(private readonly client: KubeClient) {}

  async resolve(apiVersion: string, kind: string): Promise<DiscoveredResource | undefined> {
    let hit = this.cache.get(apiVersion);
    if (!hit || Date.now() - hit.at > 60_000 || !hit.resources.some((r) => r.kind === kind)) {
      try { hit = { at: Date.now(), resources: await resourcesOf(this.client, apiVersion) }; } catch { return undefined; }
      this.cache.set(apiVersion, hit);
    }
    return hit.resources.find((r) => r.kind === kind);
  }
}
