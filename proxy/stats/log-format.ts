// Envoy's access log formats: a text format or a JSON object whose values are strings of
// command operators (%RESPONSE_CODE%, %REQ(:AUTHORITY)%, %UPSTREAM_CLUSTER%, ...), compiled
// once when the config arrives. Envoy renders a missing value as "-" in text and as null in
// JSON; a JSON value made of exactly one numeric operator stays a number.
import type { AccessLogEntry } from './access-log.js';

type Value = string | number | undefined;

interface Command { name: string; arg?: string; maxLength?: number }
type Part = string | Command;

const NUMERIC: ReadonlySet<string> = new Set(['RESPONSE_CODE', 'BYTES_RECEIVED', 'BYTES_SENT', 'DURATION']);

/** The operators this proxy can fill, from the entry (REQ/RESP take an argument). */
const OPERATORS: Record<string, (e: AccessLogEntry, arg?: string) => Value> = {
  START_TIME: (e) => e.startTime.toISOString(),
  PROTOCOL: (e) => e.protocol,
  RESPONSE_CODE: (e) => e.responseCode,
  RESPONSE_FLAGS: (e) => e.responseFlags || '-',
  RESPONSE_CODE_DETAILS: (e) => e.responseCodeDetails,
  BYTES_RECEIVED: (e) => e.bytesReceived,
  BYTES_SENT: (e) => e.bytesSent,
  DURATION: (e) => Math.round(e.durationMs),
  UPSTREAM_HOST: (e) => e.upstreamHost,
  UPSTREAM_CLUSTER: (e) => e.upstreamCluster,
  UPSTREAM_LOCAL_ADDRESS: () => undefined,
  UPSTREAM_TRANSPORT_FAILURE_REASON: () => undefined,
  CONNECTION_TERMINATION_DETAILS: () => undefined,
  DOWNSTREAM_LOCAL_ADDRESS: (e) => e.downstreamLocal,
  DOWNSTREAM_REMOTE_ADDRESS: (e) => e.downstreamRemote,
  DOWNSTREAM_PEER_URI_SAN: (e) => e.downstreamPeerPrincipal,
  UPSTREAM_PEER_URI_SAN: (e) => e.upstreamPeerPrincipal,
  REQUESTED_SERVER_NAME: (e) => e.requestedServerName,
  ROUTE_NAME: (e) => e.routeName,
  REQ: (e, arg) => requestHeader(e, arg ?? ''),
  RESP: () => undefined,
};

function requestHeader(e: AccessLogEntry, spec: string): Value {
  // %REQ(X?Y)%: header X, or Y when X is absent.
  for (const name of spec.split('?')) {
    const n = name.trim().toLowerCase();
    const v = n === ':method' ? e.method : n === ':path' ? e.path : n === ':authority' ? e.authority
      : n === 'x-forwarded-for' ? e.forwardedFor ?? header(e, n) : n === 'user-agent' ? e.userAgent ?? header(e, n)
        : n === 'x-request-id' ? e.requestId : header(e, n);
    if (v !== undefined && v !== '' && v !== '-') return v;
  }
  return undefined;
}

function header(e: AccessLogEntry, name: string): string | undefined {
  const v = e.requestHeaders?.[name];
  return Array.isArray(v) ? v.join(',') : v;
}

const COMMAND = /%([A-Z_]+)(?:\(([^)]*)\))?(?::(\d+))?%/g;

/** Splits a format string into literal text and commands; unknown operators are an error (Envoy rejects them). */
export function parseFormat(format: string, field: string, errors: string[]): Part[] {
  const parts: Part[] = [];
  let last = 0;
  for (const m of format.matchAll(COMMAND)) {
    const name = m[1];
    if (!(name in OPERATORS)) { errors.push(`${field}: command operator %${name}% is not supported`); continue; }
    if ((name === 'REQ' || name === 'RESP') && !m[2]) errors.push(`${field}: %${name}(header)% needs a header name`);
    if (m.index > last) parts.push(format.slice(last, m.index));
    parts.push({ name, arg: m[2], maxLength: m[3] !== undefined ? Number(m[3]) : undefined });
    last = m.index + m[0].length;
  }
  if (last < format.length) parts.push(format.slice(last));
  return parts;
}

function evaluate(c: Command, e: AccessLogEntry): Value {
  const v = OPERATORS[c.name](e, c.arg);
  return typeof v === 'string' && c.maxLength !== undefined ? v.slice(0, c.maxLength) : v;
}

function renderText(parts: readonly Part[], e: AccessLogEntry): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'string') out += p;
    else { const v = evaluate(p, e); out += v === undefined || v === '' ? '-' : String(v); }
  }
  return out;
}

/** A JSON format value: a nested object or one format string. */
type JsonTemplate = { kind: 'object'; fields: [string, JsonTemplate][] } | { kind: 'format'; parts: Part[] } | { kind: 'literal'; value: unknown };

function renderJson(t: JsonTemplate, e: AccessLogEntry): unknown {
  if (t.kind === 'literal') return t.value;
  if (t.kind === 'object') return Object.fromEntries(t.fields.map(([k, v]) => [k, renderJson(v, e)]));
  const [only] = t.parts;
  if (t.parts.length === 1 && typeof only !== 'string') {
    const v = evaluate(only, e);
    if (v === undefined || v === '') return null;
    return NUMERIC.has(only.name) ? v : String(v);
  }
  return renderText(t.parts, e);
}

/** google.protobuf.Struct as decoded (message form `{ fields: { k: { stringValue } } }`) or as plain JSON. */
function structTemplate(s: Record<string, unknown>, field: string, errors: string[]): JsonTemplate {
  const fields = typeof s.fields === 'object' && s.fields !== null && Object.keys(s).length === 1 ? s.fields as Record<string, unknown> : s;
  const out: [string, JsonTemplate][] = [];
  for (const [k, raw] of Object.entries(fields)) out.push([k, valueTemplate(raw, `${field}.${k}`, errors)]);
  return { kind: 'object', fields: out };
}

function valueTemplate(raw: unknown, field: string, errors: string[]): JsonTemplate {
  if (typeof raw === 'string') return { kind: 'format', parts: parseFormat(raw, field, errors) };
  if (typeof raw !== 'object' || raw === null) return { kind: 'literal', value: raw };
  const v = raw as Record<string, unknown>;
  // google.protobuf.Value in message form.
  if (typeof v.stringValue === 'string') return { kind: 'format', parts: parseFormat(v.stringValue, field, errors) };
  if (v.structValue && typeof v.structValue === 'object') return structTemplate(v.structValue as Record<string, unknown>, field, errors);
  if ('numberValue' in v) return { kind: 'literal', value: v.numberValue };
  if ('boolValue' in v) return { kind: 'literal', value: v.boolValue };
  if ('nullValue' in v) return { kind: 'literal', value: null };
  return structTemplate(v, field, errors);
}

/** One compiled SubstitutionFormatString: renders a log line (without the newline for JSON). */
export interface LogFormatter { render(e: AccessLogEntry): string }

export function jsonFormatter(struct: Record<string, unknown>, field: string, errors: string[]): LogFormatter {
  const t = structTemplate(struct, field, errors);
  return { render: (e) => JSON.stringify(renderJson(t, e)) };
}

export function textFormatter(format: string, field: string, errors: string[]): LogFormatter {
  const parts = parseFormat(format, field, errors);
  return { render: (e) => renderText(parts, e) };
}
