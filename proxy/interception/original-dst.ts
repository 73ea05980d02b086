// Recovers the destination a captured connection was sent to before iptables REDIRECT
// rewrote it, through the small native addon in proxy/native.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type net from 'node:net';

export interface SocketAddress {
  address: string;
  port: number;
}

interface OriginalDstAddon {
  originalDst(fd: number): SocketAddress & { family: number };
}

const ADDON_PATH = path.join('proxy', 'native', 'build', 'Release', 'original_dst.node');

/** The repo root: the nearest ancestor of this module holding package.json (works from dist/ too). */
export function repoRoot(from = path.dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`original-dst: no package.json above ${from}`);
    dir = parent;
  }
}

let addon: OriginalDstAddon | undefined;

function loadAddon(): OriginalDstAddon {
  if (!addon) {
    const file = path.join(repoRoot(), ADDON_PATH);
    if (!fs.existsSync(file)) {
      throw new Error(`original-dst: native addon missing at ${file} (build it with npx node-gyp rebuild --directory proxy/native)`);
    }
    addon = createRequire(import.meta.url)(file) as OriginalDstAddon;
  }
  return addon;
}

/** The OS file descriptor behind a net.Socket (Linux, TCP sockets only). */
export function socketFd(socket: net.Socket): number {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('original-dst: socket has no file descriptor');
  return fd;
}

/** SO_ORIGINAL_DST of an accepted socket; throws (code ENOENT) when the connection was not redirected. */
export function originalDst(socket: net.Socket): SocketAddress {
  const { address, port } = loadAddon().originalDst(socketFd(socket));
  return { address, port };
}

/**
 * The original destination if the connection was redirected, else the address it was accepted
 * on (Envoy's original_dst filter behaves the same way for non-redirected connections).
 */
export function originalDstOrLocal(socket: net.Socket): SocketAddress {
  try {
    return originalDst(socket);
  } catch {
    return { address: stripV4Mapped(socket.localAddress ?? '0.0.0.0'), port: socket.localPort ?? 0 };
  }
}

export function stripV4Mapped(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
