// Chunked lists (?limit=&continue=), as in Kubernetes' etcd3 store: the continue token
// carries the last key returned and the revision of the first page. A later page reads the
// keys after that key in the snapshot at that revision; when the store no longer keeps
// history back to it the token has expired (410 Expired), as after an etcd compaction.
import { badRequest } from '../errors.js';

interface ContinueToken { v: string; rv: number; start: string }

const TOKEN_VERSION = 'meta.k8s.io/v1';

export function encodeContinue(lastKey: string, revision: number): string {
  return Buffer.from(JSON.stringify({ v: TOKEN_VERSION, rv: revision, start: `${lastKey}\u0000` })).toString('base64url');
}

export function decodeContinue(token: string, prefix: string): ContinueToken {
  let t: Partial<ContinueToken>;
  try {
    t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<ContinueToken>;
  } catch {
    throw badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
  }
  if (t.v !== TOKEN_VERSION || typeof t.rv !== 'number' || typeof t.start !== 'string') {
    throw badRequest(`continue key is not valid: server does not recognize this encoding`);
  }
  if (!t.start.startsWith(prefix)) throw badRequest('continue key is not valid: the key does not belong to this list');
  return { v: t.v, rv: t.rv, start: t.start };
}

export function parseLimit(q: URLSearchParams): number {
  const raw = q.get('limit');
  if (raw === null || raw === '') return 0;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw badRequest(`invalid limit: ${raw}`);
  return n;
}
