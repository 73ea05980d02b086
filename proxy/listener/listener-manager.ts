// Binds the listeners LDS asks for and dispatches each accepted connection: recover the
// original destination, hand off to the listener owning that address (useOriginalDst),
// pick the filter chain, then run its network filter (HTTP connection manager or TcpProxy).
import net from 'node:net';
import { HttpConnectionManager } from '../http/connection-manager.js';
import { proxyTcp } from '../tcp/tcp-proxy.js';
import { connectionAttributes, runRbac } from '../http/rbac-stage.js';
import { stripV4Mapped, type SocketAddress } from '../interception/original-dst.js';
import type { ConnectionContext, ProxyRuntime } from '../runtime.js';
import { addressKey, type ConfigSnapshot } from '../xds/snapshot.js';
import { listenerSdsNames } from '../xds/xds-config.js';
import type { FilterChain, ListenerConfig } from '../xds/resources/listener.js';
import type { Direction } from '../stats/labels.js';
import { inspectionNeeds, selectFilterChain, type ConnectionMatchInfo } from './filter-chain-match.js';
import { inspect } from './inspectors.js';
import { terminateTls } from './tls-termination.js';

const HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * How long connections of a replaced filter chain may finish before they are closed: Istio's
 * drainDuration (Envoy's --drain-time-s 45). HTTP clients are told to leave long before
 * (connection: close, GOAWAY); this bounds TCP proxies and upgraded connections.
 */
export const CHAIN_DRAIN_MS = 45_000;
/** From a listener drain (SIGTERM, /drain_listeners) until its idle HTTP/1 connections are ended (`trellis up` gives pods 2 s). */
export const DRAIN_TIMEOUT_MS = 1_000;

export type OriginalDstResolver = (socket: net.Socket) => SocketAddress;

interface BoundListener {
  name: string;
  key: string;
  server: net.Server;
  /** The config this listener currently runs; swapped in place when only filter chains change. */
  config: ListenerConfig;
  port: number;
}

/** What runs on one filter chain (by content): its HTTP connection manager and its TCP connections. */
interface ChainState {
  hcm?: HttpConnectionManager;
  tcp: Set<net.Socket>;
}

export class ListenerManager {
  private readonly bound = new Map<string, BoundListener>();
  // One state per filter chain content (FilterChain.configHash): a push that re-sends a chain
  // unchanged keeps its connection manager and connections; a chain whose content is gone
  // from the config drains (see drainReplacedChains), as Envoy drains changed filter chains.
  private readonly chains = new Map<string, ChainState>();
  /** Chain hashes of the config last reconciled; undefined before the first. */
  private liveChains: Set<string> | undefined;
  private readonly sockets = new Set<net.Socket>();
  /** Listeners drained by stopAccepting: a later config push must not bind them again. */
  private readonly stopped = new Set<string>();
  /** Warming messages already logged (listener and missing secrets), so each is logged once. */
  private readonly warningLogged = new Set<string>();

  constructor(private readonly rt: ProxyRuntime, private readonly resolveOriginalDst: OriginalDstResolver,
    private readonly chainDrainMs = CHAIN_DRAIN_MS) {}

  /** Ports the proxy listens on (for loop detection). */
  boundPorts(): number[] {
    return [...this.bound.values()].map((b) => b.port);
  }

  /** Same as boundPorts().includes(port), without allocating (asked once per request). */
  isBoundPort(port: number): boolean {
    for (const b of this.bound.values()) if (b.port === port) return true;
    return false;
  }

  /**
   * Brings bound sockets in line with the snapshot's listeners. A listening socket whose
   * address is still wanted is kept, even when its listener was renamed or changed (Envoy
   * updates listeners in place): no window in which connections are refused. Then the
   * filter chains the snapshot no longer holds drain.
   */
  async reconcile(snapshot: ConfigSnapshot): Promise<void> {
    const wanted = new Map<string, ListenerConfig>();
    const warming = new Set<string>();
    for (const { value } of snapshot.listeners.values()) {
      if (!value.bindToPort || this.stopped.has(value.name)) continue;
      // Envoy's listener warming: a listener whose SDS secrets have not arrived is not
      // served yet; the version it replaces (if any) keeps serving until they do.
      const missing = listenerSdsNames(value).filter((n) => !snapshot.secrets.has(n));
      if (missing.length) {
        warming.add(value.name);
        if (!this.warningLogged.has(`${value.name}|${missing.join(',')}`)) {
          this.warningLogged.add(`${value.name}|${missing.join(',')}`);
          this.rt.log(`listener ${value.name}: warming, waiting for SDS secret(s) ${missing.join(', ')}`);
        }
        continue;
      }
      wanted.set(value.name, value);
    }
    const byKey = new Map<string, ListenerConfig>();
    for (const l of wanted.values()) byKey.set(addressKey(l.address.address, l.address.port), l);
    for (const [name, b] of [...this.bound]) {
      if (warming.has(name)) continue;
      const next = wanted.get(name) ?? byKey.get(b.key);
      if (next && addressKey(next.address.address, next.address.port) === b.key && (next.name === name || !this.bound.has(next.name))) {
        b.config = next;
        if (next.name !== name) {
          this.bound.delete(name);
          b.name = next.name;
          this.bound.set(next.name, b);
        }
        continue;
      }
      // Removed or moved: stop accepting; accepted connections finish (or drain) on their own.
      // close() stops listening at once; its callback would wait for every connection.
      this.bound.delete(name);
      b.server.close();
    }
    this.drainReplacedChains(snapshot);
    await Promise.all([...wanted.values()].filter((l) => !this.bound.has(l.name)).map((l) => this.bind(l)));
  }

  /**
   * Connections on a filter chain whose content the snapshot no longer holds (the chain was
   * changed or removed) drain: HTTP/1.1 closes after the response in flight (idle ones at
   * once), HTTP/2 gets GOAWAY, and whatever is still open after the drain period (TCP
   * proxies, upgrades) is closed. Clients reconnect onto the new chain, so a new
   * AuthorizationPolicy or STRICT mode also governs connections opened before it. Chains
   * re-sent with the same content are untouched.
   */
  private drainReplacedChains(snapshot: ConfigSnapshot): void {
    const live = new Set<string>();
    // Bound listeners still serve their config while a new version warms: theirs are live too.
    for (const value of [...[...snapshot.listeners.values()].map((l) => l.value), ...[...this.bound.values()].map((b) => b.config)]) {
      for (const chain of value.filterChains) live.add(chain.configHash);
      if (value.defaultFilterChain) live.add(value.defaultFilterChain.configHash);
    }
    this.liveChains = live;
    for (const [hash, state] of this.chains) {
      if (live.has(hash)) continue;
      this.chains.delete(hash);
      this.drainChain(state);
    }
  }

  private drainChain(state: ChainState): void {
    if (!state.hcm && state.tcp.size === 0) return;
    this.rt.stats.inc('listener_manager.filter_chains_drained');
    state.hcm?.drain();
    const timer = setTimeout(() => {
      state.hcm?.forceClose();
      for (const s of state.tcp) s.destroy();
    }, this.chainDrainMs);
    timer.unref();
  }

  /**
   * The state of a chain, created on first use. A connection accepted before a push can reach
   * its chain after it (TLS handshake, inspection): its chain is stale, and it gets a state
   * of its own that drains from the start (one response with `connection: close`).
   */
  private chainState(chain: FilterChain): { state: ChainState; stale: boolean } {
    const known = this.chains.get(chain.configHash);
    if (known) return { state: known, stale: false };
    const state: ChainState = { tcp: new Set() };
    if (this.liveChains && !this.liveChains.has(chain.configHash)) return { state, stale: true };
    this.chains.set(chain.configHash, state);
    return { state, stale: false };
  }

  private async bind(config: ListenerConfig): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true });
    const b: BoundListener = { name: config.name, key: addressKey(config.address.address, config.address.port), server, config, port: config.address.port };
    server.on('connection', (socket) => this.onConnection(b, socket));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: config.address.address, port: config.address.port }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.rt.stats.inc('listener_manager.listener_create_failure');
      this.rt.log(`listener ${config.name}: cannot bind ${b.key}: ${(err as Error).message}`);
      return;
    }
    const addr = server.address();
    if (addr && typeof addr === 'object') b.port = addr.port;
    this.bound.set(config.name, b);
    this.rt.stats.inc('listener_manager.listener_create_success');
    this.rt.log(`listener ${config.name}: listening on ${config.address.address}:${b.port}`);
  }

  private onConnection(b: BoundListener, socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const accepting = b.config;
    const snapshot = this.rt.config.current;
    const local: SocketAddress = { address: stripV4Mapped(socket.localAddress ?? ''), port: socket.localPort ?? 0 };
    const dst = accepting.originalDstFilter ? this.resolveOriginalDst(socket) : local;

    // useOriginalDst: the listener owning the original destination takes the connection.
    let listener = accepting;
    if (accepting.useOriginalDst) {
      const owner = snapshot.listenersByAddress.get(addressKey(dst.address, dst.port))
        ?? snapshot.listenersByAddress.get(addressKey('0.0.0.0', dst.port));
      if (owner && owner !== accepting) listener = owner;
    }
    this.rt.stats.inc(`listener.${listener.name}.downstream_cx_total`);
    const source: SocketAddress = { address: stripV4Mapped(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 };
    const needs = inspectionNeeds(listener);
    const acceptingNeeds = inspectionNeeds(accepting);
    const opts = {
      tls: needs.tls || acceptingNeeds.tls, http: needs.http || acceptingNeeds.http,
      timeoutMs: accepting.listenerFiltersTimeoutMs, continueOnTimeout: accepting.continueOnListenerFiltersTimeout,
    };
    if (!opts.tls && !opts.http) {
      this.dispatch(listener, accepting, socket, { destination: dst, source });
      return;
    }
    void inspect(socket, opts).then((detected) => {
      if (!detected) {
        this.rt.stats.inc(`listener.${listener.name}.downstream_listener_filter_error`);
        socket.destroy();
        return;
      }
      this.dispatch(listener, accepting, socket, { destination: dst, source, ...detected });
    });
  }

  /** Chooses the chain, terminates TLS if the chain asks for it, then runs the network filters. */
  private dispatch(listener: ListenerConfig, accepting: ListenerConfig, socket: net.Socket, info: ConnectionMatchInfo): void {
    const chain = selectFilterChain(listener, info);
    if (!chain) {
      this.rt.stats.inc(`listener.${listener.name}.no_filter_chain_match`);
      socket.destroy();
      return;
    }
    const ctx: ConnectionContext = {
      listener,
      chain,
      direction: directionOf(listener, accepting),
      originalDst: info.destination,
      downstreamRemote: `${info.source?.address ?? ''}:${info.source?.port ?? 0}`,
    };
    if (!chain.tls) {
      this.runFilters(chain, socket, ctx);
      // The inspectors paused the socket to put the peeked bytes back: let them flow now.
      if (socket.isPaused()) socket.resume();
      return;
    }
    let pending: ReturnType<typeof terminateTls>;
    try {
      pending = terminateTls(socket, chain.tls, this.rt.secrets, info.applicationProtocols ?? [], info.serverName, HANDSHAKE_TIMEOUT_MS);
    } catch (e) {
      this.rt.log(`listener ${listener.name} chain ${chain.name}: ${(e as Error).message}`);
      socket.destroy();
      return;
    }
    pending.then(({ socket: secure, peer }) => {
      this.rt.stats.inc(`listener.${listener.name}.ssl.handshake`);
      secure.on('error', () => secure.destroy());
      this.runFilters(chain, secure, { ...ctx, downstreamTls: peer });
    }, (err: Error) => {
      this.rt.stats.inc(`listener.${listener.name}.ssl.connection_error`);
      this.rt.log(`listener ${listener.name} chain ${chain.name}: TLS from ${ctx.downstreamRemote}: ${err.message}`);
    });
  }

  private runFilters(chain: FilterChain, socket: net.Socket, ctx: ConnectionContext): void {
    // Network RBAC runs once per connection, before the terminal filter: a denial closes it.
    if (chain.networkRbac.length > 0) {
      // Envoy's network RBAC counters: `<stat_prefix>rbac.denied` of the filter that decided.
      const denied = runRbac(chain.networkRbac, connectionAttributes(ctx));
      if (denied) {
        this.rt.stats.inc(`${denied.filter.statPrefix}rbac.denied`);
        socket.destroy();
        return;
      }
      for (const f of chain.networkRbac) this.rt.stats.inc(`${f.statPrefix}rbac.allowed`);
    }
    const { state, stale } = this.chainState(chain);
    if (chain.filter.kind === 'tcp') {
      state.tcp.add(socket);
      socket.once('close', () => state.tcp.delete(socket));
      proxyTcp(socket, chain.filter, ctx, this.rt);
      if (stale) this.drainChain(state);
      return;
    }
    state.hcm ??= new HttpConnectionManager(chain.filter, this.rt);
    // Drained before the connection arrives: nothing idle is closed, its response is the last.
    if (stale) this.drainChain(state);
    state.hcm.handle(socket, ctx);
  }

  /**
   * Stops accepting new connections on the listeners of the given directions (Envoy's drain):
   * accepted connections keep running; the listeners stay closed until the process ends.
   */
  async stopAccepting(directions: ReadonlySet<Direction>): Promise<string[]> {
    const closed: string[] = [];
    const work: Promise<void>[] = [];
    const chains: ChainState[] = [];
    for (const [name, b] of this.bound) {
      if (!directions.has(directionOf(b.config, b.config))) continue;
      this.bound.delete(name);
      this.stopped.add(name);
      closed.push(name);
      work.push(new Promise((resolve) => b.server.close(() => resolve())));
      for (const fc of [...b.config.filterChains, ...(b.config.defaultFilterChain ? [b.config.defaultFilterChain] : [])]) { const st = this.chains.get(fc.configHash); if (st) chains.push(st); }
    }
    // close() resolves only when every accepted connection is gone; do not wait for that.
    void Promise.all(work);
    // Envoy's HCM drain_timeout: requests arriving meanwhile are answered with Connection:
    // close; then idle keep-alive connections are ended while the process (and the pod's
    // network) is certainly still there, so their clients learn it. A FIN sent only at exit
    // can be lost with the pod's network, leaving clients a dead pooled connection (the e2e
    // restart flake).
    for (const st of chains) st.hcm?.lastResponses();
    setTimeout(() => { for (const st of chains) st.hcm?.drain(); }, DRAIN_TIMEOUT_MS).unref();
    return closed;
  }

  /** Name, address and state of each listener, for the admin /listeners page. */
  describe(): Array<{ name: string; address: string; state: 'active' | 'draining' }> {
    const out: Array<{ name: string; address: string; state: 'active' | 'draining' }> = [];
    for (const b of this.bound.values()) out.push({ name: b.name, address: `${b.config.address.address}:${b.port}`, state: 'active' });
    for (const name of this.stopped) out.push({ name, address: '', state: 'draining' });
    return out;
  }

  async close(): Promise<void> {
    const servers = [...this.bound.values()].map((b) => b.server);
    this.bound.clear();
    for (const s of this.sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

function directionOf(listener: ListenerConfig, accepting: ListenerConfig): Direction {
  for (const l of [listener, accepting]) {
    if (l.direction === 'INBOUND') return 'inbound';
    if (l.direction === 'OUTBOUND') return 'outbound';
  }
  return accepting.name === 'virtualInbound' ? 'inbound' : 'outbound';
}
