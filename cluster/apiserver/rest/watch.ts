// Watch: a chunked stream of newline-delimited JSON events. resourceVersion ""/"0" starts
// with the current state as ADDED events; N replays every change after N; a revision older
// than the kept history gets an ERROR event carrying a 410 Expired Status.
import type { ApiContext, Request } from '../context.js';
import { badRequest, expired } from '../errors.js';
import type { KindInfo } from '../registry/types.js';
import { parseFieldSelector, parseLabelSelector } from '../selectors.js';
import { isStoreError, type StoreEvent } from '../../store/types.js';
import { toTable, wantsTable } from '../table.js';
import type { Json } from '../util.js';
import { fromStorage, listPrefix, makeMatcher } from './objects.js';

const DEFAULT_TIMEOUT_S = 1800;
const BOOKMARK_EVERY_MS = 15_000;
const MAX_BUFFERED = 16 * 1024 * 1024; // a client this far behind is cut off and will re-watch

export async function serveWatch(api: ApiContext, r: Request, k: KindInfo): Promise<void> {
  const q = r.url.searchParams;
  const version = r.info.version;
  const labels = parseLabelSelector(q.get('labelSelector'));
  let fieldSelector = q.get('fieldSelector') ?? '';
  if (r.info.name) fieldSelector = [fieldSelector, `metadata.name=${r.info.name}`].filter((s) => s !== '').join(',');
  const fields = parseFieldSelector(fieldSelector);
  const match = makeMatcher(k, labels, fields.matcher, fields.fields);
  const rvParam = q.get('resourceVersion') ?? '';
  if (rvParam !== '' && !/^\d+$/.test(rvParam)) throw badRequest(`invalid resource version "${rvParam}"`);
  const timeoutS = Number(q.get('timeoutSeconds') ?? DEFAULT_TIMEOUT_S);
  const bookmarks = q.get('allowWatchBookmarks') === 'true';
  // Streaming lists (KEP-3157, the WatchList feature): the current state as ADDED events, then a
  // BOOKMARK annotated k8s.io/initial-events-end, then changes. Kubernetes' validation rules apply.
  const initialEvents = q.get('sendInitialEvents') === 'true';
  if (initialEvents) {
    if (!bookmarks) throw badRequest('allowWatchBookmarks: Forbidden: sendInitialEvents requires allowWatchBookmarks=true');
    if (q.get('resourceVersionMatch') !== 'NotOlderThan') throw badRequest('resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan');
  } else if (q.get('resourceVersionMatch')) {
    throw badRequest('resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided');
  }
  const table = wantsTable(r.req.headers.accept);
  const includeObject = q.get('includeObject');
  const prefix = listPrefix(k, r.info.namespace);
  const res = r.res;

  // Headers go out at once: clients block on them before reading events.
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
  res.flushHeaders();

  let closed = false;
  let lastRevision = 0;
  let cancel: (() => void) | undefined;
  const timers: NodeJS.Timeout[] = [];
  const finish = (): void => {
    if (closed) return;
    closed = true;
    cancel?.();
    for (const t of timers) clearTimeout(t);
    res.end();
  };
  r.req.on('close', finish);
  res.on('close', finish);

  const send = (type: string, obj: Json): void => {
    if (closed) return;
    const object = table && (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') ? toTable(k, [obj], String(lastRevision), includeObject) : obj;
    res.write(JSON.stringify({ type, object }) + '\n');
    if (res.writableLength > MAX_BUFFERED) finish();
  };

  const onEvent = (ev: StoreEvent): void => {
    lastRevision = ev.revision;
    const cur = fromStorage(ev.object, k, version);
    if (ev.type === 'ADDED') { if (match(cur)) send('ADDED', cur); return; }
    if (ev.type === 'DELETED') { if (match(cur)) send('DELETED', cur); return; }
    // A modification can move an object into or out of the selection.
    const was = ev.prevObject !== undefined && match(fromStorage(ev.prevObject, k, version));
    const is = match(cur);
    if (was && is) send('MODIFIED', cur);
    else if (is) send('ADDED', cur);
    else if (was) send('DELETED', cur);
  };

  let from: number;
  if (rvParam === '' || rvParam === '0' || initialEvents) {
    const { items, revision } = await api.store.list(prefix);
    lastRevision = revision;
    for (const it of items) {
      const obj = fromStorage(it, k, version);
      if (match(obj)) send('ADDED', obj);
    }
    if (initialEvents) {
      send('BOOKMARK', { kind: k.kind, apiVersion: k.group ? `${k.group}/${version}` : version, metadata: { resourceVersion: String(revision), annotations: { 'k8s.io/initial-events-end': 'true' } } });
    }
    from = revision;
  } else {
    from = Number(rvParam);
    lastRevision = from;
  }
  try {
    cancel = await api.store.watch(prefix, from, onEvent);
  } catch (e) {
    if (isStoreError(e, 'Compacted')) {
      send('ERROR', expired(`too old resource version: ${from} (${e.message})`).toStatus() as unknown as Json);
      finish();
      return;
    }
    throw e;
  }
  if (closed) { cancel(); return; }
  if (timeoutS > 0) timers.push(setTimeout(finish, timeoutS * 1000));
  if (bookmarks) {
    const tick = (): void => {
      if (closed) return;
      send('BOOKMARK', { kind: k.kind, apiVersion: k.group ? `${k.group}/${version}` : version, metadata: { resourceVersion: String(lastRevision) } });
      timers.push(setTimeout(tick, BOOKMARK_EVERY_MS));
    };
    timers.push(setTimeout(tick, BOOKMARK_EVERY_MS));
  }
}
