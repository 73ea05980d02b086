// nginx and HAProxy from Debian as equivalent keep-alive reverse proxies: one event loop each
// (nginx worker_processes 1, HAProxy nbthread 1, like the single Node process of a Trellis
// proxy), no access log, HTTP/1.1 keep-alive to the client and pooled keep-alive to the upstream.
import fs from 'node:fs';
import path from 'node:path';
import { spawnBinary, type ChildHandle } from './processes.js';
import { waitServing } from './probe.js';

export function nginxConfig(dir: string, listenPort: number, upstreamPort: number): string {
  return `worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy_temp;
  fastcgi_temp_path ${dir}/fastcgi_temp;
  uwsgi_temp_path ${dir}/uwsgi_temp;
  scgi_temp_path ${dir}/scgi_temp;
  keepalive_timeout 120s;
  keepalive_requests 1000000;
  upstream bench_upstream {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:${listenPort};
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

export function haproxyConfig(listenPort: number, upstreamPort: number): string {
  return `global
  nbthread 1
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  timeout http-keep-alive 120s
frontend bench_frontend
  bind 127.0.0.1:${listenPort}
  default_backend bench_upstream
backend bench_upstream
  server upstream1 127.0.0.1:${upstreamPort}
`;
}

export async function startNginx(binary: string, dir: string, listenPort: number, upstreamPort: number): Promise<ChildHandle> {
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(conf, nginxConfig(dir, listenPort, upstreamPort));
  return spawnBinary('nginx', binary, ['-p', dir, '-c', conf, '-e', path.join(dir, 'nginx-error.log')],
    () => waitServing('nginx', { origin: `http://127.0.0.1:${listenPort}`, host: 'bench-upstream' }));
}

export async function startHaproxy(binary: string, dir: string, listenPort: number, upstreamPort: number): Promise<ChildHandle> {
  const conf = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(conf, haproxyConfig(listenPort, upstreamPort));
  // -db: foreground, no daemon; a single process we can stop by PID.
  return spawnBinary('haproxy', binary, ['-db', '-f', conf],
    () => waitServing('haproxy', { origin: `http://127.0.0.1:${listenPort}`, host: 'bench-upstream' }));
}
