// Mesh security end to end through a real `trellis up` (no sample): automatic mTLS between
// sidecars, a STRICT PeerAuthentication refusing a client without a sidecar while a meshed
// client gets through and the server's (rewritten) readiness probes keep passing, the
// certificate the server's proxy presents verifying against the mesh root with the workload's
// SPIFFE identity, an AuthorizationPolicy allowing one service account and denying another with
// 403 `RBAC: access denied`, and the injector's opt-out label. Also: a capture on the pod
// network shows no plaintext between sidecars (while a plaintext control request is seen);
// workload certificates with a 12 s TTL rotate under steady traffic without a failed request;
// an app listening only on its pod IP passes its probes through the sidecar; and with the
// injector down, only pods that asked for injection are refused.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Applier, KubeClient, R, parseManifests, type ConfigMap, type KubeObject, type Pod, type Service } from '../../api/kube/index.js';
import { trellisHome } from '../../cli/paths.js';
import { hasCommand, leftovers, networkSkipReason } from '../support/host.js';

const PREFIX = 'tse';
const POD_CIDR = '10.248.0.0/16';
const SERVICE_CIDR = '10.100.0.0/16';
const API_PORT = 16448;
const MESHED = 'tse-mesh';
const ROTATION_TTL = '12s';
const PLAIN = 'tse-plain';
const skip = networkSkipReason() ?? (['openssl', 'tcpdump', 'kubectl'].find((c) => !hasCommand(c)) ? 'needs openssl, tcpdump and kubectl' : undefined);

interface Fanout { total: number; ok: number; errors: number; byStatus: Record<string, number>; errorSamples?: string[] }

const app = (name: string, ns: string, image: string, extra: string, sa = 'default'): string => `
apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${ns}
  labels:
    app: ${name}
${extra}
spec:
  serviceAccountName: ${sa}
  containers:
  - name: app
    image: ${image}
    ports:
    - name: http
      containerPort: 8080
    env:
    - name: PORT
      value: "8080"
    - name: SERVICE_NAME
      value: ${name}
    - name: VERSION
      value: v1
    readinessProbe:
      httpGet:
        path: /healthz
        port: 8080
      periodSeconds: 2
`;

const MANIFESTS = `
apiVersion: v1
kind: Namespace
metadata:
  name: ${MESHED}
  labels:
    istio-injection: enabled
---
apiVersion: v1
kind: Namespace
metadata:
  name: ${PLAIN}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: web
  namespace: ${MESHED}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: sa-a
  namespace: ${MESHED}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: sa-b
  namespace: ${MESHED}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: ${MESHED}
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 8080
---
${app('web', MESHED, 'trellis/sample-http:0.1.0', '', 'web')}
---
${app('client', MESHED, 'trellis/sample-client:0.1.0', '    role: caller', 'sa-a')}
---
${app('client-b', MESHED, 'trellis/sample-client:0.1.0', '    role: caller', 'sa-b')}
---
${app('client', PLAIN, 'trellis/sample-client:0.1.0', '')}
---
${app('opted-out', MESHED, 'trellis/sample-http:0.1.0', '    sidecar.istio.io/inject: "false"')}
---
# Short-lived workload certificates (Istio's agent SECRET_TTL through proxyMetadata): rotated
# at half-life, every ~6 s.
apiVersion: v1
kind: Service
metadata:
  name: rot
  namespace: ${MESHED}
spec:
  selector:
    app: rot
  ports:
  - name: http
    port: 80
    targetPort: 8080
---
${app('rot', MESHED, 'trellis/sample-http:0.1.0', `  annotations:
    proxy.istio.io/config: '{"proxyMetadata": {"SECRET_TTL": "${ROTATION_TTL}"}}'`)}
---
# Listens only on its pod IP (HOST): its readiness probe passes only if the sidecar forwards
# the rewritten probe to the pod IP, as Istio's agent does, not to 127.0.0.1.
${app('bound', MESHED, 'trellis/sample-http:0.1.0', '').replace(`    - name: VERSION`, `    - name: HOST
      valueFrom:
        fieldRef:
          fieldPath: status.podIP
    - name: VERSION`)}
`;

