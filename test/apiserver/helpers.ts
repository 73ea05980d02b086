// Test helpers: a started apiserver on an ephemeral loopback port, and a tiny HTTPS client.
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { after, before, describe } from 'node:test';
import { startApiServer, type ApiServer } from '../../cluster/apiserver/index.js';
import { EtcdStore, FileStore, MemoryStore } from '../../cluster/store/index.js';
import type { Store } from '../../cluster/store/types.js';
import type { PodLogHandler } from '../../cluster/apiserver/context.js';
import { etcdSkipReason, startEtcd, type EtcdCluster } from '../support/etcd.js';

export interface TestServer {
  server: ApiServer; dir: string; kind: StoreKind | 'custom';
  stop(): Promise<void>;
  /** Drops the store's history up to now (etcd compaction): older revisions answer 410. */
  compact(): Promise<void>;
}

/** The stores the API suites run on: the embedded durable FileStore and a real etcd. */
export type StoreKind = 'file' | 'etcd' | 'memory';
export const STORE_KINDS: StoreKind[] = ['file', 'etcd'];

let etcdCluster: EtcdCluster | undefined;

/**
 * Defines the suite once per store kind (`<name> [file]`, `<name> [etcd]`). The etcd variant
 * starts one etcd for the suite (each server gets its own key prefix) and is skipped, with the
 * reason, only when the etcd binary is missing.
 */
export function describeStores(name: string, body: (kind: StoreKind) => void): void {
  for (const kind of STORE_KINDS) {
    const skip = kind === 'etcd' ? etcdSkipReason() : undefined;
    describe(`${name} [${kind}]`, { skip }, () => {
      if (kind === 'etcd') {
        before(async () => { etcdCluster = await startEtcd(); });
        after(async () => { await etcdCluster?.stop(); etcdCluster = undefined; });
      }
      body(kind);
    });
  }
}

function makeStore(kind: StoreKind, dir: string, prefix: string): Store {
  if (kind === 'memory') return new MemoryStore();
  if (kind === 'file') return new FileStore(path.join(dir, 'store'));
  if (!etcdCluster) throw new Error('etcd store requested outside describeStores (no etcd running)');
  return new EtcdStore({ endpoints: etcdCluster.endpoints, prefix });
}

async function compactStore(store: Store): Promise<void> {
  const rev = await store.revision();
  if (store instanceof EtcdStore) await store.compact(rev);
  else if (store instanceof MemoryStore) store.compactHistory(rev);
  else throw new Error('compact: unsupported store');
}

const PKI_CACHE = path.join(os.tmpdir(), 'trellis-apiserver-test-pki');
const CACHED = ['ca.key', 'ca.crt', 'sa.key'];

/**
 * Test servers share one CA and service-account key (cached in the temp dir), so each start
 * skips generating them; every server still issues its own serving certificate.
 */
function seedPki(dir: string): void {
  const target = path.join(dir, 'pki');
  if (fs.existsSync(path.join(target, 'ca.key'))) return;
  if (CACHED.every((f) => fs.existsSync(path.join(PKI_CACHE, f)))) {
    fs.mkdirSync(target, { recursive: true, mode: 0o700 });
    for (const f of CACHED) fs.copyFileSync(path.join(PKI_CACHE, f), path.join(target, f));
  }
}

