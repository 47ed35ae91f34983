// Starts the pinned Azurite from ./node_modules and stops it when the process that launched it goes away, so a
// crashed or killed test run, bench or silo never leaves an emulator behind. Arguments are passed through to Azurite.
//
// The launcher (KEYSTONE_PARENT_PID) should give us a pipe on stdin and never write to it: the pipe closes when the
// launcher dies, even by SIGKILL. The Azurite server runs in a process group of its own (see below), so it cannot
// rely on us: it watches the same pipe and pids itself (azurite-watchdog.mjs, preloaded into it).
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { launcherPids, watchLauncher } from './azurite-watchdog.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const azurite = path.join(here, 'node_modules', 'azurite', 'dist', 'src', 'azurite.js');
const watchdog = pathToFileURL(path.join(here, 'azurite-watchdog.mjs')).href;
// A cheaper removal for the emulator's metadata store (the file says why).
const lokiFix = pathToFileURL(path.join(here, 'azurite-lokijs-fix.mjs')).href;
process.env.KEYSTONE_PARENT_PID ||= String(process.ppid);

// Detached (a process group of its own): a Ctrl+C in the terminal must not take storage away while the silo is still
// checkpointing on its way out. Its stdin is ours, the launcher's pipe.
const child = spawn(process.execPath, ['--import', watchdog, '--import', lokiFix, azurite, ...process.argv.slice(2)], {
  stdio: ['inherit', 'inherit', 'inherit'],
  detached: true,
  env: { ...process.env, KEYSTONE_AZURITE_SERVER: '1', KEYSTONE_WRAPPER_PID: String(process.pid) },
});

// Everything in the server's group: Azurite and anything it started.
function killGroup(signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  killGroup('SIGTERM');
  setTimeout(() => {
    killGroup('SIGKILL');
    process.exit(0);
  }, 3000).unref();
}

child.on('exit', (code) => {
  killGroup('SIGKILL');
  process.exit(code ?? 0);
});
// Signals sent to the whole process group (Ctrl+C, timeout, a service manager) must not take storage away while the
// silo is still writing its last checkpoints; the launching process kills us when it is done, and the watchdog
// covers a launcher that died.
process.on('SIGTERM', () => {});
process.on('SIGINT', () => {});

watchLauncher(launcherPids(), stop);
