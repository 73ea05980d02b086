// Envoy's file access logger on the HTTP connection manager, through a real proxy: a
// json_format of command operators gives one JSON line per request with typed values (numbers
// stay numbers, missing values are null), a text_format_source gives the text line as
// written, and an unknown command operator is NACKed with its field path.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Sidecar } from '../../proxy/sidecar.js';
import { TestAdsServer } from './ads-server.js';
import { closeServer, freePort, startApp, staticCluster, waitFor } from './fixtures.js';

const ROUTER = { name: 'envoy.filters.http.router', typedConfig: { '@type': TYPE_URL.router } };
/** google.protobuf.Struct in message form (what protobufjs encodes). */
const struct = (o: Record<string, unknown>): object => ({
  fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'string' ? { stringValue: v } : { structValue: struct(v as Record<string, unknown>) }])),
});

const JSON_FORMAT = struct({
  start_time: '%START_TIME%', method: '%REQ(:METHOD)%', path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%', protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%', response_flags: '%RESPONSE_FLAGS%', bytes_sent: '%BYTES_SENT%', duration: '%DURATION%',
  upstream_cluster: '%UPSTREAM_CLUSTER%', upstream_host: '%UPSTREAM_HOST%', authority: '%REQ(:AUTHORITY)%',
  downstream_peer_uri_san: '%DOWNSTREAM_PEER_URI_SAN%', request_id: '%REQ(X-REQUEST-ID)%', user: '%REQ(X-USER):3%',
  summary: '%REQ(:METHOD)% %RESPONSE_CODE% via %UPSTREAM_CLUSTER%',
  route: { name: '%ROUTE_NAME%' },
});

function listener(name: string, port: number, logFormat: object, file: string): object {
  return {
    name, address: { socketAddress: { address: '127.0.0.1', portValue: port } },
    filterChains: [{ filters: [{
      name: 'envoy.filters.network.http_connection_manager',
      typedConfig: {
        '@type': TYPE_URL.httpConnectionManager, statPrefix: name, httpFilters: [ROUTER],
        routeConfig: { name, virtualHosts: [{ name, domains: ['*'], routes: [
          { name: 'to-app', match: { prefix: '/' }, route: { cluster: 'app' } },
        ] }] },
        accessLog: [{ name: 'envoy.access_loggers.file', typedConfig: { '@type': TYPE_URL.fileAccessLog, path: file, logFormat } }],
      },
    }] }],
  };
}

describe('access logs: Envoy file logger with json_format and text_format_source', () => {
  const ads = new TestAdsServer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-access-log-'));
  const jsonFile = path.join(dir, 'json.log');
  const textFile = path.join(dir, 'text.log');
  let proxy: Sidecar;
  let app: Awaited<ReturnType<typeof startApp>>;
  let jsonPort = 0;
  let textPort = 0;

  before(async () => {
    app = await startApp('app');
    [jsonPort, textPort] = [await freePort(), await freePort()];
    const adsPort = await ads.listen();
    ads.setAll('1', {
      [TYPE_URL.cluster]: [staticCluster('app', '127.0.0.1', app.port)],
      [TYPE_URL.listener]: [
        listener('json', jsonPort, { jsonFormat: JSON_FORMAT }, jsonFile),
        listener('text', textPort, { textFormatSource: { inlineString: '[%RESPONSE_CODE%] %REQ(:METHOD)% %REQ(:PATH)% -> %UPSTREAM_CLUSTER% %RESPONSE_CODE_DETAILS%\n' } }, textFile),
      ],
    });
    // No accessLog sink option: the proxy's own sink writes what the config asks for.
    proxy = new Sidecar({
      pilotAddress: `127.0.0.1:${adsPort}`, ports: { admin: 0, prometheus: 0, readiness: 0 }, log: () => undefined,
      identity: { podName: 'web-1', namespace: 'test', instanceIp: '127.0.0.1', serviceAccount: 'web', workloadName: 'web', labels: { app: 'web' }, domain: 'cluster.local' },
    });
    await proxy.start();
    await waitFor('LDS ACK', () => ads.acked(TYPE_URL.listener, '1'));
    await proxy.settled();
  });

  after(async () => {
    await proxy?.stop();
    await ads.close();
    if (app) await closeServer(app.server);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const lines = (file: string): string[] => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

  it('a request produces one JSON line with the configured fields, typed as Envoy types them', async () => {
    const res = await fetch(`http://127.0.0.1:${jsonPort}/orders?id=7`, { headers: { 'x-user': 'alice', 'x-request-id': 'req-1' } });
    assert.equal(res.status, 200);
    await res.text();
    await waitFor('one JSON access log line', () => lines(jsonFile).length === 1);
    const entry = JSON.parse(lines(jsonFile)[0]) as Record<string, unknown>;
    assert.equal(entry.method, 'GET');
    assert.equal(entry.path, '/orders?id=7', 'the alternative header (:PATH) when the first is absent');
    assert.equal(entry.protocol, 'HTTP/1.1');
    assert.equal(entry.response_code, 200, 'a number');
    assert.equal(entry.response_flags, '-');
    assert.equal(typeof entry.bytes_sent, 'number');
    assert.ok((entry.bytes_sent as number) > 0);
    assert.equal(typeof entry.duration, 'number');
    assert.equal(entry.upstream_cluster, 'app');
    assert.equal(entry.upstream_host, `127.0.0.1:${app.port}`);
    assert.equal(entry.authority, `127.0.0.1:${jsonPort}`);
    assert.equal(entry.downstream_peer_uri_san, null, 'no client certificate: null');
    assert.equal(entry.request_id, 'req-1');
    assert.equal(entry.user, 'ali', 'a :3 length limit truncates');
    assert.equal(entry.summary, 'GET 200 via app', 'several operators in one value make a string');
    assert.deepEqual(entry.route, { name: 'to-app' }, 'nested structs');
    assert.ok(!Number.isNaN(Date.parse(String(entry.start_time))));

    const missing = await fetch(`http://127.0.0.1:${jsonPort}/x`, { method: 'POST', body: 'hi' });
    await missing.text();
    await waitFor('a second line', () => lines(jsonFile).length === 2);
    const second = JSON.parse(lines(jsonFile)[1]) as Record<string, unknown>;
    assert.equal(second.method, 'POST');
    assert.equal(second.user, null, 'an absent header is null');
  });

  it('text_format_source writes the line as formatted, "-" for missing values', async () => {
    const res = await fetch(`http://127.0.0.1:${textPort}/a/b`);
    await res.text();
    await waitFor('one text line', () => lines(textFile).length === 1);
    assert.equal(lines(textFile)[0], '[200] GET /a/b -> app -');
  });

  it('an unknown command operator is NACKed with its field path; the old config stays', async () => {
    ads.setAll('2', {
      [TYPE_URL.listener]: [listener('json', jsonPort, { jsonFormat: struct({ x: '%NO_SUCH_THING%' }) }, jsonFile)],
    });
    await waitFor('NACK', () => ads.nacks(TYPE_URL.listener).length > 0);
    const detail = JSON.stringify(ads.nacks(TYPE_URL.listener)[0].errorDetail);
    assert.match(detail, /accessLog\[0\]\.typedConfig\.logFormat\.jsonFormat\.x: command operator %NO_SUCH_THING% is not supported/);
    const before = lines(jsonFile).length;
    await (await fetch(`http://127.0.0.1:${jsonPort}/still`)).text();
    await waitFor('the old format still logs', () => lines(jsonFile).length === before + 1);
  });
});
