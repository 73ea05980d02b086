// OpenAPI v3 schemas of CustomResourceDefinitions, as apiextensions-apiserver treats them:
// the structural-schema rules checked when a CRD is written, pruning of unknown fields,
// defaulting from `default`, and validation of custom objects (type, nullable, enum, pattern,
// minimum/maximum (exclusive too), minLength/maxLength, minItems/maxItems, required,
// format, properties/additionalProperties/items), with Kubernetes' field paths and wording.
import type { StatusCause } from '../../../api/kube/types.js';
import { fieldForbidden, fieldInvalid, fieldNotSupported, fieldRequired } from '../errors.js';
import { isObj, type Json } from '../util.js';

const PRESERVE = 'x-kubernetes-preserve-unknown-fields';
const INT_OR_STRING = 'x-kubernetes-int-or-string';
const EMBEDDED = 'x-kubernetes-embedded-resource';
const TYPES = ['object', 'array', 'string', 'integer', 'number', 'boolean'];
// Keywords a structural schema may not use (apiextensions validation).
const FORBIDDEN = ['$ref', 'definitions', 'dependencies', 'patternProperties', 'id', '$schema'];

const child = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

/**
 * Structural-schema errors of one version's openAPIV3Schema, paths rooted at `at`
 * (e.g. "spec.versions[0].schema.openAPIV3Schema").
 */
export function structuralErrors(schema: unknown, at: string): StatusCause[] {
  const errs: StatusCause[] = [];
  if (!isObj(schema)) return [fieldRequired(at)];
  if (schema.type !== 'object') errs.push(fieldInvalid(`${at}.type`, schema.type ?? '', 'must be object at the root'));
  walk(schema, at, true, errs);
  return errs;
}

function walk(s: Json, at: string, root: boolean, errs: StatusCause[]): void {
  for (const k of FORBIDDEN) if (s[k] !== undefined) errs.push(fieldForbidden(`${at}.${k}`, `${k} is not supported`));
  if (s.uniqueItems === true) errs.push(fieldForbidden(`${at}.uniqueItems`, 'uniqueItems cannot be set to true since the runtime complexity becomes quadratic'));
  if (s.additionalProperties === false) errs.push(fieldForbidden(`${at}.additionalProperties`, 'additionalProperties cannot be set to false'));
  if (s.type === undefined) {
    if (!root && s[INT_OR_STRING] !== true && s[PRESERVE] !== true) errs.push(fieldRequired(`${at}.type`));
  } else if (typeof s.type !== 'string' || !TYPES.includes(s.type)) {
    errs.push(fieldNotSupported(`${at}.type`, s.type, TYPES));
  }
  if (s[INT_OR_STRING] === true && s.type !== undefined) errs.push(fieldForbidden(`${at}.type`, `must be empty if ${INT_OR_STRING} is true`));
  if (isObj(s.properties) && s.additionalProperties !== undefined && s.additionalProperties !== false) {
    errs.push(fieldForbidden(`${at}.additionalProperties`, 'additionalProperties and properties are mutual exclusive'));
  }
  if (typeof s.pattern === 'string') {
    try { new RegExp(s.pattern, 'u'); } catch { errs.push(fieldInvalid(`${at}.pattern`, s.pattern, 'must be a valid regular expression')); }
  }
  if (s.type === 'array' && s.items === undefined) errs.push(fieldRequired(`${at}.items`));
  if (Array.isArray(s.items)) errs.push(fieldForbidden(`${at}.items`, 'items must be a schema object and not an array'));
  if (root && isObj(s.properties) && isObj(s.properties.metadata)) {
    const m = s.properties.metadata;
    const allowed = ['type', 'properties'];
    if (Object.keys(m).some((k) => !allowed.includes(k)) || Object.keys(isObj(m.properties) ? m.properties : {}).some((k) => k !== 'name' && k !== 'generateName')) {
      errs.push(fieldForbidden(`${at}.properties[metadata]`, 'must not specify anything other than name and generateName, but metadata is implicitly specified'));
    }
  }
  if (isObj(s.properties)) {
    for (const [k, v] of Object.entries(s.properties)) {
      if (root && k === 'metadata') continue;
      if (isObj(v)) walk(v, `${at}.properties[${k}]`, false, errs);
    }
  }
  if (isObj(s.additionalProperties)) walk(s.additionalProperties, `${at}.additionalProperties`, false, errs);
  if (isObj(s.items)) walk(s.items, `${at}.items`, false, errs);
  if (s.default !== undefined) {
    if (root) errs.push(fieldForbidden(`${at}.default`, 'must not be set at the root'));
    // A default must itself be valid (and survive pruning) under its own schema.
    for (const e of validateSchema(s, s.default, '')) errs.push({ ...e, field: e.field === '<root>' || !e.field ? `${at}.default` : `${at}.default.${e.field}` });
  }
}

