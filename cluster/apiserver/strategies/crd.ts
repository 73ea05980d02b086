// CustomResourceDefinitions: storing one registers its resource in the registry at once,
// so the same generic REST path serves it; deleting it removes the resource and its objects.
import type { StatusCause } from '../../../api/kube/types.js';
import { fieldInvalid, fieldNotSupported, fieldRequired } from '../errors.js';
import { childArray, getPath, isObj, nowRfc3339, str, type Json } from '../util.js';
import type { KindInfo, ScaleSubresource, TableColumn } from '../registry/types.js';
import { storePrefix } from '../registry/types.js';
import type { Registry } from '../registry/registry.js';
import { compareKubeVersions } from '../registry/registry.js';
import type { Store } from '../../store/types.js';
import { age, kind, nameColumn } from './common.js';
import { applyDefaults, prune, structuralErrors, validateSchema } from './schema.js';

function versionsOf(crd: Json): Json[] {
  return childArray(isObj(crd.spec) ? crd.spec : {}, 'versions').filter(isObj);
}

function validateCrd(crd: Json): StatusCause[] {
  const errs: StatusCause[] = [];
  const spec = isObj(crd.spec) ? crd.spec : {};
  const group = str(spec.group);
  const plural = str(getPath(spec, 'names.plural'));
  if (!group) errs.push(fieldRequired('spec.group'));
  if (!plural) errs.push(fieldRequired('spec.names.plural'));
  if (!str(getPath(spec, 'names.kind'))) errs.push(fieldRequired('spec.names.kind'));
  if (group && plural && getPath(crd, 'metadata.name') !== `${plural}.${group}`) {
    errs.push(fieldInvalid('metadata.name', getPath(crd, 'metadata.name'), `must be spec.names.plural+"."+spec.group`));
  }
  if (!['Namespaced', 'Cluster'].includes(String(spec.scope))) errs.push(fieldNotSupported('spec.scope', spec.scope, ['Cluster', 'Namespaced']));
  const versions = versionsOf(crd);
  if (versions.length === 0) errs.push(fieldRequired('spec.versions'));
  if (versions.filter((v) => v.storage === true).length !== 1) errs.push(fieldInvalid('spec.versions', '', 'must have exactly one version marked as storage version'));
  versions.forEach((v, i) => {
    if (!str(v.name)) errs.push(fieldRequired(`spec.versions[${i}].name`));
    // apiextensions.k8s.io/v1 requires a structural schema for every version.
    const at = `spec.versions[${i}].schema.openAPIV3Schema`;
    const schema = getPath(v, 'schema.openAPIV3Schema');
    if (schema === undefined) errs.push({ ...fieldRequired(at), message: 'Required value: schemas are required' });
    else errs.push(...structuralErrors(schema, at));
  });
  return errs;
}

/** jsonPath of additionalPrinterColumns, the simple ".a.b" form. */
function jsonPathValue(obj: Json, jp: string): unknown {
  const v = getPath(obj, jp.replace(/^\./, ''));
  if (v === undefined) return '<none>';
  return typeof v === 'object' ? JSON.stringify(v) : v;
}

