// trellis/sample-http: a tiny HTTP/1.1 service that says who answered. Deployed as two
// versions behind one Service, its `version` field makes traffic splits visible.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface HttpServerOptions {
  port?: number;
  host?: string;
  service?: string;
  version?: string;
  pod?: string;
  namespace?: string;
}

export interface EchoReply {
  service: string;
  version: string;
  pod: string;
  namespace: string;
  path: string;
  headers: http.IncomingHttpHeaders;
}

export function createHttpServer(opts: HttpServerOptions = {}): http.Server {
  const identity = {
    service: opts.service ?? process.env.SERVICE_NAME ?? 'sample-http',
    version: opts.version ?? process.env.VERSION ?? 'v1',
    pod: opts.pod ?? process.env.POD_NAME ?? 'local',
    namespace: opts.namespace ?? process.env.POD_NAMESPACE ?? 'default',
  };
  const server = http.createServer((req, res) => {
    // Drain any request body so the connection can be reused.
    req.resume();
    req.on('end', () => {
      const url = req.url ?? '/';
      if (url === '/healthz' || url.startsWith('/healthz?')) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok\n');
        return;
      }
      const reply: EchoReply = { ...identity, path: url, headers: req.headers };
      const body = JSON.stringify(reply);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  return server;
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT: "${process.env.PORT}" is not a port`);
  const host = process.env.HOST ?? '0.0.0.0';
  const server = createHttpServer();
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, host, resolve); });
  const addr = server.address() as AddressInfo;
  console.log(`sample-http ${process.env.SERVICE_NAME ?? 'sample-http'} ${process.env.VERSION ?? 'v1'} listening on ${addr.address}:${addr.port}`);
  const stop = (): void => { server.close(() => process.exit(0)); server.closeIdleConnections(); setTimeout(() => process.exit(0), 2000).unref(); };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => { console.error(`sample-http: ${e instanceof Error ? e.message : String(e)}`); process.exit(1); });
}
