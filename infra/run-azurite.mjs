// Starts the pinned Azurite from ./node_modules and stops it when the process that launched it goes away,
// so a crashed test run or silo never leaves an emulator behind. Arguments are passed through to Azurite.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const azurite = path.join(here, 'node_modules', 'azurite', 'dist', 'src', 'azurite.js');
const parentPid = Number(process.env.KEYSTONE_PARENT_PID || process.ppid);

// Detached: a Ctrl+C in the terminal must not take storage away while the silo is still checkpointing on its way out.
const child = spawn(process.execPath, [azurite, ...process.argv.slice(2)], { stdio: ['ignore', 'inherit', 'inherit'], detached: true });

function stop(code) {
  if (!child.killed) child.kill('SIGTERM');
  setTimeout(() => process.exit(code), 500).unref();
}

child.on('exit', (code) => process.exit(code ?? 0));
// Signals sent to the whole process group (Ctrl+C, timeout, a service manager) must not take storage away while the
// silo is still writing its last checkpoints; the launching process kills us when it is done, and the watchdog below
// covers a launcher that died.
process.on('SIGTERM', () => {});
process.on('SIGINT', () => {}); // the launching process stops us when it is done

setInterval(() => {
  try {
    process.kill(parentPid, 0);
  } catch {
    stop(0);
  }
}, 1000).unref();
