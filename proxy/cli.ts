#!/usr/bin/env node
// The proxy image's entry point (trellis/proxyv2):
//   proxy sidecar              run the sidecar (config from the environment)
//   istio-iptables <flags>     write the interception rules in this network namespace
//   cleanup                    remove them (also: istio-clean-iptables)
import { bootstrapFromEnv } from './config/bootstrap.js';
import { Sidecar } from './sidecar.js';
import { parseInterceptionFlags } from './interception/iptables-rules.js';
import { applyInterception, removeInterception } from './interception/iptables.js';

const USAGE = `usage:
  cli.js proxy sidecar
  cli.js istio-iptables [-p 15001] [-z 15006] [-u 1337] [-g 1337] [-m REDIRECT] [-i '*'] [-x ''] [-b '*'] [-d '15090,15021,15020,15000'] [-o '']
  cli.js cleanup`;

async function runSidecar(): Promise<void> {
  const boot = bootstrapFromEnv();
  const sidecar = new Sidecar({ pilotAddress: boot.pilotAddress, identity: boot.identity });
  await sidecar.start();
  process.stderr.write(`trellis-proxy: sidecar for ${boot.identity.podName}.${boot.identity.namespace} started, xDS at ${boot.pilotAddress}\n`);
  const shutdown = (signal: string): void => {
    process.stderr.write(`trellis-proxy: ${signal}, shutting down\n`);
    sidecar.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'proxy':
      if (rest[0] !== 'sidecar') throw new Error(`unknown proxy mode "${rest[0] ?? ''}" (only sidecar)\n${USAGE}`);
      await runSidecar();
      return;
    case 'istio-iptables': {
      const rules = applyInterception(parseInterceptionFlags(rest));
      process.stdout.write(`istio-iptables: applied\n${rules}`);
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
