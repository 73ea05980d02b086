// The pilot side of the pilot benchmark, alone in its own process so its CPU and RSS are
// measured without the load: the real XdsServer on 127.0.0.1 fed PushContexts built from
// the bench mesh (the informer and debounce layers are bypassed: a change is applied the
// moment it arrives). Talks to the bench over IPC:
//   -> { port }                        once serving
//   <- { cmd: 'change' }               apply the change; -> { kind: 'changed', t0, buildMs, updateMs }
// Run only by pilot.ts: node dist/test/bench/pilot-server.js <M>
import { PushContext } from '../../pilot/model/push-context.js';
import { XdsServer } from '../../pilot/xds/server.js';
import { meshInputs } from './pilot-mesh.js';

const m = Number(process.argv[2]);
if (!Number.isInteger(m) || m <= 0) throw new Error(`pilot-server: argv[2] (services) must be a positive integer, got '${process.argv[2]}'`);

// 2000 connect/disconnect lines would only measure the pipe to the bench.
console.log = () => undefined;

// Push-queue knobs for experiments: BENCH_PILOT_CONCURRENCY, BENCH_PILOT_FLUSH_TIMEOUT_MS.
const knob = (name: string): number | undefined => (process.env[name] ? Number(process.env[name]) : undefined);
const xds = new XdsServer({ host: '127.0.0.1', port: 0, queue: { concurrency: knob('BENCH_PILOT_CONCURRENCY'), flushTimeoutMs: knob('BENCH_PILOT_FLUSH_TIMEOUT_MS') } });
const port = await xds.start();
xds.update(PushContext.build(meshInputs(m), { version: '1', domain: 'cluster.local' }));
// The changed objects are built before the clock starts: in pilot they arrive from informers.
const changedInputs = meshInputs(m, true);
process.send?.({ port });

process.on('message', async (msg: { cmd?: string }) => {
  if (msg.cmd !== 'change') return;
  const t0 = Date.now();
  const push = PushContext.build(changedInputs, { version: '2', domain: 'cluster.local' });
  const built = Date.now();
  xds.update(push);
  await xds.pushed(); // the push queue works in the background; this is when it drained
  const done = Date.now();
  process.send?.({ kind: 'changed', t0, buildMs: built - t0, updateMs: done - built });
});

process.on('SIGTERM', () => { void xds.stop(500).finally(() => process.exit(0)); });
process.on('disconnect', () => { void xds.stop(500).finally(() => process.exit(0)); });
