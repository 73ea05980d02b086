// Envoy's router filter for one request routed to a cluster: circuit breakers, host
// selection (hash, previous hosts), attempts with per-try timeouts, retries with jittered
// back-off, the route timeout, outlier detection feedback, then streaming the response.
import { transportFor } from '../xds/resources/upstream-transport.js';
import type http from 'node:http';
import type { ConnectionContext, ProxyRuntime } from '../runtime.js';
import type { ConfigSnapshot } from '../xds/snapshot.js';
import type { ForwardAction, Route, VirtualHost } from '../xds/resources/route.js';
import type { RetryPolicy } from '../xds/resources/retry-policy.js';
import { resolveCluster } from '../upstream/cluster-manager.js';
import { originalDstTarget } from '../runtime.js';
import type { SocketAddress } from '../interception/original-dst.js';
import { downstreamResponseHeaders, hasBody } from './headers.js';
import { sendLocalReply } from './local-reply.js';
import { attempt, takeBody, type AttemptResult, type RequestBody } from './upstream-request.js';
import type { Readable } from 'node:stream';
import type { StreamInfo } from './stream-info.js';
import { Cancel } from './cancel.js';

const GRPC_STATUS_HEADERS = ['grpc-status', 'grpc-message', 'grpc-status-details-bin'];
const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const GRPC_RETRY: Record<string, string> = { '1': 'cancelled', '4': 'deadline-exceeded', '8': 'resource-exhausted', '13': 'internal', '14': 'unavailable' };

export interface RouterRequest {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  info: StreamInfo;
  ctx: ConnectionContext;
  snapshot: ConfigSnapshot;
  action: ForwardAction;
  route: Route;
  virtualHost: VirtualHost;
  /** The listener's per_connection_buffer_limit_bytes (the route's and virtual host's own limits win). */
  bufferLimitBytes: number;
  clusterName: string;
  path: string;
  /** Upstream request headers after the route's mutations (flat name, value list). */
  headers: string[];
  /** Applies the route's response header mutations. */
  responseHeaders: (h: Record<string, string | string[]>) => Record<string, string | string[]>;
  hash?: number;
  /** Called once before the first attempt with the request body (buffered or a tee), e.g. to mirror the request. */
  onBody?: (body: RequestBody) => void;
}

/** Envoy's JitteredExponentialBackOffStrategy: uniform in [0, min(base * (2^n - 1), max)). */
export function backOffMs(policy: Pick<RetryPolicy, 'backOffBaseMs' | 'backOffMaxMs'>, retry: number, random = Math.random): number {
  const ceiling = Math.min(policy.backOffBaseMs * (2 ** retry - 1), policy.backOffMaxMs);
  return Math.floor(random() * ceiling);
}

function retriable(r: AttemptResult, p: RetryPolicy): boolean {
  const on = p.retryOn;
  if (r.kind === 'response') {
    const s = r.status;
    if (on.has('5xx') && s >= 500) return true;
    if (on.has('gateway-error') && (s === 502 || s === 503 || s === 504)) return true;
    if (on.has('retriable-4xx') && s === 409) return true;
    if (on.has('retriable-status-codes') && p.retriableStatusCodes.has(s)) return true;
    const grpc = r.headers['grpc-status'];
    const cond = typeof grpc === 'string' ? GRPC_RETRY[grpc] : undefined;
    return cond !== undefined && on.has(cond as never);
  }
  switch (r.failure) {
    case 'connect-failure': return on.has('connect-failure') || on.has('5xx') || on.has('gateway-error');
    case 'reset': return on.has('reset') || on.has('5xx') || on.has('gateway-error');
    case 'per-try-timeout': return on.has('5xx') || on.has('gateway-error') || on.has('reset');
    default: return false;
  }
}

/** With no retry policy only retries that cannot duplicate work happen (see the "safe retries"). */
function safeRetry(r: AttemptResult, method: string): boolean {
  if (r.kind !== 'error') return false;
  // A connect failure never wrote anything; a reset before any response byte on an idempotent
  // request is what a server closing a reused keep-alive connection looks like.
  return r.failure === 'connect-failure' || (r.failure === 'reset' && IDEMPOTENT.has(method));
}

function sleep(ms: number, signal: Cancel): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const t = setTimeout(done, ms);
    function done(): void { clearTimeout(t); signal.off('abort', done); resolve(); }
    signal.once('abort', done);
  });
}

