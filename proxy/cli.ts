#!/usr/bin/env node
// The proxy image's entry point (trellis/proxyv2):
//   proxy sidecar              run the sidecar (config from the environment)
//   proxy router               run a gateway: no interception, listeners bound to their ports
//   istio-iptables <flags>     write the interception rules in this network namespace
//   cleanup                    remove them (also: istio-clean-iptables)
import { bootstrapFromEnv } from './config/bootstrap.js';
import { Sidecar } from './sidecar.js';
import { certManagerFromEnv, xdsTlsFromEnv } from './security/from-env.js';
import { parseInterceptionFlags } from './interception/iptables-rules.js';
import { applyInterception, removeInterception } from './interception/iptables.js';
import { validateRedirection } from './interception/validate.js';
import { legacyLocalhostFromEnv, parseAppProbers } from './health/app-probes.js';

const USAGE = `usage:
  cli.js proxy sidecar|router
  cli.js istio-iptables [-p 15001] [-z 15006] [-u 1337] [-g 1337] [-m REDIRECT] [-i '*'] [-x ''] [-b '*'] [-d '15090,15021,15020,15000'] [-o ''] [--iptables-backend legacy|nft] [--run-validation]
  cli.js cleanup`;

async function runSidecar(nodeType: 'sidecar' | 'router'): Promise<void> {
  const boot = bootstrapFromEnv();
  // Admin ports may be moved (tests, or two proxies in one network namespace); Istio's by default.
  const port = (name: string, fallback: number): number => {
    const v = process.env[name];
    return v !== undefined && v !== '' && Number.isInteger(Number(v)) ? Number(v) : fallback;
  };
  const sidecar = new Sidecar({
    pilotAddress: boot.pilotAddress,
    // With CA settings, xDS goes over TLS with the ServiceAccount token (pilot's 15012).
    xdsTls: xdsTlsFromEnv(),
    identity: boot.identity,
    deltaXds: boot.deltaXds,
    // Istio's metric_expiry_duration, in seconds (0 = never expire).
    metricExpiryMs: process.env.TRELLIS_METRIC_EXPIRY_SECONDS !== undefined ? Number(process.env.TRELLIS_METRIC_EXPIRY_SECONDS) * 1000 : undefined,
    ports: { admin: port('PROXY_ADMIN_PORT', 15000), prometheus: port('PROXY_PROMETHEUS_PORT', 15090), readiness: port('PROXY_READINESS_PORT', 15021) },
    // With CA_ADDR set (the injector sets it), the proxy obtains its SPIFFE certificate first.
    certificates: certManagerFromEnv(),
    nodeType,
    appProbes: parseAppProbers(process.env.ISTIO_KUBE_APP_PROBERS),
    legacyLocalhostProbes: legacyLocalhostFromEnv(),
  });
  await sidecar.start();
  process.stderr.write(`trellis-proxy: ${nodeType} for ${boot.identity.podName}.${boot.identity.namespace} started, xDS at ${boot.pilotAddress}\n`);
  const shutdown = (signal: string): void => {
    process.stderr.write(`trellis-proxy: ${signal}, shutting down\n`);
    sidecar.stop().then(() => process.exit(0), () => process.exit(1));
  };
  // SIGTERM: stop taking inbound connections, tell keep-alive clients to leave, keep outbound
  // working while the app finishes (Istio's terminationDrainDuration), then exit 0.
  const drainSeconds = Number(process.env.TERMINATION_DRAIN_DURATION_SECONDS ?? 5);
  process.once('SIGTERM', () => {
    const seconds = Number.isFinite(drainSeconds) && drainSeconds >= 0 ? drainSeconds : 5;
    process.stderr.write(`trellis-proxy: SIGTERM, draining inbound for ${seconds}s\n`);
    void sidecar.drain(['inbound']).finally(() => setTimeout(() => shutdown('drain complete'), seconds * 1000));
  });
  process.once('SIGINT', () => shutdown('SIGINT'));
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'proxy':
      if (rest[0] !== 'sidecar' && rest[0] !== 'router') throw new Error(`unknown proxy mode "${rest[0] ?? ''}" (sidecar or router)\n${USAGE}`);
      await runSidecar(rest[0]);
      return;
    case 'istio-iptables': {
      const cfg = parseInterceptionFlags(rest);
      const applied = applyInterception(cfg);
      process.stdout.write(`istio-iptables: applied with iptables-${applied.backend.backend} (${applied.backend.reason})${applied.replacedJumps ? `, replacing ${applied.replacedJumps} existing jumps` : ''}\n${applied.rules}`);
      if (cfg.runValidation) {
        const v = await validateRedirection(cfg);
        if (v.ok) process.stdout.write(`istio-iptables: validation passed: a connection to ${v.target} arrived at the capture port ${cfg.outboundPort}\n`);
        else if (v.skipped) process.stdout.write(`istio-iptables: validation skipped: ${v.skipped}\n`);
        else throw new Error(`validation failed: ${v.error}; traffic would bypass the proxy`);
      }
      return;
    }
    case 'cleanup':
    case 'istio-clean-iptables':
      removeInterception();
      process.stdout.write('istio-iptables: rules removed\n');
      return;
    default:
      throw new Error(`unknown command "${cmd ?? ''}"\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`trellis-proxy: ${err.message}\n`);
  process.exit(1);
});
