// Server-side field validation (the `fieldValidation` query parameter, GA in Kubernetes 1.27):
// unknown fields (not in the kind's schema) and duplicate fields (a key twice in one JSON
// object) are rejected with 400 under Strict, reported as `Warning` headers under Warn (the
// default) and silently dropped under Ignore. Unknown fields never reach the store, as a typed
// decode in kube-apiserver (or a CRD's pruning) drops them.
import { badRequest } from './errors.js';
import { isObj, type Json } from './util.js';

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

export function fieldValidationOf(query: URLSearchParams): FieldValidation {
  const v = query.get('fieldValidation');
  if (v === null || v === '') return 'Warn';
  if (v === 'Strict' || v === 'Warn' || v === 'Ignore') return v;
  throw badRequest(`fieldValidation: Unsupported value: "${v}": supported values: "Ignore", "Strict", "Warn"`);
}

const PRESERVE = 'x-kubernetes-preserve-unknown-fields';
const EMBEDDED = 'x-kubernetes-embedded-resource';

const join = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

/**
 * Paths of the fields `value` has and `schema` does not declare, in Kubernetes' form
 * (`spec.template.spec.containers[0].imagePullPolcy`), and removes them from `value`.
 * `meta` is the ObjectMeta schema used for `metadata` at the root and in embedded resources.
 */
export function dropUnknownFields(schema: Json, value: unknown, meta: Json, path = '', root = true, out: string[] = []): string[] {
  if (Array.isArray(value)) {
    if (isObj(schema.items)) value.forEach((x, i) => dropUnknownFields(schema.items as Json, x, meta, `${path}[${i}]`, false, out));
    return out;
  }
  const typeMeta = root || schema[EMBEDDED] === true;
  if (!isObj(value) || (schema[PRESERVE] === true && !isObj(schema.properties) && !typeMeta)) return out;
  const props = isObj(schema.properties) ? schema.properties : {};
  const extra = isObj(schema.additionalProperties) ? schema.additionalProperties : undefined;
  for (const key of Object.keys(value)) {
    const p = join(path, key);
    if (typeMeta && key === 'metadata') { dropUnknownFields(meta, value[key], meta, p, false, out); continue; }
    if (typeMeta && (key === 'apiVersion' || key === 'kind')) continue;
    const sub = props[key] ?? extra;
    if (isObj(sub)) { dropUnknownFields(sub, value[key], meta, p, false, out); continue; }
    if (schema[PRESERVE] === true) continue;
    out.push(p);
    delete value[key];
  }
  return out;
}

/** Paths of keys that appear twice in one object of a JSON text (the last one wins, as in Go). */
export function duplicateFields(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  const ws = (): void => { while (i < text.length && ' \t\r\n'.includes(text[i])) i++; };
  const str = (): string => {
    const start = i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (path: string): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') { i++; return; }
      while (i < text.length) {
        ws();
        const key = str();
        const p = join(path, key);
        if (seen.has(key) && !out.includes(p)) out.push(p);
        seen.add(key);
        ws(); i++; // ':'
        value(p);
        ws();
        if (text[i++] !== ',') return; // '}'
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') { i++; return; }
      for (let n = 0; i < text.length; n++) {
        value(`${path}[${n}]`);
        ws();
        if (text[i++] !== ',') return; // ']'
      }
    } else if (c === '"') str();
    else while (i < text.length && !',}] \t\r\n'.includes(text[i])) i++;
  };
  try { value(''); } catch { /* malformed JSON is reported by the real parser */ }
  return out;
}

/** What a write found, and how the request asked to treat it. */
export interface FieldProblems { unknown: string[]; duplicate: string[] }

export function problemMessages(p: FieldProblems): string[] {
  return [...p.duplicate.map((f) => `duplicate field "${f}"`), ...p.unknown.map((f) => `unknown field "${f}"`)];
}

/** A `Warning` header value (RFC 7234 form, as kube-apiserver writes it). */
export function warningHeader(text: string): string {
  return `299 - ${JSON.stringify(text)}`;
}

/** How one write request asked for field problems to be treated, and where warnings go. */
export interface FieldValidationRequest {
  mode: FieldValidation;
  /** Duplicate keys found in the request's JSON body. */
  duplicates: string[];
  /** body: a create/update body; patch: a JSON/merge/strategic patch; apply: server-side apply. */
  source: 'body' | 'patch' | 'apply';
  warn(text: string): void;
}