/** Drops every field the schema does not specify (unless x-kubernetes-preserve-unknown-fields). */
export function prune(schema: unknown, value: unknown, root = true): void {
  if (!isObj(schema)) return;
  if (Array.isArray(value)) {
    if (isObj(schema.items)) for (const x of value) prune(schema.items, x, false);
    return;
  }
  if (!isObj(value)) return;
  const props = isObj(schema.properties) ? schema.properties : undefined;
  const extra = isObj(schema.additionalProperties) ? schema.additionalProperties : undefined;
  const keepTypeMeta = root || schema[EMBEDDED] === true;
  for (const k of Object.keys(value)) {
    if (keepTypeMeta && (k === 'apiVersion' || k === 'kind' || k === 'metadata')) continue;
    const sub = props?.[k] ?? extra;
    if (sub !== undefined) prune(sub, value[k], false);
    else if (schema[PRESERVE] !== true) delete value[k];
  }
}

/** Sets `default` for absent fields, depth first, like apiextensions' structural defaulting. */
export function applyDefaults(schema: unknown, value: unknown): void {
  if (!isObj(schema)) return;
  if (Array.isArray(value)) {
    if (isObj(schema.items)) for (const x of value) applyDefaults(schema.items, x);
    return;
  }
  if (!isObj(value)) return;
  const props = isObj(schema.properties) ? schema.properties : {};
  for (const [k, sub] of Object.entries(props)) {
    if (!isObj(sub)) continue;
    if (value[k] === undefined && sub.default !== undefined) value[k] = structuredClone(sub.default);
    applyDefaults(sub, value[k]);
  }
  if (isObj(schema.additionalProperties)) {
    for (const k of Object.keys(value)) if (!(k in props)) applyDefaults(schema.additionalProperties, value[k]);
  }
}

function typeOk(type: unknown, v: unknown, s: Json): boolean {
  if (s[INT_OR_STRING] === true) return typeof v === 'string' || Number.isInteger(v);
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

const FORMATS: Record<string, (v: string) => boolean> = {
  'date-time': (v) => /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(v) && !Number.isNaN(Date.parse(v)),
  date: (v) => /^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(v)),
  uuid: (v) => /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/.test(v),
  byte: (v) => /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(v),
  ipv4: (v) => /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(v),
  ipv6: (v) => v.includes(':') && /^[0-9a-fA-F:.]+$/.test(v),
  hostname: (v) => v.length <= 253 && /^[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*$/.test(v),
  email: (v) => /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(v),
  int32: () => true,
  int64: () => true,
  float: () => true,
  double: () => true,
  password: () => true,
};
const INT_FORMATS: Record<string, [number, number]> = { int32: [-(2 ** 31), 2 ** 31 - 1], int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER] };

const typeName = (v: unknown): string => (Array.isArray(v) ? 'array' : v === null ? 'null' : Number.isInteger(v) ? 'integer' : typeof v);

