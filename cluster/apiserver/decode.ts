// Request body decoding: JSON, YAML, and the small subset of Kubernetes protobuf that
// kubectl's typed clients send for `create namespace/configmap/secret` (no JSON fallback there).
import { parse as parseYaml } from 'yaml';
import { badRequest, unsupportedMediaType } from './errors.js';
import { isObj, type Json } from './util.js';

export function decodeBody(body: Buffer, contentType: string | undefined): Json {
  const ct = (contentType ?? 'application/json').split(';')[0].trim().toLowerCase();
  let v: unknown;
  if (ct === 'application/vnd.kubernetes.protobuf') return decodeProtobuf(body);
  if (ct === 'application/json' || ct === '' || ct.endsWith('+json') || ct === '*/*') {
    try { v = JSON.parse(body.toString('utf8')); } catch (e) { throw badRequest(`invalid JSON body: ${(e as Error).message}`); }
  } else if (ct === 'application/yaml' || ct.endsWith('+yaml')) {
    try { v = parseYaml(body.toString('utf8')); } catch (e) { throw badRequest(`invalid YAML body: ${(e as Error).message}`); }
  } else throw unsupportedMediaType(ct);
  if (!isObj(v)) throw badRequest('the request body must be a JSON object');
  return v;
}

// ---- protobuf ----------------------------------------------------------------------

interface Field { no: number; wire: number; value: number | Buffer }

function readVarint(b: Buffer, pos: number): [number, number] {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (pos >= b.length) throw badRequest('truncated protobuf varint');
    const byte = b[pos++];
    result += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [result, pos];
    shift += 7;
  }
}

function fields(b: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < b.length) {
    let tag: number;
    [tag, pos] = readVarint(b, pos);
    const no = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) { let v: number; [v, pos] = readVarint(b, pos); out.push({ no, wire, value: v }); }
    else if (wire === 2) { let len: number; [len, pos] = readVarint(b, pos); out.push({ no, wire, value: b.subarray(pos, pos + len) }); pos += len; }
    else if (wire === 1) { out.push({ no, wire, value: b.subarray(pos, pos + 8) }); pos += 8; }
    else if (wire === 5) { out.push({ no, wire, value: b.subarray(pos, pos + 4) }); pos += 4; }
    else throw badRequest(`unsupported protobuf wire type ${wire}`);
  }
  return out;
}

const text = (f: Field | undefined): string | undefined => (f && Buffer.isBuffer(f.value) ? f.value.toString('utf8') : undefined);
const sub = (f: Field): Buffer => (Buffer.isBuffer(f.value) ? f.value : Buffer.alloc(0));

function mapEntries(fs: Field[], no: number, asBase64 = false): Record<string, string> | undefined {
  const entries = fs.filter((f) => f.no === no);
  if (entries.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const e of entries) {
    const kv = fields(sub(e));
    const k = text(kv.find((f) => f.no === 1)) ?? '';
    const vf = kv.find((f) => f.no === 2);
    out[k] = asBase64 ? (vf ? sub(vf).toString('base64') : '') : text(vf) ?? '';
  }
  return out;
}

function decodeObjectMeta(b: Buffer): Json {
  const fs = fields(b);
  const m: Json = {};
  const s = (no: number, key: string): void => { const v = text(fs.find((f) => f.no === no)); if (v) m[key] = v; };
  s(1, 'name'); s(2, 'generateName'); s(3, 'namespace'); s(6, 'resourceVersion');
  const labels = mapEntries(fs, 11);
  const annotations = mapEntries(fs, 12);
  if (labels) m.labels = labels;
  if (annotations) m.annotations = annotations;
  return m;
}

// authorization.k8s.io/v1 (generated.proto): `kubectl auth can-i` posts these as protobuf.
const ACCESS_REVIEWS = new Set(['SelfSubjectAccessReview', 'SelfSubjectRulesReview', 'SubjectAccessReview', 'LocalSubjectAccessReview']);
const RESOURCE_ATTRIBUTES = ['namespace', 'verb', 'group', 'version', 'resource', 'subresource', 'name']; // fields 1..7

function strings(fs: Field[], names: string[]): Json {
  const out: Json = {};
  names.forEach((key, i) => { const v = text(fs.find((f) => f.no === i + 1)); if (v) out[key] = v; });
  return out;
}

