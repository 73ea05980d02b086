// Builds the nat rules that steer a pod's TCP traffic through the sidecar, following
// Istio's istio-iptables (REDIRECT mode). Pure: flags in, iptables-restore text out.

export interface InterceptionConfig {
  /** -p: port all outbound traffic is redirected to. */
  outboundPort: number;
  /** -z: port all inbound traffic is redirected to. */
  inboundPort: number;
  /** -u: the proxy's UID; its traffic is never captured. */
  proxyUid: string;
  /** -g: the proxy's GID; its traffic is never captured. */
  proxyGid: string;
  /** -m: only REDIRECT is supported. */
  mode: 'REDIRECT';
  /** -i: outbound destination CIDRs to capture; ['*'] means all. */
  outboundIncludeCidrs: string[];
  /** -x: outbound destination CIDRs never captured. */
  outboundExcludeCidrs: string[];
  /** -b: inbound destination ports to capture; ['*'] means all. */
  inboundIncludePorts: string[];
  /** -d: inbound destination ports never captured. */
  inboundExcludePorts: string[];
  /** -o: outbound destination ports never captured. */
  outboundExcludePorts: string[];
  /** --iptables-backend legacy|nft: skip detection (else $IPTABLES_BACKEND, else detected). */
  backend?: 'legacy' | 'nft';
  /** --run-validation: after writing the rules, check that a connection is really redirected. */
  runValidation: boolean;
}