export function kindFromCrd(crd: Json): KindInfo {
  const spec = isObj(crd.spec) ? crd.spec : {};
  const names = isObj(spec.names) ? spec.names : {};
  const served = versionsOf(crd).filter((v) => v.served !== false);
  const versions = served.map((v) => String(v.name)).sort(compareKubeVersions);
  const storage = versionsOf(crd).find((v) => v.storage === true);
  const pref = served.find((v) => v.name === versions[0]) ?? storage ?? {};
  const schemas: Record<string, Json | undefined> = {};
  for (const v of served) {
    const s = getPath(v, 'schema.openAPIV3Schema');
    schemas[String(v.name)] = isObj(s) ? s : undefined;
  }
  const storageVersion = String(storage?.name ?? versions[0]);
  const defaulting = Object.values(schemas).some((sc) => JSON.stringify(sc ?? {}).includes('"default":'));
  const schemaFor = (obj: Json): Json | undefined => schemas[String(obj.apiVersion ?? '').split('/').pop() ?? ''] ?? schemas[versions[0]];
  const sub = isObj(pref.subresources) ? pref.subresources : {};
  const sc = isObj(sub.scale) ? sub.scale : undefined;
  const scale: ScaleSubresource | undefined = sc ? {
    specReplicasPath: String(sc.specReplicasPath ?? '.spec.replicas'),
    statusReplicasPath: String(sc.statusReplicasPath ?? '.status.replicas'),
    labelSelectorPath: str(sc.labelSelectorPath),
  } : undefined;
  const printer = childArray(pref, 'additionalPrinterColumns').filter(isObj);
  const columns: TableColumn[] = [nameColumn, ...printer.map((c) => ({ name: String(c.name), type: String(c.type ?? 'string'), format: '', description: String(c.description ?? ''), priority: Number(c.priority ?? 0) }))];
  const hasAge = printer.some((c) => c.jsonPath === '.metadata.creationTimestamp');
  if (!hasAge) columns.push({ name: 'Age', type: 'date', format: '', description: '', priority: 0 });
  const k = kind({
    group: String(spec.group),
    version: versions[0],
    resource: String(names.plural),
    kind: String(names.kind),
    singular: str(names.singular) ?? String(names.kind).toLowerCase(),
    namespaced: spec.scope !== 'Cluster',
    shortNames: childArray(names, 'shortNames').map(String),
    categories: childArray(names, 'categories').map(String),
    status: isObj(sub.status),
    scale,
    strategy: {
      // Decoding a custom object prunes unknown fields, then applies the schema's defaults.
      defaults(obj) {
        const schema = schemaFor(obj);
        prune(schema, obj);
        applyDefaults(schema, obj);
      },
      // Also after a /status write has been merged in (defaults() runs on the main resource only).
      prepareForUpdate(obj) {
        const schema = schemaFor(obj);
        prune(schema, obj);
        applyDefaults(schema, obj);
      },
      validate: (obj) => validateSchema(schemaFor(obj), obj, ''),
      // On read: the storage version's defaults, then the requested version's (apiextensions' order).
      onRead(obj) {
        if (!defaulting) return obj;
        const out = structuredClone(obj);
        applyDefaults(schemas[storageVersion], out);
        applyDefaults(schemaFor(out), out);
        return out;
      },
    },
    table: {
      columns,
      cells: (obj) => [getPath(obj, 'metadata.name'), ...printer.map((c) => {
        const v = jsonPathValue(obj, String(c.jsonPath ?? ''));
        return c.type === 'date' && typeof v === 'string' ? age({ metadata: { creationTimestamp: v } }) : v;
      }), ...(hasAge ? [] : [age(obj)])],
    },
  });
  k.versions = versions;
  k.storageVersion = storageVersion;
  k.crd = { name: String(getPath(crd, 'metadata.name')), schemas };
  return k;
}

export function crdKind(registry: Registry, store: Store): KindInfo {
  const sync = (crd: Json): void => {
    if (versionsOf(crd).some((v) => v.served !== false)) registry.add(kindFromCrd(crd));
  };
  return kind({
    group: 'apiextensions.k8s.io', version: 'v1', resource: 'customresourcedefinitions', kind: 'CustomResourceDefinition',
    namespaced: false, shortNames: ['crd', 'crds'], categories: ['api-extensions'], status: true,
    strategy: {
      defaults(crd) {
        const spec = isObj(crd.spec) ? crd.spec : (crd.spec = {});
        const names = isObj(spec.names) ? spec.names : {};
        if (typeof names.kind === 'string') {
          names.singular ??= names.kind.toLowerCase();
          names.listKind ??= `${names.kind}List`;
        }
        if (isObj(spec)) spec.conversion ??= { strategy: 'None' };
      },
      prepareForCreate(crd) { setEstablished(crd); },
      prepareForUpdate(crd) { setEstablished(crd); },
      validate: validateCrd,
      validateUpdate: (crd, old) => {
        const errs = validateCrd(crd);
        if (getPath(crd, 'spec.group') !== getPath(old, 'spec.group')) errs.push({ reason: 'FieldValueInvalid', message: 'Invalid value: field is immutable', field: 'spec.group' });
        return errs;
      },
      afterCreate: sync,
      afterUpdate: sync,
      async afterDelete(crd) {
        const group = String(getPath(crd, 'spec.group'));
        const resource = String(getPath(crd, 'spec.names.plural'));
        registry.remove(group, resource);
        const { items } = await store.list(storePrefix({ group, resource }));
        for (const it of items) {
          const ns = str(getPath(it, 'metadata.namespace'));
          const key = `${storePrefix({ group, resource })}${ns ? `${ns}/` : ''}${String(getPath(it, 'metadata.name'))}`;
          await store.delete(key).catch(() => undefined);
        }
      },
    },
    table: {
      columns: [nameColumn, { name: 'Created At', type: 'date', format: '', description: '', priority: 0 }],
      cells: (crd) => [getPath(crd, 'metadata.name'), getPath(crd, 'metadata.creationTimestamp') ?? age(crd)],
    },
  });
}

function setEstablished(crd: Json): void {
  const now = nowRfc3339();
  const names = getPath(crd, 'spec.names');
  crd.status = {
    acceptedNames: isObj(names) ? names : {},
    storedVersions: versionsOf(crd).filter((v) => v.storage === true).map((v) => v.name),
    conditions: [
      { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts', message: 'no conflicts found', lastTransitionTime: now },
      { type: 'Established', status: 'True', reason: 'InitialNamesAccepted', message: 'the initial names have been accepted', lastTransitionTime: now },
    ],
  };
}