export async function routeToCluster(r: RouterRequest, rt: ProxyRuntime): Promise<void> {
  const { req, res, info, action } = r;
  const name = r.clusterName;
  const stat = (s: string): void => rt.stats.inc(`cluster.${name}.${s}`);
  const local = (status: number, flags: string[], text: string): void => {
    info.responseFlags.push(...flags);
    info.responseCode = status;
    info.bytesSent += sendLocalReply(res, status, flags.join(','), text);
  };

  const lookup = resolveCluster(r.snapshot, name);
  if ('missing' in lookup) return local(503, ['NC'], `cluster not found: ${name}`);
  // A warming EDS cluster has no hosts yet: Envoy answers "no healthy upstream".
  if ('warming' in lookup) {
    stat('upstream_rq_no_healthy_upstream');
    return local(503, ['UH'], `no healthy upstream (cluster ${name} is warming)`);
  }
  const cluster = lookup.cluster;
  const rm = rt.clusters.resourceManager(cluster);
  if (!rm.tryRequest()) {
    stat('upstream_rq_pending_overflow');
    return local(503, ['UO'], `max_requests (limit ${rm.limits.maxRequests}) reached for cluster ${name}`);
  }

  const policy = action.retryPolicy ?? r.virtualHost.retryPolicy;
  const method = req.method ?? 'GET';
  let body: RequestBody = { kind: 'none' };
  const done = new Cancel(); // aborted by the route timeout or a vanished client
  let timedOut = false;
  let downstreamGone = false;
  const onClose = (): void => { if (!res.writableFinished) { downstreamGone = true; done.abort(); } };
  res.on('close', onClose);
  // The route timeout starts once the downstream request is complete (Envoy); we start it at
  // routing, which only differs for slow uploads.
  let timer: NodeJS.Timeout | undefined;
  let finished = false;
  // The route timeout starts once the downstream request is complete (Envoy's onRequestComplete).
  const startTimer = (): void => {
    if (action.timeoutMs > 0 && !timer && !done.aborted && !finished) timer = setTimeout(() => { timedOut = true; done.abort(); }, action.timeoutMs);
  };
  const tried = new Set<string>();
  let retriesHeld = 0;
  let attemptBody: Readable | undefined;
  try {
    const limit = r.route.bufferLimitBytes ?? r.virtualHost.bufferLimitBytes ?? r.bufferLimitBytes;
    if (hasBody(req)) body = takeBody(req, limit, (n) => { info.bytesReceived += n; });
    const tee = body.kind === 'stream' ? body.tee : undefined;
    if (tee) {
      // Envoy's retry_or_shadow_abandoned: the body outgrew the copy kept for retries and mirrors.
      tee.onOverflow = () => stat('retry_or_shadow_abandoned');
      tee.whenComplete(startTimer);
    } else startTimer();
    r.onBody?.(body);
    const maxRetries = policy ? policy.numRetries : 1;
    // Whether the body can still be sent again from its first byte.
    const replayable = (): boolean => body.kind === 'none' || (body.kind === 'buffer' ? body.replayable : !body.tee.overflowed);
    let attemptNo = 0;
    let last: AttemptResult | undefined;
    let lastHost = '';
    for (;;) {
      attemptNo++;
      // Host selection, avoiding hosts already tried when the predicate asks for it.
      let host: SocketAddress | undefined;
      let transportMatch: Record<string, string> | undefined;
      if (cluster.config.type === 'ORIGINAL_DST') host = originalDstTarget(r.ctx);
      else {
        const avoid = policy?.avoidPreviousHosts && tried.size > 0 ? tried : undefined;
        for (let i = 0; i < (avoid ? policy?.hostSelectionRetryMaxAttempts ?? 1 : 1) && !host; i++) {
          const e = rt.clusters.pick(cluster, { hash: r.hash, exclude: avoid });
          if (e) { host = { address: e.address, port: e.port }; transportMatch = e.transportMatch; }
        }
      }
      if (!host) {
        stat('upstream_rq_no_healthy_upstream');
        return local(503, ['UH'], `no healthy upstream in cluster ${name}`);
      }
      if (rt.isOwnListener(host)) return local(503, ['UF'], `refusing to connect to the proxy's own listener ${host.address}:${host.port}`);
      const hostKey = `${host.address}:${host.port}`;
      tried.add(hostKey);
      lastHost = hostKey;
      info.upstreamHost = hostKey;

      const willQueue = rm.connections >= rm.limits.maxConnections;
      const slot = rm.acquireConnection(done);
      if (!slot) {
        stat('upstream_rq_pending_overflow');
        return local(503, ['UO'], `max_pending_requests (limit ${rm.limits.maxPendingRequests}) reached for cluster ${name}`);
      }
      // No connection could be opened within max_connections: the request waits as pending.
      if (willQueue) stat('upstream_cx_overflow');
      const got = await slot;
      if (got === 'aborted') { last = { kind: 'error', failure: 'aborted', code: 'aborted' }; break; }
      let payload: Buffer | Readable | undefined = body.kind === 'buffer' ? body.data : undefined;
      if (tee) {
        attemptBody = tee.attemptBody();
        // The body grew past the limit while waiting to retry: the part already sent is gone.
        if (!attemptBody) {
          rm.releaseConnection();
          return local(507, [], 'exceeded request buffer limit while retrying upstream');
        }
        payload = attemptBody;
      }

      const counters = rt.clusters.counters(name, hostKey);
      counters.rqTotal++;
      counters.rqActive++;
      const headers = r.virtualHost.includeRequestAttemptCount ? [...r.headers, 'x-envoy-attempt-count', String(attemptNo)] : r.headers;
      let result: AttemptResult;
      try {
        result = await attempt({
          pool: rt.clusters.pool(host.address, host.port, cluster.config.connectTimeoutMs, upstreamProtocol(cluster.config.upstreamProtocol, req), cluster.config.connection, transportFor(cluster.config.transport, transportMatch)),
          method, path: r.path, headers, body: payload, signal: done, perTryTimeoutMs: policy?.perTryTimeoutMs,
          whenBodyComplete: tee ? (cb) => tee.whenComplete(cb) : undefined,
        });
      } finally {
        counters.rqActive--;
      }
      last = result;
      // A failed attempt's body stream goes (it would otherwise hold the client's back-pressure).
      if (result.kind === 'error') attemptBody?.destroy();
      if (result.kind === 'error' && result.failure === 'aborted') { rm.releaseConnection(); break; }
      if (result.kind === 'error' && result.failure === 'connect-failure') {
        counters.cxConnectFail++;
        stat('upstream_cx_connect_fail');
      }
      if (result.kind === 'error' && result.failure === 'per-try-timeout') stat('upstream_rq_per_try_timeout');
      const outcome = result.kind === 'response' ? result.status : result.failure === 'connect-failure' ? 'connect-failure' : result.failure === 'reset' ? 'reset' : 'timeout';
      rt.clusters.outlierDetector(cluster)?.record(hostKey, outcome, cluster.endpoints.length);
      chargeUpstream(rt, name, result.kind === 'response' ? result.status : result.failure === 'per-try-timeout' ? 504 : 503);

      const wantRetry = policy ? retriable(result, policy) : safeRetry(result, method);
      if (wantRetry && attemptNo <= maxRetries && replayable()) {
        // max_retries and the retry budget count parallel retries: this request's previous retry attempt is over.
        if (retriesHeld > 0) { rm.releaseRetry(); retriesHeld--; }
        if (!rm.tryRetry()) {
          stat('upstream_rq_retry_overflow');
          info.responseFlags.push('UO');
        } else {
          retriesHeld++;
          stat('upstream_rq_retry');
          if (result.kind === 'response') await result.discard().catch(() => undefined);
          rm.releaseConnection();
          await sleep(policy ? backOffMs(policy, attemptNo) : 0, done);
          if (done.aborted) { last = { kind: 'error', failure: 'aborted', code: 'aborted' }; break; }
          continue;
        }
      } else if (wantRetry && policy && replayable()) {
        // Retriable, but the policy's retries are used up. (A body too large to keep a copy
        // of is no retry at all for Envoy: no URX then.)
        stat('upstream_rq_retry_limit_exceeded');
        info.responseFlags.push('URX');
      }
      if (result.kind === 'response') {
        // This response is the answer: no retry will need the body again.
        tee?.stopRetaining();
        if (attemptNo > 1 && result.status < 500) stat('upstream_rq_retry_success');
        try {
          await respond(r, result, attemptNo, done, () => timedOut);
        } finally {
          rm.releaseConnection();
        }
        return;
      }
      rm.releaseConnection();
      break;
    }
    if (!last || (last.kind === 'error' && last.failure === 'aborted')) {
      if (downstreamGone) { info.responseFlags.push('DC'); return; }
      if (timedOut) {
        stat('upstream_rq_timeout');
        return local(504, ['UT'], 'upstream request timeout');
      }
      return local(503, ['UC'], 'upstream request aborted');
    }
    if (last.kind === 'error') {
      const flags = info.responseFlags.filter((f) => f === 'URX' || f === 'UO');
      info.responseFlags = info.responseFlags.filter((f) => f !== 'URX' && f !== 'UO');
      if (last.failure === 'per-try-timeout') return local(504, ['UT', ...flags], 'upstream request timeout');
      if (last.failure === 'connect-failure') {
        return local(503, ['UF', ...flags], `upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: ${last.code} (host ${lastHost})`);
      }
      return local(503, ['UC', ...flags], `upstream connect error or disconnect/reset before headers. reset reason: connection termination (${last.code})`);
    }
  } finally {
    finished = true;
    if (timer) clearTimeout(timer);
    res.off('close', onClose);
    for (; retriesHeld > 0; retriesHeld--) rm.releaseRetry();
    rm.releaseRequest();
    if (body.kind === 'stream') body.tee.destroy();
  }
}

