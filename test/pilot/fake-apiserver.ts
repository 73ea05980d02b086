// Test scaffolding: just enough of the Kubernetes REST list/watch protocol over HTTP to
// drive pilot's informers (collections, resourceVersion, streamed watch events, 404 for
// collections that are not served).
import http from 'node:http';
import type { KubeObject } from '../../api/kube/index.js';

export class FakeApiServer {
  private readonly server: http.Server;
  private readonly collections = new Map<string, Map<string, KubeObject>>();
  private readonly watchers = new Map<string, Set<http.ServerResponse>>();
  private rv = 1;
  port = 0;

  /** `served` are collection paths like /api/v1/pods or /apis/networking.istio.io/v1beta1/virtualservices. */
  constructor(served: string[]) {
    for (const p of served) { this.collections.set(p, new Map()); this.watchers.set(p, new Set()); }
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    for (const set of this.watchers.values()) for (const w of set) w.end();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** Adds or replaces an object and tells the watchers. */
  put(collection: string, obj: KubeObject): void {
    const items = this.collections.get(collection);
    if (!items) throw new Error(`fake apiserver: ${collection} is not served`);
    const key = `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
    const type = items.has(key) ? 'MODIFIED' : 'ADDED';
    const stored = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
    items.set(key, stored);
    for (const w of this.watchers.get(collection) ?? []) w.write(`${JSON.stringify({ type, object: stored })}\n`);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const items = this.collections.get(url.pathname);
    if (!items) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: `${url.pathname} not found` }));
      return;
    }
    if (url.searchParams.get('watch')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      const set = this.watchers.get(url.pathname) as Set<http.ServerResponse>;
      set.add(res);
      res.on('close', () => set.delete(res));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items: [...items.values()] }));
  }
}
