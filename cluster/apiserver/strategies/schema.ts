// Minimal structural-schema validation for custom resources (openAPIV3Schema): type,
// required, enum, properties, items, nullable. Unknown fields are kept, not pruned.
import type { StatusCause } from '../../../api/kube/types.js';
import { fieldInvalid, fieldNotSupported, fieldRequired } from '../errors.js';
import { isObj, type Json } from '../util.js';

function typeOk(type: unknown, v: unknown, s: Json): boolean {
  if (s['x-kubernetes-int-or-string'] === true) return typeof v === 'string' || Number.isInteger(v);
  switch (type) {
    case 'object': return isObj(v);
    case 'array': return Array.isArray(v);
    case 'string': return typeof v === 'string';
    case 'integer': return Number.isInteger(v);
    case 'number': return typeof v === 'number';
    case 'boolean': return typeof v === 'boolean';
    default: return true;
  }
}

export function validateSchema(schema: unknown, value: unknown, path: string, errs: StatusCause[] = []): StatusCause[] {
  // A key present with an undefined value (e.g. a status carried over from an object
  // that had none) is absent on the wire: nothing to validate.
  if (!isObj(schema) || value === undefined) return errs;
  if (value === null) {
    if (schema.nullable !== true && schema.type !== undefined) errs.push(fieldInvalid(path, null, `${path} in body must be of type ${String(schema.type)}: "null"`));
    return errs;
  }
  if (schema.type !== undefined && !typeOk(schema.type, value, schema)) {
    errs.push(fieldInvalid(path, value, `${path} in body must be of type ${String(schema.type)}: "${Array.isArray(value) ? 'array' : typeof value}"`));
    return errs;
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    errs.push(fieldNotSupported(path, value, schema.enum.map((e) => String(e))));
  }
  if (isObj(value)) {
    if (Array.isArray(schema.required)) {
      for (const r of schema.required) if (typeof r === 'string' && value[r] === undefined) errs.push(fieldRequired(`${path}.${r}`));
    }
    const props = isObj(schema.properties) ? schema.properties : {};
    for (const [k, v] of Object.entries(value)) {
      if (path === '' && (k === 'metadata' || k === 'apiVersion' || k === 'kind')) continue;
      const p = path === '' ? k : `${path}.${k}`;
      if (props[k] !== undefined) validateSchema(props[k], v, p, errs);
      else if (isObj(schema.additionalProperties)) validateSchema(schema.additionalProperties, v, p, errs);
    }
  }
  if (Array.isArray(value) && schema.items !== undefined) value.forEach((x, i) => validateSchema(schema.items, x, `${path}[${i}]`, errs));
  return errs;
}
