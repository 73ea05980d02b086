// Owner references: the controller reference that ties a dependent to the object that
// manages it, and the lookups every controller does with it.
import type { KubeObject, OwnerReference } from '../../api/kube/index.js';

export function controllerRefOf(obj: KubeObject): OwnerReference | undefined {
  return obj.metadata.ownerReferences?.find((r) => r.controller === true);
}

export function newControllerRef(owner: KubeObject, apiVersion: string, kind: string): OwnerReference {
  if (!owner.metadata.name || !owner.metadata.uid) throw new Error(`${kind}: metadata.name and metadata.uid are required to own objects`);
  return { apiVersion, kind, name: owner.metadata.name, uid: owner.metadata.uid, controller: true, blockOwnerDeletion: true };
}

/** Is obj controlled by owner (same namespace, same uid)? */
export function isControlledBy(obj: KubeObject, owner: KubeObject): boolean {
  const ref = controllerRefOf(obj);
  return !!ref && ref.uid === owner.metadata.uid && obj.metadata.namespace === owner.metadata.namespace;
}

/** The namespace/name key of obj's controller of the given kind, or undefined. */
export function controllerKey(obj: KubeObject, kind: string): string | undefined {
  const ref = controllerRefOf(obj);
  if (!ref || ref.kind !== kind) return undefined;
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${ref.name}` : ref.name;
}

export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}