async function respond(r: RouterRequest, up: Extract<AttemptResult, { kind: 'response' }>, attempts: number, signal: Cancel, timedOut: () => boolean): Promise<void> {
  const { res, info } = r;
  info.responseCode = up.status;
  info.upstreamPrincipal = up.peerPrincipal;
  const headers = r.responseHeaders(downstreamResponseHeaders(up.headers));
  // A gRPC "trailers-only" answer carries grpc-status in its only HEADERS frame. Relayed as
  // headers plus an empty body it would end without trailers, so the status moves to them.
  if (headers['grpc-status'] !== undefined) {
    for (const k of GRPC_STATUS_HEADERS) {
      const v = headers[k];
      if (v === undefined) continue;
      if (up.trailers[k] === undefined) up.trailers[k] = v;
      delete headers[k];
    }
  }
  if (r.virtualHost.includeAttemptCountInResponse) headers['x-envoy-attempt-count'] = String(attempts);
  res.writeHead(up.status, headers);
  up.body.on('data', (chunk: Buffer) => { info.bytesSent += chunk.length; });
  // The route timeout also covers the response body (Envoy resets the stream when it fires).
  const onAbort = (): void => { up.body.destroy(new Error('route timeout')); };
  signal.once('abort', onAbort);
  try {
    // Plain pipe, not stream.pipeline: pipeline allocates an AbortController per call and
    // fires it (building a DOMException) on every normal finish, a large share of a request.
    await pipeBody(up.body, res, () => forwardTrailers(up.trailers, res));
  } catch {
    // The response already started: all that is left is resetting the downstream stream.
    if (timedOut()) info.responseFlags.push('UT');
    else if (!res.writableFinished && res.destroyed) info.responseFlags.push('DC');
    else info.responseFlags.push('UPE');
    res.destroy();
  } finally {
    signal.off('abort', onAbort);
  }
}

