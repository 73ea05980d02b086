// Golden fixtures for pilot's translation: inputs are multi-document YAML (as kubectl would
// apply them) in test/pilot/fixtures/<set>/; the expected Envoy resources are *.golden.json
// files next to them. UPDATE_GOLDEN=1 rewrites the goldens (review the diff before committing).
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from '../../api/kube/index.js';
import { emptyInputs, type ConfigInputs } from '../../pilot/model/inputs.js';

const BY_KIND: Record<string, keyof ConfigInputs> = {
  Namespace: 'namespaces', Service: 'services', Endpoints: 'endpoints', Pod: 'pods',
  VirtualService: 'virtualServices', DestinationRule: 'destinationRules', Gateway: 'gateways',
  ServiceEntry: 'serviceEntries', Sidecar: 'sidecars',
  PeerAuthentication: 'peerAuthentications', AuthorizationPolicy: 'authorizationPolicies',
};

export interface GoldenSet {
  /** Pilot's inputs from the named YAML files of the set. */
  loadInputs(...files: string[]): ConfigInputs;
  /** Compares a generated value with the set's golden JSON file. */
  assertGolden(actual: unknown, file: string): void;
}

export function goldenSet(name: string): GoldenSet {
  const dir = fileURLToPath(new URL(`../../../test/pilot/fixtures/${name}/`, import.meta.url));
  return {
    loadInputs(...files) {
      const inputs = emptyInputs() as unknown as Record<string, KubeObject[]>;
      for (const f of files) {
        for (const doc of parseAllDocuments(fs.readFileSync(dir + f, 'utf8'))) {
          const obj = doc.toJS() as KubeObject | null;
          if (!obj) continue;
          const kind = BY_KIND[obj.kind ?? ''];
          if (!kind) throw new Error(`${f}: kind ${obj.kind} is not a pilot input`);
          (inputs[kind] ??= []).push(obj);
        }
      }
      return inputs as unknown as ConfigInputs;
    },
    assertGolden(actual, file) {
      const path = dir + file;
      const json = JSON.parse(JSON.stringify(actual)) as unknown;
      if (process.env.UPDATE_GOLDEN === '1') fs.writeFileSync(path, `${JSON.stringify(json, null, 2)}\n`);
      assert.deepEqual(json, JSON.parse(fs.readFileSync(path, 'utf8')), `generated output differs from ${name}/${file} (UPDATE_GOLDEN=1 rewrites it)`);
    },
  };
}
