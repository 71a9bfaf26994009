// Child processes of a test run: started in their own process group with
// their output in a log file, and stopped together with everything they
// started, also when the test process exits early.
import { spawn } from "node:child_process";
import { openSync, closeSync, readFileSync } from "node:fs";

const running = new Set();

// A test process that exits while children still run (an uncaught error, a
// `process.exit`) would leave them behind, so kill what is left at exit.
process.on("exit", () => {
  for (const child of running) {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // The group is gone already.
    }
  }
});

/** Returns the last `lines` lines of a log file, or a note that it cannot be read. */
export function tailFile(path, lines = 40) {
  try {
    return readFileSync(path, "utf8").split("\n").slice(-lines).join("\n");
  } catch (error) {
    return `(cannot read ${path}: ${error.message})`;
  }
}

/**
 * Starts `command` with `args` in a new process group, writing standard
 * output and standard error to `logFile`.
 * Returns `{ name, pid, logFile, exited, stop }`: `exited` resolves with
 * `{ code, signal }`, and `stop()` sends SIGTERM to the group, then SIGKILL
 * after `killAfterMs`.
 */
export function startProcess({ name, command, args = [], env = process.env, cwd, logFile, killAfterMs = 10_000 }) {
  const logFd = openSync(logFile, "a");
  let child;
  try {
    child = spawn(command, args, { cwd, env, detached: true, stdio: ["ignore", logFd, logFd] });
  } finally {
    closeSync(logFd);
  }
  running.add(child);

  let exitStatus = null;
  const exited = new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      exitStatus = { code, signal };
      running.delete(child);
      resolve(exitStatus);
    });
    child.on("error", (error) => {
      exitStatus = { code: null, signal: null, error };
      running.delete(child);
      resolve(exitStatus);
    });
  });

  const signalGroup = (signal) => {
    try {
      process.kill(-child.pid, signal);
    } catch {
      // Already exited.
    }
  };

  const stop = async () => {
    if (exitStatus) return exitStatus;
    signalGroup("SIGTERM");
    const timer = setTimeout(() => signalGroup("SIGKILL"), killAfterMs);
    const status = await exited;
    clearTimeout(timer);
    return status;
  };

  return {
    name,
    pid: child.pid,
    logFile,
    exited,
    get exitStatus() {
      return exitStatus;
    },
    stop,
  };
}

/**
 * Polls `url` until it returns a status below 500, for at most `timeoutMs`.
 * Fails early, with the log's tail, when `process` (from startProcess) exits.
 */
export async function waitForHttp(url, { timeoutMs = 60_000, process: child } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastProblem = "no response yet";
  while (Date.now() < deadline) {
    if (child?.exitStatus) {
      throw new Error(
        `${child.name} exited (${JSON.stringify(child.exitStatus)}) before ${url} was ready. Log ${child.logFile}:\n${tailFile(child.logFile)}`,
      );
    }
    try {
      const response = await fetch(url, { redirect: "manual", signal: AbortSignal.timeout(5_000) });
      await response.arrayBuffer();
      if (response.status < 500) return;
      lastProblem = `HTTP ${response.status}`;
    } catch (error) {
      lastProblem = error.cause?.code ?? error.message;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const logNote = child ? ` Log ${child.logFile}:\n${tailFile(child.logFile)}` : "";
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${url} (last: ${lastProblem}).${logNote}`);
}