/** Streams the upstream body into the downstream response; rejects if either side breaks first. */
function forwardTrailers(trailers: Record<string, string | string[] | undefined>, res: http.ServerResponse): void {
  const out: Record<string, string | string[]> = {};
  let any = false;
  for (const [k, v] of Object.entries(trailers)) if (v !== undefined && !k.startsWith(':')) { out[k] = v; any = true; }
  // HTTP/1.1 can carry trailers only on a chunked response; node drops them otherwise.
  if (any) res.addTrailers(out);
}

function pipeBody(body: Readable, res: http.ServerResponse, beforeEnd: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (err?: Error): void => {
      if (settled) return;
      settled = true;
      body.off('error', onBodyError);
      body.off('end', onEnd);
      res.off('close', onResClose);
      res.off('finish', onFinish);
      if (err) {
        body.unpipe(res);
        body.destroy();
        reject(err);
      } else resolve();
    };
    const onBodyError = (err: Error): void => done(err);
    // Runs before pipe()'s own 'end' handler ends the response, so trailers still fit.
    const onEnd = (): void => { try { beforeEnd(); } catch { /* headers already flushed without chunking */ } };
    const onFinish = (): void => done();
    const onResClose = (): void => { if (!res.writableFinished) done(new Error('downstream closed')); };
    body.on('error', onBodyError);
    body.on('end', onEnd);
    res.on('finish', onFinish);
    res.on('close', onResClose);
    body.on('close', () => { if (!body.readableEnded) done(new Error('upstream body closed early')); });
    body.pipe(res);
  });
}

/** use_downstream_protocol follows the request's version; explicit settings win. */
function upstreamProtocol(configured: 'http1' | 'http2' | 'downstream', req: http.IncomingMessage): 'http1' | 'http2' {
  if (configured === 'downstream') return req.httpVersionMajor === 2 ? 'http2' : 'http1';
  return configured;
}

/** cluster -> status -> its three counter names, built once instead of per request. */
const upstreamStatNames = new Map<string, Map<number, readonly [string, string, string]>>();

function chargeUpstream(rt: ProxyRuntime, cluster: string, status: number): void {
  rt.metrics.recordUpstream(cluster, status);
  let byStatus = upstreamStatNames.get(cluster);
  if (!byStatus) {
    if (upstreamStatNames.size >= 10_000) upstreamStatNames.clear();
    byStatus = new Map();
    upstreamStatNames.set(cluster, byStatus);
  }
  let names = byStatus.get(status);
  if (!names) {
    names = [`cluster.${cluster}.upstream_rq_total`, `cluster.${cluster}.upstream_rq_${status}`, `cluster.${cluster}.upstream_rq_${Math.floor(status / 100)}xx`];
    byStatus.set(status, names);
  }
  rt.stats.inc(names[0]);
  rt.stats.inc(names[1]);
  rt.stats.inc(names[2]);
}
