// Claiming dependents (client-go's ControllerRefManager): an owner adopts orphans its
// selector matches and releases dependents whose labels no longer match, so ownership
// follows labels the way Kubernetes users expect.
import { isNotFound, type KubeClient, type KubeObject, type OwnerReference, type ResourceRef } from '../../api/kube/index.js';
import { controllerRefOf } from './owner.js';

export async function claimDependents<T extends KubeObject>(
  client: KubeClient, dependents: ResourceRef, owner: KubeObject, ref: OwnerReference,
  matches: (obj: T) => boolean, candidates: T[],
): Promise<T[]> {
  const owned: T[] = [];
  const ownerDeleting = !!owner.metadata.deletionTimestamp;
  for (const obj of candidates) {
    if (obj.metadata.namespace !== owner.metadata.namespace) continue;
    const cref = controllerRefOf(obj);
    if (cref) {
      if (cref.uid !== ref.uid) continue;
      if (matches(obj)) { owned.push(obj); continue; }
      if (ownerDeleting) continue;
      // Labels changed under us: let go, so another controller may adopt it.
      await patchOwners(client, dependents, obj, (obj.metadata.ownerReferences ?? []).filter((r) => r.uid !== ref.uid));
      continue;
    }
    if (ownerDeleting || obj.metadata.deletionTimestamp || !matches(obj)) continue;
    const adopted = await patchOwners(client, dependents, obj, [...(obj.metadata.ownerReferences ?? []), ref]);
    if (adopted) owned.push(adopted);
  }
  return owned;
}

async function patchOwners<T extends KubeObject>(client: KubeClient, r: ResourceRef, obj: T, refs: OwnerReference[]): Promise<T | undefined> {
  try {
    return await client.patch<T>(r, obj.metadata.name as string, obj.metadata.namespace,
      { metadata: { ownerReferences: refs } }, 'merge');
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}