function decodeReviewSpec(kind: string, spec: Field[]): Json {
  if (kind === 'SelfSubjectRulesReview') return strings(spec, ['namespace']);
  const out: Json = {};
  const ra = spec.find((f) => f.no === 1);
  const nra = spec.find((f) => f.no === 2);
  if (ra) out.resourceAttributes = strings(fields(sub(ra)), RESOURCE_ATTRIBUTES);
  if (nra) out.nonResourceAttributes = strings(fields(sub(nra)), ['path', 'verb']);
  if (kind === 'SubjectAccessReview' || kind === 'LocalSubjectAccessReview') {
    const user = text(spec.find((f) => f.no === 3));
    if (user) out.user = user;
    const groups = spec.filter((f) => f.no === 4).map((f) => text(f) ?? '');
    if (groups.length) out.groups = groups;
    const uid = text(spec.find((f) => f.no === 6));
    if (uid) out.uid = uid;
  }
  return out;
}

// rbac.authorization.k8s.io/v1 (generated.proto): `kubectl create role/rolebinding/...` post these.
const RBAC_KINDS = new Set(['Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding']);
const RULE_LISTS = ['verbs', 'apiGroups', 'resources', 'resourceNames', 'nonResourceURLs']; // fields 1..5

function decodeRbac(kind: string, raw: Field[], obj: Json): void {
  if (kind === 'Role' || kind === 'ClusterRole') {
    obj.rules = raw.filter((f) => f.no === 2).map((f) => {
      const rf = fields(sub(f));
      const rule: Json = {};
      RULE_LISTS.forEach((key, i) => { const vs = rf.filter((x) => x.no === i + 1).map((x) => text(x) ?? ''); if (vs.length) rule[key] = vs; });
      return rule;
    });
    return;
  }
  obj.subjects = raw.filter((f) => f.no === 2).map((f) => strings(fields(sub(f)), ['kind', 'apiGroup', 'name', 'namespace']));
  const ref = raw.find((f) => f.no === 3);
  if (ref) obj.roleRef = strings(fields(sub(ref)), ['apiGroup', 'kind', 'name']);
}

/** Decodes the runtime.Unknown envelope; objects get their metadata and, for ConfigMap/Secret, data. */
function decodeProtobuf(body: Buffer): Json {
  if (body.length < 4 || body.subarray(0, 4).toString('latin1') !== 'k8s\0') throw badRequest('protobuf body without the k8s magic prefix');
  const env = fields(body.subarray(4));
  const tm = env.find((f) => f.no === 1);
  const typeMeta = tm ? fields(sub(tm)) : [];
  const apiVersion = text(typeMeta.find((f) => f.no === 1)) ?? '';
  const kind = text(typeMeta.find((f) => f.no === 2)) ?? '';
  const rawField = env.find((f) => f.no === 2);
  const raw = rawField ? fields(sub(rawField)) : [];
  const metaField = raw.find((f) => f.no === 1);
  const obj: Json = { apiVersion, kind, metadata: metaField ? decodeObjectMeta(sub(metaField)) : {} };
  if (kind === 'ConfigMap') {
    const data = mapEntries(raw, 2);
    const binaryData = mapEntries(raw, 3, true);
    if (data) obj.data = data;
    if (binaryData) obj.binaryData = binaryData;
  } else if (kind === 'Secret') {
    const data = mapEntries(raw, 2, true);
    if (data) obj.data = data;
    const type = text(raw.find((f) => f.no === 3));
    if (type) obj.type = type;
  } else if (ACCESS_REVIEWS.has(kind) && apiVersion.startsWith('authorization.k8s.io/')) {
    const specField = raw.find((f) => f.no === 2);
    obj.spec = decodeReviewSpec(kind, specField ? fields(sub(specField)) : []);
  } else if (RBAC_KINDS.has(kind) && apiVersion.startsWith('rbac.authorization.k8s.io/')) {
    decodeRbac(kind, raw, obj);
  } else if (kind === 'SelfSubjectReview') {
    // `kubectl auth whoami`: only status follows metadata, and the server sets it.
  } else if (kind !== 'Namespace' && raw.some((f) => f.no > 1 && sub(f).length > 2)) {
    throw unsupportedMediaType('application/vnd.kubernetes.protobuf (only metadata-only objects are decoded; send JSON)');
  }
  return obj;
}
