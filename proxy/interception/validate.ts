// Checks that the rules really redirect (Istio's istio-iptables --run-validation): with a
// listener on the outbound capture port, connect to an address that must be captured and see
// the connection arrive there, carrying a nonce. If it does not, the init container fails and
// the pod never starts, rather than running with traffic silently bypassing the proxy.
// The address is the pod's default gateway (the node's bridge): were the rules broken, the
// probe would reach only the node itself, never leave it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import type { InterceptionConfig } from './iptables-rules.js';

const VALIDATION_PORT = 15002;

/** The IPv4 default gateway of this network namespace, from /proc/net/route. */
export function defaultGateway(routeTable = fs.readFileSync('/proc/net/route', 'utf8')): string | undefined {
  for (const line of routeTable.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 3 || f[1] !== '00000000' || f[2] === '00000000') continue;
    const n = Number.parseInt(f[2], 16);
    return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].join('.');
  }
  return undefined;
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((a, o) => (a * 256) + Number(o), 0);
}

function inCidr(ip: string, cidr: string): boolean {
  const [base, bits = '32'] = cidr.split('/');
  const mask = Number(bits) === 0 ? 0 : (0xffffffff << (32 - Number(bits))) >>> 0;
  return ((ipToInt(ip) & mask) >>> 0) === ((ipToInt(base) & mask) >>> 0);
}

/** Whether the outbound rules capture a connection to `ip` (port VALIDATION_PORT) from a non-proxy user. */
export function captured(cfg: InterceptionConfig, ip: string): boolean {
  if (ip.startsWith('127.') || cfg.outboundExcludePorts.includes(String(VALIDATION_PORT))) return false;
  if (cfg.outboundExcludeCidrs.some((c) => inCidr(ip, c))) return false;
  return cfg.outboundIncludeCidrs.includes('*') || cfg.outboundIncludeCidrs.some((c) => inCidr(ip, c));
}

export type ValidationResult = { ok: true; target: string } | { ok: false; target?: string; skipped?: string; error?: string };

function attempt(target: string, nonce: string, server: net.Server, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (err: string | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      server.off('connection', onConn);
      client.destroy();
      resolve(err);
    };
    const onConn = (s: net.Socket): void => {
      let got = '';
      s.on('data', (c: Buffer) => { got += c.toString(); if (got.includes(nonce)) { s.destroy(); finish(undefined); } });
      s.on('error', () => undefined);
    };
    server.on('connection', onConn);
    const client = net.connect({ host: target, port: VALIDATION_PORT }, () => client.write(nonce));
    client.on('error', (e) => finish(`connect to ${target}:${VALIDATION_PORT}: ${e.message}`));
    const timer = setTimeout(() => finish(`no connection to ${target}:${VALIDATION_PORT} arrived at the capture port within ${timeoutMs} ms`), timeoutMs);
  });
}

/**
 * Runs the check; must run as a user whose traffic is captured (not the proxy's UID/GID), in
 * the pod's network namespace, before the proxy binds the outbound capture port.
 */
export async function validateRedirection(cfg: InterceptionConfig, target = defaultGateway(), timeoutMs = 3000): Promise<ValidationResult> {
  if (!target) return { ok: false, skipped: 'no default route in this network namespace' };
  if (!captured(cfg, target)) return { ok: false, target, skipped: `${target} is not captured by the configured CIDRs/ports` };
  const server = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(cfg.outboundPort, '0.0.0.0', () => resolve());
    });
  } catch (e) {
    return { ok: false, target, error: `cannot listen on the capture port ${cfg.outboundPort}: ${(e as Error).message}` };
  }
  try {
    let error: string | undefined;
    for (let i = 0; i < 3; i++) {
      error = await attempt(target, crypto.randomBytes(8).toString('hex'), server, timeoutMs);
      if (!error) return { ok: true, target };
    }
    return { ok: false, target, error };
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}