const STRICT = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: ${MESHED}
spec:
  mtls:
    mode: STRICT
---
# The test drives the meshed clients' /fanout from the host, which has no sidecar: a
# workload-level policy overrides the namespace's STRICT for them only (web stays STRICT).
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: callers-permissive
  namespace: ${MESHED}
spec:
  selector:
    matchLabels:
      role: caller
  mtls:
    mode: PERMISSIVE
`;

// Only workloads running as sa-a may call web.
const ALLOW_SA_A = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: web-from-a
  namespace: ${MESHED}
spec:
  selector:
    matchLabels:
      app: web
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/${MESHED}/sa/sa-a"]
`;

const isReady = (p: Pod | undefined): boolean => !!p?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('mesh security end to end: mTLS, STRICT, workload certificates, injection opt-out', { skip, timeout: 300_000 }, () => {
  const home = trellisHome();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-sec-'));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-sec-certs-'));
  let up: ChildProcess | undefined;
  let output = '';
  let client: KubeClient;
  const ip: Record<string, string> = {};

  before(async () => {
    up = spawn(process.execPath, [path.join(home, 'dist/cli/trellis.js'), 'up', '--data-dir', dataDir, '--name', PREFIX,
      '--port', String(API_PORT), '--pod-cidr', POD_CIDR, '--service-cidr', SERVICE_CIDR, '--no-sample'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const proc = up;
    proc.stdout?.on('data', (d: Buffer) => { output += d.toString(); });
    proc.stderr?.on('data', (d: Buffer) => { output += d.toString(); });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`trellis up not READY after 240 s:\n${output.slice(-6000)}`)), 240_000);
      proc.stdout?.on('data', () => { if (output.includes('READY')) { clearTimeout(timer); resolve(); } });
      proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`trellis up exited with ${code}:\n${output.slice(-6000)}`)); });
    });
    client = KubeClient.fromKubeconfig(path.join(dataDir, 'kubeconfig'), 'e2e-security');
    await new Applier(client).applyAll(parseManifests(MANIFESTS, 'security e2e manifests'));
    const deadline = Date.now() + 120_000;
    for (;;) {
      // `bound` is left to its own case: its readiness is what that case checks.
      const pods = [...(await client.list<Pod>(R.pods, { namespace: MESHED })).items, ...(await client.list<Pod>(R.pods, { namespace: PLAIN })).items]
        .filter((p) => p.metadata.name !== 'bound');
      if (pods.length === 6 && pods.every(isReady)) {
        for (const p of pods) ip[`${p.metadata.namespace}/${p.metadata.name}`] = p.status?.podIP ?? '';
        break;
      }
      if (Date.now() > deadline) {
        // What the stuck pods' containers say (the data dir goes away with the cluster).
        const why = pods.filter((p) => !isReady(p)).map((p) => {
          const logs = ['istio-init', 'istio-proxy', 'app'].map((c) => spawnSync('kubectl', ['--kubeconfig', path.join(dataDir, 'kubeconfig'), 'logs', '-n', p.metadata.namespace ?? '', p.metadata.name ?? '', '-c', c, '--tail', '15'], { encoding: 'utf8', timeout: 10_000 }))
            .map((r, i) => `--- ${['istio-init', 'istio-proxy', 'app'][i]}: ${r.stdout}${r.stderr}`).join('\n');
          return `${p.metadata.namespace}/${p.metadata.name}: ${JSON.stringify(p.status)}\n${logs}`;
        }).join('\n');
        throw new Error(`pods not ready: ${pods.map((p) => `${p.metadata.namespace}/${p.metadata.name}:${p.status?.phase}`).join(' ')}\n${why}\n${output.slice(-3000)}`);
      }
      await sleep(500);
    }
    // Ready pods are not yet pushed to the meshed client's sidecar: wait until it reaches web.
    const converged = Date.now() + 30_000;
    for (;;) {
      const probe = await fanout(`${MESHED}/client`, 'http://web/', 5).catch(() => undefined);
      if (probe?.ok === 5) break;
      if (Date.now() > converged) throw new Error(`the meshed client never reached web: ${JSON.stringify(probe)}`);
      await sleep(500);
    }
  });

  after(async () => {
    if (up && up.exitCode === null) {
      up.kill('SIGINT');
      await new Promise((r) => { const t = setTimeout(r, 60_000); up?.once('exit', () => { clearTimeout(t); r(undefined); }); });
      if (up.exitCode === null) up.kill('SIGKILL');
    }
    // Also after a failure: nothing with the prefix may stay on the machine.
    try { execFileSync(process.execPath, [path.join(home, 'dist/cli/trellis.js'), 'down', '--purge', '--name', PREFIX], { stdio: 'ignore' }); } catch { /* reported by the last case */ }
    await client?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** Asks a sample-client pod (reached from the host, plaintext) to send n GETs to url. */
  async function fanout(from: string, url: string, n: number): Promise<Fanout> {
    const res = await fetch(`http://${ip[from]}:8080/fanout?url=${encodeURIComponent(url)}&n=${n}&concurrency=1`);
    assert.equal(res.status, 200, `fanout from ${from}`);
    return (await res.json()) as Fanout;
  }

  /** Requests web's sidecar counted inbound over mTLS from the meshed client's SPIFFE identity. */
  async function mutualTlsFromClient(): Promise<number> {
    const text = await (await fetch(`http://${ip[`${MESHED}/web`]}:15090/stats/prometheus`)).text();
    let n = 0;
    for (const line of text.split('\n')) {
      if (line.startsWith('istio_requests_total{') && line.includes('reporter="destination"') && line.includes('connection_security_policy="mutual_tls"')
        && line.includes(`source_principal="spiffe://cluster.local/ns/${MESHED}/sa/sa-a"`)) n += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return n;
  }

  /** The named network namespace holding a pod IP (the kubelet names them `<prefix>-<hash>`). */
  function netnsOf(podIP: string): string {
    for (const line of execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n')) {
      const name = line.split(' ')[0];
      if (!name.startsWith(`${PREFIX}-`)) continue;
      const addrs = spawnSync('ip', ['-n', name, '-o', '-4', 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' }).stdout ?? '';
      if (addrs.includes(` ${podIP}/`)) return name;
    }
    throw new Error(`no ${PREFIX}- network namespace holds ${podIP}`);
  }

  /** The host side of a pod's veth: the link whose index eth0 in the pod names as its peer. */
  function hostVethOf(podIP: string): string {
    const ns = netnsOf(podIP);
    const eth0 = execFileSync('ip', ['-n', ns, '-o', 'link', 'show', 'dev', 'eth0'], { encoding: 'utf8' });
    const peer = /eth0@if(\d+)/.exec(eth0)?.[1];
    assert.ok(peer, `eth0 in ${ns} names its peer: ${eth0}`);
    for (const line of execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).split('\n')) {
      const m = /^(\d+): ([^:@]+)/.exec(line);
      if (m?.[1] === peer) return m[2];
    }
    throw new Error(`no host link with index ${peer} (the peer of ${podIP}'s eth0)`);
  }

  /** The certificate a pod's sidecar presents now, seen from the plain client's netns (async: traffic runs meanwhile). */
  async function servedCert(podIP: string): Promise<{ serial: string; notAfter: Date }> {
    const ns = netnsOf(ip[`${PLAIN}/client`]);
    const out = await new Promise<string>((resolve) => {
      const p = spawn('ip', ['netns', 'exec', ns, 'openssl', 's_client', '-connect', `${podIP}:8080`], { stdio: ['pipe', 'pipe', 'ignore'] });
      let text = '';
      p.stdout.on('data', (d: Buffer) => { text += d.toString(); });
      const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
      p.on('close', () => { clearTimeout(timer); resolve(text); });
      p.stdin.end();
    });
    const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out)?.[0];
    assert.ok(pem, `s_client saw ${podIP}'s certificate:\n${out}`);
    const x509 = spawnSync('openssl', ['x509', '-noout', '-serial', '-enddate'], { input: pem, encoding: 'utf8' }).stdout;
    const serial = /serial=(\S+)/.exec(x509)?.[1];
    const end = /notAfter=(.+)/.exec(x509)?.[1];
    assert.ok(serial && end, `openssl x509: ${x509}`);
    return { serial, notAfter: new Date(end) };
  }

  /** `kubectl create -f -` as a user would run it. */
  function kubectlCreate(manifest: string): { status: number | null; out: string } {
    const r = spawnSync('kubectl', ['--kubeconfig', path.join(dataDir, 'kubeconfig'), 'create', '-f', '-'], { input: manifest, encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
  }

  async function injectorAddresses(): Promise<number> {
    const ep = await client.find<KubeObject & { subsets?: { addresses?: unknown[] }[] }>(R.endpoints, 'trellis-injector', 'trellis-system');
    return (ep?.subsets ?? []).reduce((n, sub) => n + (sub.addresses?.length ?? 0), 0);
  }

  it('does not inject a pod labelled sidecar.istio.io/inject=false in an injected namespace', async () => {
    const opted = await client.get<Pod>(R.pods, 'opted-out', MESHED);
    const names = [...(opted.spec.initContainers ?? []), ...opted.spec.containers].map((c) => c.name);
    assert.deepEqual(names, ['app'], 'only the app container');
    assert.equal(opted.metadata.labels?.['security.istio.io/tlsMode'], undefined, 'no tlsMode label');
    const web = await client.get<Pod>(R.pods, 'web', MESHED);
    assert.ok((web.spec.initContainers ?? []).some((c) => c.name === 'istio-proxy'), 'the web pod next to it is injected');
    assert.equal(web.metadata.labels?.['security.istio.io/tlsMode'], 'istio', 'and labelled for automatic mTLS');
  });

  it('the server proxy presents a workload certificate that verifies against the mesh root with the SPIFFE identity of its service account', async () => {
    const cm = await client.get<ConfigMap>(R.configMaps, 'istio-ca-root-cert', MESHED);
    const root = cm.data?.['root-cert.pem'];
    assert.ok(root, `ConfigMap ${MESHED}/istio-ca-root-cert has root-cert.pem`);
    fs.writeFileSync(path.join(work, 'root.pem'), root);
    // From inside the plain client's network namespace, like any pod on the network. The
    // tls_inspector sends the TLS ClientHello to the mTLS chain; the server asks for a client
    // certificate we do not have, but its own chain is on the wire before that.
    const ns = netnsOf(ip[`${PLAIN}/client`]);
    const sc = spawnSync('ip', ['netns', 'exec', ns, 'openssl', 's_client', '-connect', `${ip[`${MESHED}/web`]}:8080`, '-showcerts'],
      { input: '', encoding: 'utf8', timeout: 20_000 });
    const pems = (sc.stdout ?? '').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    assert.ok(pems.length >= 1, `s_client saw the server's certificate chain:\n${sc.stdout}\n${sc.stderr}`);
    fs.writeFileSync(path.join(work, 'leaf.pem'), `${pems[0]}\n`);
    const args = ['verify', '-CAfile', path.join(work, 'root.pem')];
    if (pems.length > 1) {
      fs.writeFileSync(path.join(work, 'chain.pem'), `${pems.slice(1).join('\n')}\n`);
      args.push('-untrusted', path.join(work, 'chain.pem'));
    }
    const verify = spawnSync('openssl', [...args, path.join(work, 'leaf.pem')], { encoding: 'utf8' });
    assert.equal(verify.status, 0, `openssl verify: ${verify.stdout}${verify.stderr}`);
    assert.match(verify.stdout, /leaf\.pem: OK/);
    const san = execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-in', path.join(work, 'leaf.pem')], { encoding: 'utf8' });
    assert.match(san, new RegExp(`URI:spiffe://cluster\\.local/ns/${MESHED}/sa/web(\\s|$)`), san);
    // A certificate from another CA must not verify: the check above can fail.
    const other = spawnSync('openssl', ['verify', '-CAfile', path.join(work, 'leaf.pem'), path.join(work, 'root.pem')], { encoding: 'utf8' });
    assert.notEqual(other.status, 0, 'the root does not verify against the leaf');
  });

  it('a capture on the pod network shows no plaintext between sidecars, while plaintext from a pod without a sidecar is seen', async () => {
    const veth = hostVethOf(ip[`${MESHED}/web`]);
    const pcap = path.join(work, 'web.pcap');
    const meshMarker = `meshmark${Date.now().toString(36)}q`;
    const plainMarker = `plainmark${Date.now().toString(36)}q`;
    // --immediate-mode: packets reach the file as they arrive, not when a kernel block fills.
    const dump = spawn('tcpdump', ['-i', veth, '--immediate-mode', '-U', '-s', '0', '-w', pcap, 'tcp'], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      await new Promise<void>((resolve, reject) => {
        let err = '';
        const timer = setTimeout(() => reject(new Error(`tcpdump on ${veth} did not start: ${err}`)), 15_000);
        dump.stderr.on('data', (d: Buffer) => { err += d.toString(); if (err.includes('listening on')) { clearTimeout(timer); resolve(); } });
        dump.once('exit', (code) => { clearTimeout(timer); reject(new Error(`tcpdump exited with ${code}: ${err}`)); });
      });
      const mtlsBefore = await mutualTlsFromClient();
      const meshed = await fanout(`${MESHED}/client`, `http://web/${meshMarker}`, 20);
      assert.equal(meshed.ok, 20, `sidecar to sidecar: ${JSON.stringify(meshed)}`);
      const mtls = await mutualTlsFromClient() - mtlsBefore;
      assert.ok(mtls >= 20, `the 20 requests crossed web's veth into its sidecar over mutual TLS (counted ${mtls})`);
      // The control: web is PERMISSIVE, so a client without a sidecar talks plaintext to it.
      const plain = await fanout(`${PLAIN}/client`, `http://${ip[`${MESHED}/web`]}:8080/${plainMarker}`, 5);
      assert.equal(plain.ok, 5, `plaintext control: ${JSON.stringify(plain)}`);
      // The control is the last traffic: once its marker is in the file, everything before it is.
      const written = Date.now() + 10_000;
      while (!fs.readFileSync(pcap).includes(plainMarker) && Date.now() < written) await sleep(250);
    } finally {
      if (dump.exitCode === null) {
        const exited = new Promise((r) => dump.once('exit', r));
        dump.kill('SIGINT');
        await Promise.race([exited, sleep(10_000)]);
        if (dump.exitCode === null) dump.kill('SIGKILL');
      }
    }
    const bytes = fs.readFileSync(pcap);
    fs.rmSync(pcap, { force: true });
    assert.ok(bytes.includes(plainMarker), `the capture works: the plaintext control request's marker is in it (${bytes.length} bytes captured)`);
    assert.ok(!bytes.includes(meshMarker), 'no byte of the sidecar-to-sidecar requests is plaintext on the pod network');
  });

  it(`workload certificates with a ${ROTATION_TTL} TTL rotate under steady traffic without losing a request`, async () => {
    const rotIP = ip[`${MESHED}/rot`];
    const first = await servedCert(rotIP);
    assert.ok(first.notAfter.getTime() - Date.now() < 60_000, `rot's certificate is short-lived (ends ${first.notAfter.toISOString()})`);
    const serials = new Set([first.serial]);
    const total: Fanout = { total: 0, ok: 0, errors: 0, byStatus: {} };
    const until = Date.now() + 20_000;
    const traffic = (async () => {
      while (Date.now() < until) {
        const f = await fanout(`${MESHED}/client`, 'http://rot/', 25);
        total.total += f.total;
        total.ok += f.ok;
        total.errors += f.errors;
        for (const [k, v] of Object.entries(f.byStatus)) total.byStatus[k] = (total.byStatus[k] ?? 0) + v;
        if (f.ok !== f.total) total.errorSamples = [...(total.errorSamples ?? []), ...(f.errorSamples ?? [])].slice(0, 5);
      }
    })();
    const sampling = (async () => {
      while (Date.now() < until) {
        await sleep(1_500);
        serials.add((await servedCert(rotIP)).serial);
      }
    })();
    await Promise.all([traffic, sampling]);
    assert.ok(serials.size >= 3, `at least two rotations during the traffic: serials ${[...serials].join(', ')}`);
    assert.ok(total.total >= 100, `steady traffic: ${total.total} requests`);
    assert.equal(total.ok, total.total, `no request lost across the rotations: ${JSON.stringify(total)}`);
  });

  it('STRICT refuses a client without a sidecar, lets a sidecar client through over mTLS, and the server stays Ready', async () => {
    const webURL = `http://${ip[`${MESHED}/web`]}:8080/`;
    const plainBefore = await fanout(`${PLAIN}/client`, webURL, 5);
    assert.equal(plainBefore.ok, 5, `PERMISSIVE (the default) accepts plaintext: ${JSON.stringify(plainBefore)}`);

    await new Applier(client).applyAll(parseManifests(STRICT, 'STRICT PeerAuthentication'));
    const deadline = Date.now() + 30_000;
    let plain: Fanout;
    for (;;) {
      plain = await fanout(`${PLAIN}/client`, webURL, 5);
      if (plain.ok === 0) break;
      if (Date.now() > deadline) break;
      await sleep(500);
    }
    assert.equal(plain.ok, 0, `plaintext to a STRICT port is refused: ${JSON.stringify(plain)}`);
    assert.equal(plain.errors, 5, `each request fails at the connection (reset/closed): ${JSON.stringify(plain)}`);
    assert.equal(plain.byStatus['200'], undefined);

    const mtlsBefore = await mutualTlsFromClient();
    const meshed = await fanout(`${MESHED}/client`, 'http://web/', 20);
    assert.equal(meshed.ok, 20, `the sidecar client gets through: ${JSON.stringify(meshed)}`);
    const mtls = await mutualTlsFromClient() - mtlsBefore;
    assert.ok(mtls >= 20, `web's sidecar saw the 20 requests over mutual TLS from the client's identity (counted ${mtls})`);

    // The kubelet's probes reach the app through the proxy's status port 15021, not the
    // STRICT app port: after a few probe periods under STRICT the server is still Ready.
    const web = await client.get<Pod>(R.pods, 'web', MESHED);
    const appProbe = web.spec.containers.find((c) => c.name === 'app')?.readinessProbe;
    assert.equal(appProbe?.httpGet?.port, 15021, `the readiness probe is rewritten to the status port: ${JSON.stringify(appProbe)}`);
    await sleep(6_000);
    for (const name of ['web', 'client']) {
      const p = await client.get<Pod>(R.pods, name, MESHED);
      assert.ok(isReady(p), `${MESHED}/${name} stays Ready under STRICT: ${JSON.stringify(p.status?.conditions)}`);
    }
  });

  it('AuthorizationPolicy ALLOW by principal: a client as SA a gets through, a client as SA b gets 403 RBAC: access denied', async () => {
    await new Applier(client).applyAll(parseManifests(ALLOW_SA_A, 'AuthorizationPolicy web-from-a'));
    // Wait until web's proxy holds the RBAC filter before client-b first connects: this
    // proxy keeps serving a connection with the filter chain it was accepted on (Envoy
    // would drain it), so a connection pooled before the push would stay allowed.
    const webNs = netnsOf(ip[`${MESHED}/web`]);
    const pushed = Date.now() + 30_000;
    for (;;) {
      const dump = spawnSync('ip', ['netns', 'exec', webNs, 'curl', '-sS', '--max-time', '5', 'http://127.0.0.1:15000/config_dump'], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
      if (dump.includes('web-from-a')) break;
      assert.ok(Date.now() < pushed, `web's proxy never received the RBAC policy web-from-a`);
      await sleep(500);
    }
    const deadline = Date.now() + 30_000;
    let denied: Fanout;
    for (;;) {
      denied = await fanout(`${MESHED}/client-b`, 'http://web/', 5);
      if (denied.byStatus['403'] === 5 || Date.now() > deadline) break;
      await sleep(500);
    }
    assert.equal(denied.byStatus['403'], 5, `SA b is denied: ${JSON.stringify(denied)}`);
    const allowed = await fanout(`${MESHED}/client`, 'http://web/', 20);
    assert.equal(allowed.ok, 20, `SA a is allowed: ${JSON.stringify(allowed)}`);
    // The denial's body, seen from inside client-b's network namespace: its sidecar captures
    // the request (root is not the proxy's UID) and sends it with SA b's certificate.
    const svc = await client.get<Service>(R.services, 'web', MESHED);
    const ns = netnsOf(ip[`${MESHED}/client-b`]);
    const curl = spawnSync('ip', ['netns', 'exec', ns, 'curl', '-sS', '--max-time', '10', '-w', '\\n%{http_code}', `http://${svc.spec?.clusterIP}/`], { encoding: 'utf8', timeout: 20_000 });
    assert.match(curl.stdout, /^RBAC: access denied\n?\n403$/, `curl from client-b: ${curl.stdout}${curl.stderr}`);
  });

  it('an app listening only on its pod IP passes its probes through the sidecar under STRICT', async () => {
    const deadline = Date.now() + 60_000;
    let bound: Pod;
    for (;;) {
      bound = await client.get<Pod>(R.pods, 'bound', MESHED);
      if (isReady(bound) || Date.now() > deadline) break;
      await sleep(500);
    }
    const probe = bound.spec.containers.find((c) => c.name === 'app')?.readinessProbe;
    assert.equal(probe?.httpGet?.port, 15021, `the probe goes through the sidecar's status port: ${JSON.stringify(probe)}`);
    assert.ok(isReady(bound), `${MESHED}/bound is Ready: ${JSON.stringify(bound.status?.conditions)}`);
  });

  it('with the injector down, a pod that asks for injection is refused with the webhook error and other pods are created', async () => {
    const podYaml = (name: string, ns: string, labels = ''): string => `
apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${ns}
${labels}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: app
    image: trellis/sample-http:0.1.0
`;
    const created: [string, string][] = [];
    await client.patch(R.deployments, 'trellis-injector', 'trellis-system', { spec: { replicas: 0 } }, 'merge');
    try {
      const gone = Date.now() + 60_000;
      while ((await injectorAddresses()) > 0) {
        assert.ok(Date.now() < gone, 'the injector Service never lost its endpoints');
        await sleep(500);
      }
      const refused = kubectlCreate(podYaml('wants-sidecar', MESHED));
      assert.notEqual(refused.status, 0, `a pod in an injection-enabled namespace is refused: ${refused.out}`);
      assert.match(refused.out, /failed calling webhook "sidecar-injector\.istio\.io"/, refused.out);
      assert.match(refused.out, /no endpoints available for service "trellis-injector"/, refused.out);
      assert.equal(await client.find<Pod>(R.pods, 'wants-sidecar', MESHED), undefined, 'and not stored');

      const plain = kubectlCreate(podYaml('no-injection', PLAIN));
      assert.equal(plain.status, 0, `a pod in a namespace without injection is created: ${plain.out}`);
      created.push([PLAIN, 'no-injection']);
      const optedOut = kubectlCreate(podYaml('opts-out', MESHED, '  labels:\n    sidecar.istio.io/inject: "false"'));
      assert.equal(optedOut.status, 0, `a pod that opted out is created: ${optedOut.out}`);
      created.push([MESHED, 'opts-out']);
    } finally {
      await client.patch(R.deployments, 'trellis-injector', 'trellis-system', { spec: { replicas: 1 } }, 'merge');
    }
    // Restored: injection works again once the new injector is ready (it writes its new CA
    // into the webhook configuration first).
    const back = Date.now() + 90_000;
    let last = '';
    for (;;) {
      const r = kubectlCreate(podYaml('after-restore', MESHED));
      if (r.status === 0) break;
      last = r.out;
      assert.ok(Date.now() < back, `injection never came back: ${last}`);
      await sleep(1_000);
    }
    created.push([MESHED, 'after-restore']);
    const restored = await client.get<Pod>(R.pods, 'after-restore', MESHED);
    assert.ok((restored.spec.initContainers ?? []).some((c) => c.name === 'istio-proxy'), 'injected again after the restore');
    for (const [ns, name] of created) await client.delete(R.pods, name, ns).catch(() => undefined);
  });

  it('stops on Ctrl-C and leaves nothing behind', async () => {
    assert.ok(up);
    const proc = up;
    proc.kill('SIGINT');
    const code = await new Promise<number | null>((r) => { if (proc.exitCode !== null) r(proc.exitCode); else proc.once('exit', (c) => r(c)); });
    assert.equal(code, 0, output.slice(-3000));
    assert.deepEqual(leftovers(PREFIX, [POD_CIDR, SERVICE_CIDR]), []);
  });
});
