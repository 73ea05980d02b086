// The admin kubeconfig, written for kubectl and for the cluster's own components.
import * as fs from 'node:fs';
import { stringify } from 'yaml';

export function writeKubeconfig(file: string, opts: { clusterName: string; server: string; caCertPem: string; token: string; user?: string }): void {
  const user = opts.user ?? 'admin';
  const context = `${user}@${opts.clusterName}`;
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: opts.clusterName, cluster: { server: opts.server, 'certificate-authority-data': Buffer.from(opts.caCertPem).toString('base64') } }],
    users: [{ name: user, user: { token: opts.token } }],
    contexts: [{ name: context, context: { cluster: opts.clusterName, user, namespace: 'default' } }],
    'current-context': context,
    preferences: {},
  };
  fs.writeFileSync(file + '.tmp', stringify(doc), { mode: 0o600 });
  fs.renameSync(file + '.tmp', file);
}
