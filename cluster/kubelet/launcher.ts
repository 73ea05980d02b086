// The command line that starts a container: enter the pod's network namespace, take a
// private mount namespace, bind-mount the pod's files and volumes, join the container's
// cgroup, take the container's user and capabilities (setpriv), exec. Exec probes and hooks
// enter the same namespaces, cgroup, working directory, user and capabilities.
// The launcher script is constant; every value reaches it as a positional argument, so
// nothing from the API is ever parsed by the shell.
import { netnsPath } from './sandbox.js';
import { setprivArgs, type Privileges } from './capabilities.js';

export interface Mount { source: string; target: string; kind: 'file' | 'dir'; readOnly: boolean }

export interface LaunchSpec {
  netns?: string; // undefined for host-network pods
  mounts: Mount[];
  privileges: Privileges;
  workingDir?: string;
  /** cgroup.procs of the container's cgroup: the launcher joins it before exec. */
  cgroupProcs?: string;
  argv: string[];
}

// $1 workdir, $2 cgroup.procs file or "-", then groups of four (kind source target ro|rw) up to "--",
// then setpriv's options, "--", the program and its arguments.
const LAUNCHER = [
  'set -e',
  'workdir=$1; cgroup=$2; shift 2',
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
  'exec setpriv "$@"',
].join('\n');

export function launchArgv(spec: LaunchSpec): { file: string; args: string[] } {
  const inner = ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', LAUNCHER, 'trellis-launcher',
    spec.workingDir || '/', spec.cgroupProcs ?? '-'];
  for (const m of spec.mounts) inner.push(m.kind, m.source, m.target, m.readOnly ? 'ro' : 'rw');
  inner.push('--', ...setprivArgs(spec.privileges), '--', ...spec.argv);
  if (!spec.netns) return { file: inner[0], args: inner.slice(1) };
  return { file: 'nsenter', args: [`--net=${netnsPath(spec.netns)}`, '--', ...inner] };
}

/** $1 cgroup.procs file or "-", then the command (nsenter ...). */
const EXEC_JOIN_CGROUP = 'if [ "$1" != - ]; then echo $$ > "$1"; fi; shift; exec "$@"';

export interface ExecTarget {
  /** The container's main process: its network and mount namespaces and working directory are entered. */
  pid: number;
  privileges: Privileges;
  /** cgroup.procs of the container's cgroup, joined first (so the command is accounted and limited there). */
  cgroupProcs?: string;
}

/**
 * argv for a command run inside a running container (exec probes, preStop hooks), as a
 * runtime's exec does: the container's cgroup, network and mount namespaces, working
 * directory, user and capabilities.
 */
export function execArgv(t: ExecTarget, command: string[]): { file: string; args: string[] } {
  return {
    file: 'sh',
    args: ['-c', EXEC_JOIN_CGROUP, 'trellis-exec', t.cgroupProcs ?? '-',
      'nsenter', `--target=${t.pid}`, '--net', '--mount', '--wd', '--', 'setpriv', ...setprivArgs(t.privileges), '--', ...command],
  };
}