export function validateSchema(schema: unknown, value: unknown, path: string, errs: StatusCause[] = []): StatusCause[] {
  // A key present with an undefined value (e.g. a status carried over from an object
  // that had none) is absent on the wire: nothing to validate.
  if (!isObj(schema) || value === undefined) return errs;
  const where = path || '<root>';
  if (value === null) {
    if (schema.nullable !== true && schema.type !== undefined) errs.push(fieldInvalid(where, null, `${where} in body must be of type ${String(schema.type)}: "null"`));
    return errs;
  }
  if ((schema.type !== undefined || schema[INT_OR_STRING] === true) && !typeOk(schema.type, value, schema)) {
    const want = schema[INT_OR_STRING] === true ? 'integer,string' : String(schema.type);
    errs.push(fieldInvalid(where, typeName(value), `${where} in body must be of type ${want}: "${typeName(value)}"`));
    return errs;
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    errs.push(fieldNotSupported(where, value, schema.enum.map((e) => String(e))));
  }
  if (typeof value === 'number') numberChecks(schema, value, where, errs);
  if (typeof value === 'string') stringChecks(schema, value, where, errs);
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) errs.push(fieldInvalid(where, value.length, `${where} in body should have at least ${schema.minItems} items`));
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) errs.push({ reason: 'FieldValueTooMany', message: `Too many: ${value.length}: must have at most ${schema.maxItems} items`, field: where });
    if (schema.items !== undefined) value.forEach((x, i) => validateSchema(schema.items, x, `${path}[${i}]`, errs));
  }
  if (isObj(value)) {
    if (Array.isArray(schema.required)) {
      for (const r of schema.required) if (typeof r === 'string' && value[r] === undefined) errs.push(fieldRequired(child(path, r)));
    }
    if (typeof schema.minProperties === 'number' && Object.keys(value).length < schema.minProperties) errs.push(fieldInvalid(where, Object.keys(value).length, `${where} in body should have at least ${schema.minProperties} properties`));
    if (typeof schema.maxProperties === 'number' && Object.keys(value).length > schema.maxProperties) errs.push(fieldInvalid(where, Object.keys(value).length, `${where} in body should have at most ${schema.maxProperties} properties`));
    const props = isObj(schema.properties) ? schema.properties : {};
    for (const [k, v] of Object.entries(value)) {
      if (path === '' && (k === 'metadata' || k === 'apiVersion' || k === 'kind')) continue;
      const p = child(path, k);
      if (props[k] !== undefined) validateSchema(props[k], v, p, errs);
      else if (isObj(schema.additionalProperties)) validateSchema(schema.additionalProperties, v, p, errs);
    }
  }
  return errs;
}

function numberChecks(s: Json, v: number, where: string, errs: StatusCause[]): void {
  if (typeof s.minimum === 'number') {
    if (s.exclusiveMinimum === true ? v <= s.minimum : v < s.minimum) errs.push(fieldInvalid(where, v, `${where} in body should be greater than ${s.exclusiveMinimum === true ? '' : 'or equal to '}${s.minimum}`));
  }
  if (typeof s.maximum === 'number') {
    if (s.exclusiveMaximum === true ? v >= s.maximum : v > s.maximum) errs.push(fieldInvalid(where, v, `${where} in body should be less than ${s.exclusiveMaximum === true ? '' : 'or equal to '}${s.maximum}`));
  }
  if (typeof s.multipleOf === 'number' && s.multipleOf > 0 && Math.abs(v / s.multipleOf - Math.round(v / s.multipleOf)) > 1e-9) {
    errs.push(fieldInvalid(where, v, `${where} in body should be a multiple of ${s.multipleOf}`));
  }
  const range = typeof s.format === 'string' ? INT_FORMATS[s.format] : undefined;
  if (range && (v < range[0] || v > range[1])) errs.push(fieldInvalid(where, v, `${where} in body must be of type ${String(s.format)}: "${v}"`));
}

function stringChecks(s: Json, v: string, where: string, errs: StatusCause[]): void {
  const len = [...v].length;
  if (typeof s.minLength === 'number' && len < s.minLength) errs.push(fieldInvalid(where, v, `${where} in body should be at least ${s.minLength} chars long`));
  if (typeof s.maxLength === 'number' && len > s.maxLength) errs.push({ reason: 'FieldValueTooLong', message: `Too long: may not be longer than ${s.maxLength}`, field: where });
  if (typeof s.pattern === 'string') {
    let re: RegExp | undefined;
    try { re = new RegExp(s.pattern, 'u'); } catch { re = undefined; }
    if (re && !re.test(v)) errs.push(fieldInvalid(where, v, `${where} in body should match '${s.pattern}'`));
  }
  if (typeof s.format === 'string' && FORMATS[s.format] && !FORMATS[s.format](v)) {
    errs.push(fieldInvalid(where, v, `${where} in body must be of type ${s.format}: "${v}"`));
  }
}
