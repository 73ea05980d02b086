// A small RFC 6902 applier for the tests: add, remove, replace, test (what admission uses).
// It is strict where the apiserver is strict: a missing parent or a bad index is an error.

export type Op = { op: string; path: string; value?: unknown; from?: string };

function unescape(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

function tokens(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new Error(`JSON pointer "${path}" must start with /`);
  return path.slice(1).split('/').map(unescape);
}

type Container = Record<string, unknown> | unknown[];

function parentOf(doc: unknown, path: string): { parent: Container; key: string } {
  const t = tokens(path);
  if (t.length === 0) throw new Error('operations on the root are not supported here');
  let cur: unknown = doc;
  for (const k of t.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(k)];
    else if (typeof cur === 'object' && cur !== null) cur = (cur as Record<string, unknown>)[k];
    else cur = undefined;
    if (cur === undefined) throw new Error(`path ${path}: parent ${k} does not exist`);
  }
  if (typeof cur !== 'object' || cur === null) throw new Error(`path ${path}: parent is not a container`);
  return { parent: cur as Container, key: t[t.length - 1] };
}

function index(arr: unknown[], key: string, path: string, forAdd: boolean): number {
  if (forAdd && key === '-') return arr.length;
  if (!/^(0|[1-9]\d*)$/.test(key)) throw new Error(`path ${path}: "${key}" is not an array index`);
  const i = Number(key);
  if (i > arr.length || (!forAdd && i === arr.length)) throw new Error(`path ${path}: index ${i} out of range`);
  return i;
}

export function applyPatch<T>(doc: T, ops: Op[]): T {
  const out = structuredClone(doc);
  for (const op of ops) {
    const { parent, key } = parentOf(out, op.path);
    switch (op.op) {
      case 'add':
        if (Array.isArray(parent)) parent.splice(index(parent, key, op.path, true), 0, structuredClone(op.value));
        else parent[key] = structuredClone(op.value);
        break;
      case 'replace':
      case 'remove': {
        if (Array.isArray(parent)) {
          const i = index(parent, key, op.path, false);
          if (op.op === 'remove') parent.splice(i, 1); else parent[i] = structuredClone(op.value);
        } else {
          if (!(key in parent)) throw new Error(`path ${op.path}: member does not exist`);
          if (op.op === 'remove') delete parent[key]; else parent[key] = structuredClone(op.value);
        }
        break;
      }
      case 'test': {
        const v = Array.isArray(parent) ? parent[index(parent, key, op.path, false)] : parent[key];
        if (JSON.stringify(v) !== JSON.stringify(op.value)) throw new Error(`test ${op.path} failed`);
        break;
      }
      default:
        throw new Error(`op ${op.op} is not supported by the test applier`);
    }
  }
  return out;
}
