// `trellis down --purge`: removes the network objects a crashed `trellis up` left behind
// (every netns, link, route and iptables chain carrying the cluster's name prefix).
import { purgeCluster } from '../cluster/embedded.js';
import { boolFlag, stringFlag, type ParsedArgs } from './args.js';

export async function down(args: ParsedArgs): Promise<void> {
  if (!boolFlag(args, 'purge')) throw new Error('down needs --purge (a running `trellis up` stops with Ctrl-C)');
  const name = stringFlag(args, 'name', 'trellis');
  await purgeCluster(name);
  console.log(`[trellis] purged network objects with prefix ${name}`);
}