function fillPkiCache(dir: string): void {
  if (fs.existsSync(PKI_CACHE)) return;
  // Written next to the cache and renamed, so concurrent test files never see half a cache.
  const tmp = `${PKI_CACHE}.${process.pid}`;
  try {
    fs.mkdirSync(tmp, { recursive: true, mode: 0o700 });
    for (const f of CACHED) fs.copyFileSync(path.join(dir, 'pki', f), path.join(tmp, f));
    fs.renameSync(tmp, PKI_CACHE);
  } catch {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** The etcd key prefix of each data dir, so a restart on the same dir finds the same etcd state. */
const etcdPrefixes = new Map<string, string>();

export async function startTestServer(opts: { memory?: boolean; store?: Store | StoreKind; dir?: string; authorization?: 'RBAC' | 'AlwaysAllow'; eventTTLSeconds?: number; podLogs?: PodLogHandler; runtimeConfig?: Record<string, boolean> } = {}): Promise<TestServer> {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-apiserver-'));
  seedPki(dir);
  const kind: StoreKind | 'custom' = typeof opts.store === 'string' ? opts.store : opts.store ? 'custom' : opts.memory ? 'memory' : 'file';
  if (!etcdPrefixes.has(dir)) etcdPrefixes.set(dir, `/t-${randomUUID()}`);
  const store = typeof opts.store === 'object' ? opts.store : makeStore(kind as StoreKind, dir, etcdPrefixes.get(dir)!);
  // A store made here is closed by stop(); a caller's store stays the caller's.
  const own = typeof opts.store !== 'object';
  const server = await startApiServer({ dataDir: dir, listen: [{ host: '127.0.0.1', port: 0 }], store, authorization: opts.authorization, eventTTLSeconds: opts.eventTTLSeconds, podLogs: opts.podLogs, runtimeConfig: opts.runtimeConfig });
  fillPkiCache(dir);
  return {
    server, dir, kind,
    async stop() {
      await server.close();
      if (own) await store.close();
      if (!opts.dir) fs.rmSync(dir, { recursive: true, force: true });
    },
    compact: () => compactStore(store),
  };
}

export interface Resp { status: number; body: any; headers: Record<string, string | string[] | undefined> }

export function call(s: ApiServer, method: string, urlPath: string, body?: unknown, opts: { token?: string | null; contentType?: string; accept?: string } = {}): Promise<Resp> {
  const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const token = opts.token === undefined ? s.adminToken : opts.token;
  return new Promise((resolve, reject) => {
    const req = https.request(`${s.url}${urlPath}`, {
      method, ca: s.caCertPem,
      headers: {
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...(data !== undefined ? { 'Content-Type': opts.contentType ?? 'application/json', 'Content-Length': Buffer.byteLength(data) } : {}),
        ...(opts.accept ? { Accept: opts.accept } : {}),
      },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try { parsed = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

export interface WatchStream { events: any[]; next(timeoutMs?: number): Promise<any>; ended: Promise<void>; close(): void; status: Promise<number> }

/** Opens a watch and collects its newline-delimited events. */
export function watch(s: ApiServer, urlPath: string, token = s.adminToken): WatchStream {
  const events: any[] = [];
  const waiters: ((e: any) => void)[] = [];
  let consumed = 0;
  let resolveStatus!: (n: number) => void;
  let resolveEnd!: () => void;
  const status = new Promise<number>((r) => { resolveStatus = r; });
  const ended = new Promise<void>((r) => { resolveEnd = r; });
  const req = https.request(`${s.url}${urlPath}`, { ca: s.caCertPem, headers: { Authorization: `Bearer ${token}` } }, (res) => {
    resolveStatus(res.statusCode ?? 0);
    let buf = '';
    res.on('data', (c: Buffer) => {
      buf += c.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() === '') continue;
        const ev = JSON.parse(line);
        events.push(ev);
        const w = waiters.shift();
        if (w) { consumed++; w(ev); }
      }
    });
    res.on('end', () => resolveEnd());
    res.on('close', () => resolveEnd());
  });
  req.on('error', () => resolveEnd());
  req.end();
  return {
    events, ended, status,
    next(timeoutMs = 3000) {
      if (consumed < events.length) return Promise.resolve(events[consumed++]);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no watch event within ${timeoutMs}ms (got ${JSON.stringify(events.map((e) => e.type))})`)), timeoutMs);
        waiters.push((e) => { clearTimeout(t); resolve(e); });
      });
    },
    close() { req.destroy(); },
  };
}

export const ns = (name: string, labels?: Record<string, string>) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });

export const pod = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: name } },
  spec: { containers: [{ name: 'app', image: 'trellis/sample-http:0.1.0', env: [{ name: 'A', value: '1' }] }] },
  ...extra,
});
