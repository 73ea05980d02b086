// Maps apiVersion + kind to the resource to call, from the server's discovery documents,
// as kubectl's RESTMapper does. Refreshed on a miss, since CRDs appear at run time.
import type { KubeClient } from './client.js';
import type { ResourceRef } from './resources.js';

interface APIResource { name: string; kind: string; namespaced: boolean }
interface APIResourceList { groupVersion: string; resources: APIResource[] }
interface APIGroupList { groups: { name: string; versions: { groupVersion: string }[] }[] }

export class RestMapper {
  private readonly byGVK = new Map<string, ResourceRef>();
  private loaded = false;

  constructor(private readonly client: KubeClient) {}

  async resourceFor(apiVersion: string, kind: string): Promise<ResourceRef> {
    const key = `${apiVersion}/${kind}`;
    if (!this.loaded || !this.byGVK.has(key)) await this.refresh();
    const found = this.byGVK.get(key);
    if (!found) throw new Error(`no resource is served for apiVersion ${apiVersion} kind ${kind} (is its CRD installed?)`);
    return found;
  }

  async refresh(): Promise<void> {
    const groupVersions = ['v1'];
    const groups = await this.client.raw<APIGroupList>('GET', '/apis');
    for (const g of groups.groups) for (const v of g.versions) groupVersions.push(v.groupVersion);
    await Promise.all(groupVersions.map(async (gv) => {
      const path = gv === 'v1' ? '/api/v1' : `/apis/${gv}`;
      const list = await this.client.raw<APIResourceList>('GET', path);
      const [group, version] = gv.includes('/') ? gv.split('/') : ['', gv];
      for (const r of list.resources) {
        if (r.name.includes('/')) continue; // subresources
        this.byGVK.set(`${gv}/${r.kind}`, { group, version, resource: r.name, kind: r.kind, namespaced: r.namespaced });
      }
    }));
    this.loaded = true;
  }
}
