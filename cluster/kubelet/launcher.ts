// The command line that starts a container: enter the pod's network namespace, take a
// private mount namespace, bind-mount the pod's files and volumes, drop privileges, exec.
// The launcher script is constant; every value reaches it as a positional argument, so
// nothing from the API is ever parsed by the shell.
import { netnsPath } from './sandbox.js';

export interface Mount { source: string; target: string; kind: 'file' | 'dir'; readOnly: boolean }

export interface LaunchSpec {
  netns?: string; // undefined for host-network pods
  mounts: Mount[];
  uid: number;
  gid: number;
  workingDir?: string;
  /** cgroup.procs of the container's cgroup: the launcher joins it before exec. */
  cgroupProcs?: string;
  argv: string[];
}

// $1 workdir, $2 uid, $3 gid, $4 cgroup.procs file or "-", then groups of four (kind source target ro|rw) up to "--",
// then the program and its arguments.
const LAUNCHER = [
  'set -e',
  'workdir=$1; uid=$2; gid=$3; cgroup=$4; shift 4',
  // Join the container's cgroup first, so everything the container runs is limited.
  'if [ "$cgroup" != - ]; then echo $$ > "$cgroup"; fi',
  'while [ "$1" != "--" ]; do',
  '  kind=$1; src=$2; dst=$3; ro=$4; shift 4',
  '  if [ "$kind" = file ]; then',
  '    if [ ! -e "$dst" ]; then mkdir -p -- "$(dirname -- "$dst")"; : > "$dst"; fi',
  '  else',
  '    mkdir -p -- "$dst"',
  '  fi',
  '  mount --bind "$src" "$dst"',
  '  if [ "$ro" = ro ]; then mount -o remount,bind,ro "$dst"; fi',
  'done',
  'shift',
  'cd -- "$workdir"',
  'exec setpriv --reuid "$uid" --regid "$gid" --clear-groups -- "$@"',
].join('\n');

export function launchArgv(spec: LaunchSpec): { file: string; args: string[] } {
  const inner = ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', LAUNCHER, 'trellis-launcher',
    spec.workingDir || '/', String(spec.uid), String(spec.gid), spec.cgroupProcs ?? '-'];
  for (const m of spec.mounts) inner.push(m.kind, m.source, m.target, m.readOnly ? 'ro' : 'rw');
  inner.push('--', ...spec.argv);
  if (!spec.netns) return { file: inner[0], args: inner.slice(1) };
  return { file: 'nsenter', args: [`--net=${netnsPath(spec.netns)}`, '--', ...inner] };
}

/** argv for a command run inside a running container (exec probes, preStop hooks). */
export function execArgv(pid: number, uid: number, gid: number, command: string[]): { file: string; args: string[] } {
  return {
    file: 'nsenter',
    args: [`--target=${pid}`, '--net', '--mount', '--', 'setpriv', '--reuid', String(uid), '--regid', String(gid), '--clear-groups', '--', ...command],
  };
}
