// Request mirroring (shadowing): for each of a route's mirror policies, a share of requests
// is copied to the mirror cluster with "-shadow" added to the host. Fire and forget: the
// copy's response is read and dropped, its failures only counted, and the main request
// never waits for it.
import type { ProxyRuntime } from '../runtime.js';
import type { ConfigSnapshot } from '../xds/snapshot.js';
import type { MirrorPolicy } from '../xds/resources/mirror.js';
import { resolveCluster } from '../upstream/cluster-manager.js';
import { attempt, type RequestBody } from './upstream-request.js';
import { Cancel } from './cancel.js';
import type { Readable } from 'node:stream';

/** Envoy's shadow host: "-shadow" appended to the host, before any port. */
export function shadowHost(host: string): string {
  const m = /^(.*?)(:\d+)?$/.exec(host);
  if (!m || host.endsWith(']')) return `${host}-shadow`;
  return `${m[1]}-shadow${m[2] ?? ''}`;
}

export interface MirrorRequest {
  method: string;
  path: string;
  /** Upstream request headers (flat name, value list), as the main request sends them. */
  headers: string[];
  body: RequestBody;
  timeoutMs: number;
  /** The downstream's HTTP version, for clusters that use the downstream protocol. */
  downstreamHttp2: boolean;
}

export function mirror(rt: ProxyRuntime, snapshot: ConfigSnapshot, policies: readonly MirrorPolicy[], r: MirrorRequest, random = Math.random): void {
  for (const p of policies) {
    if (p.fraction < 1 && random() >= p.fraction) continue;
    // A streaming body is copied as it arrives; if it outgrows the buffer limit the shadow is
    // cancelled (Envoy drops its shadows then), and a body already past it is not mirrored.
    let body: Buffer | Readable | undefined;
    if (r.body.kind === 'buffer') {
      if (!r.body.replayable) continue;
      body = r.body.data;
    } else if (r.body.kind === 'stream') {
      body = r.body.tee.mirrorBody();
      if (!body) continue;
    }
    const copy = body;
    void shadow(rt, snapshot, p.cluster, r, copy).catch((e: Error) => rt.log(`mirror to ${p.cluster}: ${e.message}`))
      .finally(() => { if (copy && !Buffer.isBuffer(copy)) copy.destroy(); });
  }
}

async function shadow(rt: ProxyRuntime, snapshot: ConfigSnapshot, name: string, r: MirrorRequest, body: Buffer | Readable | undefined): Promise<void> {
  const stat = (s: string): void => rt.stats.inc(`cluster.${name}.${s}`);
  const lookup = resolveCluster(snapshot, name);
  if (!('cluster' in lookup)) { stat('upstream_rq_no_healthy_upstream'); return; }
  const cluster = lookup.cluster;
  const e = rt.clusters.pick(cluster, {});
  if (!e) { stat('upstream_rq_no_healthy_upstream'); return; }
  const headers = r.headers.slice();
  for (let i = 0; i < headers.length; i += 2) if (headers[i].toLowerCase() === 'host') headers[i + 1] = shadowHost(headers[i + 1]);
  const configured = cluster.config.upstreamProtocol;
  const protocol = configured === 'downstream' ? (r.downstreamHttp2 ? 'http2' : 'http1') : configured;
  const signal = new Cancel();
  const timer = r.timeoutMs > 0 ? setTimeout(() => signal.abort(), r.timeoutMs) : undefined;
  try {
    const result = await attempt({
      pool: rt.clusters.pool(e.address, e.port, cluster.config.connectTimeoutMs, protocol, cluster.config.connection),
      method: r.method, path: r.path, headers, body, signal,
    });
    stat('upstream_rq_total');
    if (result.kind === 'response') {
      stat(`upstream_rq_${Math.floor(result.status / 100)}xx`);
      await result.discard();
    } else {
      stat('upstream_rq_shadow_failed');
    }
  } finally {
    if (timer) clearTimeout(timer);
  }
}
