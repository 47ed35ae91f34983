// Notices that whatever launched this process is gone, however it went (a SIGKILL of its whole process group
// included): the launcher's pids stop existing, or the pipe the launcher holds on our stdin reaches its end.
// The pipe is the sure sign (a pid can be reused); the pids cover a launcher that gave us no pipe.
// Imported by run-azurite.mjs, and preloaded (node --import) into the Azurite server it starts, so that the
// server, which runs in a process group of its own, watches for itself.
import fs from 'node:fs';

export function watchLauncher(pids, onGone, intervalMs = 500) {
  let fired = false;
  const gone = (why) => {
    if (fired) return;
    fired = true;
    onGone(why);
  };

  const watched = pids.filter((pid) => Number.isInteger(pid) && pid > 1);
  setInterval(() => {
    for (const pid of watched) {
      try {
        process.kill(pid, 0);
      } catch (e) {
        // EPERM: it exists, it is just not ours to signal.
        if (e.code === 'ESRCH') gone(`process ${pid} is gone`);
      }
    }
  }, intervalMs).unref();

  // Only a pipe or socket: reading a terminal would steal the user's keystrokes.
  let stdin;
  try {
    stdin = fs.fstatSync(0);
  } catch {
    return;
  }
  if (stdin.isFIFO() || stdin.isSocket()) {
    process.stdin.on('data', () => {});
    process.stdin.on('end', () => gone('stdin closed'));
    process.stdin.on('error', () => gone('stdin failed'));
    process.stdin.resume();
    // A pending read must not keep an otherwise finished process alive.
    process.stdin.unref?.();
  }
}

export function launcherPids() {
  return [process.env.KEYSTONE_PARENT_PID, process.env.KEYSTONE_WRAPPER_PID].map(Number);
}

// Preloaded into the Azurite server: stop gracefully first (Azurite closes its services on SIGTERM), then take
// the whole process group down, whatever Azurite may have started.
if (process.env.KEYSTONE_AZURITE_SERVER === '1') {
  watchLauncher(launcherPids(), () => {
    setTimeout(() => {
      try {
        process.kill(-process.pid, 'SIGKILL');
      } catch {
        process.exit(0);
      }
    }, 3000).unref();
    process.kill(process.pid, 'SIGTERM');
  });
}