export const CHAINS = ['ISTIO_INBOUND', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT', 'ISTIO_REDIRECT'] as const;

/** The jumps from built-in chains into ours; kept in one place so cleanup removes exactly these. */
export const JUMPS = [
  ['PREROUTING', '-p', 'tcp', '-j', 'ISTIO_INBOUND'],
  ['OUTPUT', '-p', 'tcp', '-j', 'ISTIO_OUTPUT'],
] as const;

export function defaultInterceptionConfig(): InterceptionConfig {
  return {
    outboundPort: 15001,
    inboundPort: 15006,
    proxyUid: '1337',
    proxyGid: '1337',
    mode: 'REDIRECT',
    outboundIncludeCidrs: ['*'],
    outboundExcludeCidrs: [],
    inboundIncludePorts: ['*'],
    inboundExcludePorts: ['15090', '15021', '15020', '15000'],
    outboundExcludePorts: [],
    runValidation: false,
  };
}

function list(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

const PORT = /^\d{1,5}$/;
const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(\/(\d{1,2}))?$/;

function checkPort(flag: string, value: string): void {
  if (!PORT.test(value) || Number(value) < 1 || Number(value) > 65535) {
    throw new Error(`istio-iptables: ${flag}: "${value}" is not a port`);
  }
}

function checkCidr(flag: string, value: string): void {
  const m = CIDR.exec(value);
  const ok = m !== null && m.slice(1, 5).every((o) => Number(o) <= 255) && (m[6] === undefined || Number(m[6]) <= 32);
  if (!ok) throw new Error(`istio-iptables: ${flag}: "${value}" is not an IPv4 CIDR (IPv6 is not supported yet)`);
}

/** Parses istio-iptables style flags (-p 15001 or --proxy-port=15001). */
export function parseInterceptionFlags(argv: string[]): InterceptionConfig {
  const cfg = defaultInterceptionConfig();
  const long: Record<string, string> = {
    '--proxy-port': '-p', '--inbound-capture-port': '-z', '--proxy-uid': '-u', '--proxy-gid': '-g',
    '--istio-inbound-interception-mode': '-m', '--istio-service-cidr': '-i', '--istio-service-exclude-cidr': '-x',
    '--istio-inbound-ports': '-b', '--istio-local-exclude-ports': '-d', '--istio-local-outbound-ports-exclude': '-o',
  };
  for (let i = 0; i < argv.length; i++) {
    let flag = argv[i];
    if (flag === '--run-validation') { cfg.runValidation = true; continue; }
    let value: string | undefined;
    const eq = flag.indexOf('=');
    if (flag.startsWith('--') && eq > 0) {
      value = flag.slice(eq + 1);
      flag = flag.slice(0, eq);
    }
    flag = long[flag] ?? flag;
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new Error(`istio-iptables: ${flag} needs a value`);
    }
    switch (flag) {
      case '-p': checkPort(flag, value); cfg.outboundPort = Number(value); break;
      case '-z': checkPort(flag, value); cfg.inboundPort = Number(value); break;
      case '-u': if (!/^\d+$/.test(value)) throw new Error(`istio-iptables: -u: "${value}" is not a UID`); cfg.proxyUid = value; break;
      case '-g': if (!/^\d+$/.test(value)) throw new Error(`istio-iptables: -g: "${value}" is not a GID`); cfg.proxyGid = value; break;
      case '-m':
        if (value !== 'REDIRECT') throw new Error(`istio-iptables: -m: mode "${value}" is not supported (only REDIRECT)`);
        cfg.mode = 'REDIRECT';
        break;
      case '-i': cfg.outboundIncludeCidrs = list(value); cfg.outboundIncludeCidrs.forEach((c) => c === '*' || checkCidr(flag, c)); break;
      case '-x': cfg.outboundExcludeCidrs = list(value); cfg.outboundExcludeCidrs.forEach((c) => checkCidr(flag, c)); break;
      case '-b': cfg.inboundIncludePorts = list(value); cfg.inboundIncludePorts.forEach((p) => p === '*' || checkPort(flag, p)); break;
      case '-d': cfg.inboundExcludePorts = list(value); cfg.inboundExcludePorts.forEach((p) => checkPort(flag, p)); break;
      case '--iptables-backend':
        if (value !== 'legacy' && value !== 'nft') throw new Error(`istio-iptables: --iptables-backend: "${value}" is not an iptables backend (legacy or nft)`);
        cfg.backend = value;
        break;
      case '-o': cfg.outboundExcludePorts = list(value); cfg.outboundExcludePorts.forEach((p) => checkPort(flag, p)); break;
      default: throw new Error(`istio-iptables: unknown flag ${flag}`);
    }
  }
  return cfg;
}

/** The nat table as iptables-restore input (applied with --noflush, so only our chains change). */
export function buildNatRules(cfg: InterceptionConfig): string {
  const r: string[] = ['*nat'];
  for (const chain of CHAINS) r.push(`:${chain} - [0:0]`);

  // Inbound: everything to the pod goes to the inbound capture port, except excluded ports.
  r.push(`-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports ${cfg.inboundPort}`);
  if (cfg.inboundIncludePorts.length > 0) {
    r.push(`-A ${JUMPS[0].join(' ')}`);
    if (cfg.inboundIncludePorts.includes('*')) {
      for (const port of cfg.inboundExcludePorts) r.push(`-A ISTIO_INBOUND -p tcp --dport ${port} -j RETURN`);
      r.push('-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT');
    } else {
      for (const port of cfg.inboundIncludePorts) {
        if (!cfg.inboundExcludePorts.includes(port)) r.push(`-A ISTIO_INBOUND -p tcp --dport ${port} -j ISTIO_IN_REDIRECT`);
      }
    }
  }

  // Outbound.
  r.push(`-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports ${cfg.outboundPort}`);
  r.push(`-A ${JUMPS[1].join(' ')}`);
  for (const port of cfg.outboundExcludePorts) r.push(`-A ISTIO_OUTPUT -p tcp --dport ${port} -j RETURN`);
  // Traffic from Envoy-style inbound passthrough source address: never re-captured.
  r.push('-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN');
  for (const [match, id] of [['--uid-owner', cfg.proxyUid], ['--gid-owner', cfg.proxyGid]] as const) {
    // The proxy calling its own pod IP (it goes out on lo): treat it as inbound so the
    // request passes the inbound chain once, like a call from any other pod.
    r.push(`-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner ${match} ${id} -j ISTIO_IN_REDIRECT`);
    // The app calling itself over lo: not captured.
    r.push(`-A ISTIO_OUTPUT -o lo -m owner ! ${match} ${id} -j RETURN`);
    // The proxy's own outbound connections: not captured, or they would loop.
    r.push(`-A ISTIO_OUTPUT -m owner ${match} ${id} -j RETURN`);
  }
  r.push('-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN');
  for (const cidr of cfg.outboundExcludeCidrs) r.push(`-A ISTIO_OUTPUT -d ${cidr} -j RETURN`);
  if (cfg.outboundIncludeCidrs.includes('*')) {
    r.push('-A ISTIO_OUTPUT -j ISTIO_REDIRECT');
  } else {
    for (const cidr of cfg.outboundIncludeCidrs) r.push(`-A ISTIO_OUTPUT -d ${cidr} -j ISTIO_REDIRECT`);
  }
  r.push('COMMIT');
  return r.join('\n') + '\n';
}
