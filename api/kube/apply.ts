// Applies manifests the way `trellis up` and the tests need: create when missing,
// otherwise patch the manifest onto the live object, as kubectl's client-side apply does:
// a strategic merge patch for built-in kinds (lists such as containers or webhooks merge by
// their keys, so a caBundle a webhook server filled in survives), a merge patch for custom
// resources. Fields the manifest does not name are kept (a Service's clusterIP survives).
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { KubeClient } from './client.js';
import { RestMapper } from './discovery.js';
import { isNotFound } from './errors.js';
import type { KubeObject } from './types.js';

export function parseManifests(text: string, source = 'manifest'): KubeObject[] {
  const docs = YAML.parseAllDocuments(text);
  const out: KubeObject[] = [];
  docs.forEach((doc, i) => {
    if (doc.errors.length) throw new Error(`${source}: document ${i + 1}: ${doc.errors[0].message}`);
    const obj = doc.toJS() as KubeObject | null;
    if (!obj) return;
    if (!obj.apiVersion || !obj.kind || !obj.metadata?.name) {
      throw new Error(`${source}: document ${i + 1}: apiVersion, kind and metadata.name are required`);
    }
    out.push(obj);
  });
  return out;
}

/** Manifests from a file or every *.yaml/*.yml in a directory, in name order. */
export function readManifests(fileOrDir: string): KubeObject[] {
  const stat = fs.statSync(fileOrDir);
  const files = stat.isDirectory()
    ? fs.readdirSync(fileOrDir).filter((f) => /\.ya?ml$/.test(f) && f !== 'images.yaml').sort().map((f) => path.join(fileOrDir, f))
    : [fileOrDir];
  return files.flatMap((f) => parseManifests(fs.readFileSync(f, 'utf8'), f));
}

export class Applier {
  private readonly mapper: RestMapper;

  constructor(private readonly client: KubeClient, private readonly defaultNamespace = 'default') {
    this.mapper = new RestMapper(client);
  }

  async apply(obj: KubeObject): Promise<KubeObject> {
    const r = await this.mapper.resourceFor(obj.apiVersion as string, obj.kind as string);
    const name = obj.metadata.name as string;
    const namespace = r.namespaced ? obj.metadata.namespace ?? this.defaultNamespace : undefined;
    const body: KubeObject = { ...obj, metadata: { ...obj.metadata, ...(namespace ? { namespace } : {}) } };
    try {
      await this.client.get(r, name, namespace);
    } catch (e) {
      if (!isNotFound(e)) throw e;
      return this.client.create(r, body, namespace);
    }
    return this.client.patch(r, name, namespace, body, isBuiltInGroup(r.group) ? 'strategic' : 'merge');
  }

  async applyAll(objs: KubeObject[], log?: (line: string) => void): Promise<void> {
    for (const obj of objs) {
      // A CRD must be served before objects of its kind can be applied.
      await this.apply(obj);
      if (obj.kind === 'CustomResourceDefinition') await this.mapper.refresh();
      log?.(`${obj.kind?.toLowerCase()}/${obj.metadata.name} applied`);
    }
  }
}

/** Kubernetes' own groups: the core group, dot-less groups (apps, batch) and *.k8s.io; CRD groups always have a dot. */
function isBuiltInGroup(group: string): boolean {
  return group === '' || !group.includes('.') || group.endsWith('.k8s.io');
}
