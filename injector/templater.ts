// A small templater for the injection template (no Go templates): the template is YAML, and
// quoted placeholders are filled in after parsing, so a value keeps its type:
//   "{{ name }}"         a string that is exactly one placeholder becomes the value itself
//                        (a number, a list, a map...);
//   "x-{{ name }}-y"     placeholders inside a longer string are interpolated as text;
//   - "{{ ...name }}"    a list item spreads a list value into the surrounding list.
// Names are checked when the template is loaded, with the line of each mistake, so a bad
// template is refused before any pod sees it.
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';

export type TemplateValue = string | number | boolean | null | TemplateValue[] | { [k: string]: TemplateValue };

/** A template that cannot be used; the message names the source (ConfigMap key) and the line. */
export class TemplateError extends Error {}

const PLACEHOLDER = /\{\{\s*(\.\.\.)?([A-Za-z_][\w.]*)\s*\}\}/g;
const WHOLE = /^\{\{\s*(\.\.\.)?([A-Za-z_][\w.]*)\s*\}\}$/;

export interface ParsedTemplate {
  /** The parsed YAML with placeholders still in it. */
  tree: TemplateValue;
  /** Where it came from, e.g. `ConfigMap trellis-system/istio-sidecar-injector data.template`. */
  source: string;
  /** The line of a path in the tree (for structural errors), when known. */
  lineOf(path: (string | number)[]): number | undefined;
}

/**
 * Parses a template and checks every placeholder against `known` (names a context will
 * provide). Errors name `source` and the 1-based line.
 */
export function parseTemplate(text: string, source: string, known: ReadonlySet<string>): ParsedTemplate {
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const at = `${source} line ${i + 1}`;
    if (/^\s*#/.test(line)) return;
    const opens = (line.match(/\{\{/g) ?? []).length;
    const found = [...line.matchAll(PLACEHOLDER)];
    if (opens !== found.length) throw new TemplateError(`${at}: malformed placeholder (write "{{ name }}" with a name of letters, digits, _ and .): ${line.trim()}`);
    for (const m of found) {
      if (!known.has(m[2])) throw new TemplateError(`${at}: unknown placeholder {{ ${m[1] ?? ''}${m[2]} }} (known: ${[...known].sort().join(', ')})`);
      // Unquoted, YAML would read `{{ x }}` as a flow mapping.
      const before = line.slice(0, m.index);
      if (!/["']/.test(before)) throw new TemplateError(`${at}: quote the placeholder ("{{ ${m[1] ?? ''}${m[2]} }}"), or YAML reads it as a map`);
    }
  });
  const lineCounter = new LineCounter();
  const doc: Document = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const line = e.linePos?.[0]?.line ?? lineCounter.linePos(e.pos[0]).line;
    throw new TemplateError(`${source} line ${line}: not valid YAML: ${e.message.split('\n')[0]}`);
  }
  return {
    tree: doc.toJS() as TemplateValue,
    source,
    lineOf(path) {
      // A missing field is reported at its closest parent that exists.
      for (let n = path.length; n >= 0; n--) {
        const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
        if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
      }
      return undefined;
    },
  };
}

function lookup(ctx: Record<string, TemplateValue>, name: string, where: string): TemplateValue {
  if (!(name in ctx)) throw new TemplateError(`${where}: no value for placeholder {{ ${name} }}`);
  return ctx[name];
}

function renderString(s: string, ctx: Record<string, TemplateValue>, where: string): TemplateValue {
  const whole = WHOLE.exec(s);
  if (whole && !whole[1]) return structuredClone(lookup(ctx, whole[2], where));
  if (whole?.[1]) throw new TemplateError(`${where}: {{ ...${whole[2]} }} spreads a list, so it may only be a list item`);
  return s.replace(PLACEHOLDER, (_m, spread: string | undefined, name: string) => {
    if (spread) throw new TemplateError(`${where}: {{ ...${name} }} spreads a list, so it may only be a whole list item`);
    const v = lookup(ctx, name, where);
    if (typeof v === 'object' && v !== null) throw new TemplateError(`${where}: {{ ${name} }} is a list or map; it cannot be part of a longer string`);
    return String(v);
  });
}

/** Fills in the placeholders; `ctx` maps each placeholder name to its value. */
export function renderTemplate(t: ParsedTemplate, ctx: Record<string, TemplateValue>, node: TemplateValue = t.tree, path: (string | number)[] = []): TemplateValue {
  const where = (): string => {
    const line = t.lineOf(path);
    return `${t.source}${line ? ` line ${line}` : ''} (${path.join('.') || 'top'})`;
  };
  if (typeof node === 'string') return renderString(node, ctx, where());
  if (Array.isArray(node)) {
    const out: TemplateValue[] = [];
    node.forEach((item, i) => {
      const spread = typeof item === 'string' ? WHOLE.exec(item) : null;
      if (spread?.[1]) {
        const v = lookup(ctx, spread[2], where());
        if (!Array.isArray(v)) throw new TemplateError(`${where()}: {{ ...${spread[2]} }} is not a list`);
        out.push(...structuredClone(v));
      } else {
        out.push(renderTemplate(t, ctx, item, [...path, i]));
      }
    });
    return out;
  }
  if (node !== null && typeof node === 'object') {
    const out: Record<string, TemplateValue> = {};
    for (const [k, v] of Object.entries(node)) out[k] = renderTemplate(t, ctx, v, [...path, k]);
    return out;
  }
  return node;
}
