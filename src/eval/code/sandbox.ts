// Runs untrusted Python (a model's completion with its tests) inside an OS sandbox, and says how it ended.
// Code is never run without the sandbox: when bubblewrap (`bwrap`) is missing or cannot start here,
// sandboxCheck() says why and runSandboxed() throws SandboxUnavailableError (saying how to install it).
//
// What is enforced, and by what:
// - Files: bubblewrap builds a new mount namespace whose root is an empty tmpfs. Bound into it, read-only:
//   /usr (with /lib, /lib64, /bin, /sbin as on the host: symlinks into /usr, or read-only binds), and the
//   Python interpreter's prefix(es) as python3 itself reports them (sys.prefix, sys.base_prefix,
//   sys.exec_prefix and the interpreter's folder; e.g. /root/.pyenv/versions/3.11.7). Nothing else of the
//   host: not /root, /home, /work, /etc or the repository. /tmp is a fresh tmpfs of `tmpMb` (the working
//   directory and HOME), thrown away with the sandbox; /proc is the sandbox's own; /dev is a minimal one.
// - Network: a new network namespace holding only its own loopback: no host port and no outside address
//   can be reached (a connection to the host's 127.0.0.1 reaches the sandbox's own, empty, loopback).
// - Processes: new pid, ipc, uts (and cgroup where possible) namespaces; --new-session (no controlling
//   terminal); --die-with-parent. Killing bwrap kills every process in the sandbox's pid namespace, so
//   nothing outlives the wall-clock limit, which Node enforces by SIGKILL on bwrap's process group.
// - Identity and privileges: bwrap sets no_new_privs. Run by root, bwrap keeps only CAP_SETUID/CAP_SETGID;
//   the wrapper (WRAPPER below, trusted, run before the untrusted code) sets the rlimits and then drops to
//   an unprivileged uid/gid of its own per concurrent run (runUid(), no supplementary groups), so
//   the untrusted code holds no capability and the kernel enforces RLIMIT_NPROC on it (it does not for
//   uid 0). Run by another user, bwrap also creates a user namespace (no capability outside it) and
//   forbids nested ones; RLIMIT_NPROC then counts all of that user's processes.
// - System calls: on x86-64, a seccomp filter (seccomp.ts, installed by bwrap before the wrapper runs)
//   refuses new namespaces, mounts, ptrace, bpf, io_uring, keyrings and module loading; elsewhere none.
// - Resources, as rlimits set by the wrapper and inherited across its exec of the program: RLIMIT_CPU
//   (`cpuS`; SIGXCPU, then SIGKILL one second later), RLIMIT_AS (`memoryMb`), RLIMIT_NPROC (`processes`,
//   a fork bomb stops there), RLIMIT_FSIZE (`fileSizeMb`), RLIMIT_NOFILE (`openFiles`), RLIMIT_CORE 0.
//   Wall clock (`timeoutS`) from Node. Output kept: the first `outputKb` of stdout and of stderr.
// - Environment: cleared; the program sees PATH=/usr/bin:/bin, HOME=/tmp, LANG=C.UTF-8 and nothing of
//   Node's environment (no secrets). Python runs with -I -B (isolated: no PYTHON* variables, no user site).
// The program talks back on fd 3: the wrapper writes "ready" there before it execs the program (so a
// sandbox that failed to start is an error, never a failed sample), and the program may write more.
// Not enforced: the program can read what is bound read-only (system files under /usr, the Python
// install), and use CPU and memory up to its limits; other architectures than x86-64 get no seccomp filter.
import { execFileSync, type StdioOptions, spawn } from "node:child_process";
import {
  accessSync,
  constants as fsConstants,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
} from "node:fs";
import { constants } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { type Infer, type Schema, validate } from "../../core/schema.js";
import { seccompFilter } from "./seccomp.js";

/** The sandbox's limits, declared once (validation, and --help for a command that exposes them). */
export const SANDBOX_LIMITS = {
  timeoutS: { type: "number", default: 5, min: 0, minExclusive: true, doc: "wall-clock seconds per run" },
  cpuS: { type: "integer", default: 5, min: 1, doc: "CPU seconds per process (RLIMIT_CPU)" },
  memoryMb: { type: "integer", default: 1024, min: 64, doc: "address space per process, MiB (RLIMIT_AS)" },
  processes: {
    type: "integer",
    default: 16,
    min: 1,
    doc: "processes and threads of the run's uid (RLIMIT_NPROC)",
  },
  fileSizeMb: { type: "integer", default: 16, min: 1, doc: "largest file it may write, MiB (RLIMIT_FSIZE)" },
  openFiles: { type: "integer", default: 64, min: 8, doc: "open file descriptors (RLIMIT_NOFILE)" },
  tmpMb: { type: "integer", default: 64, min: 1, doc: "size of its throw-away /tmp, MiB" },
  outputKb: { type: "integer", default: 64, min: 1, doc: "stdout and stderr kept, KiB each" },
  uidBase: {
    type: "integer",
    default: 1_500_000_000,
    min: 1,
    max: 4_000_000_000,
    doc: "when run as root: the untrusted code runs as a uid/gid from uidBase to uidBase + 2^24",
  },
} as const satisfies Schema;

export type SandboxLimits = Infer<typeof SANDBOX_LIMITS>;

/** Limits with defaults filled in; `source` names the input in errors. */
export function sandboxLimits(given: Partial<SandboxLimits> = {}, source = "sandbox limits"): SandboxLimits {
  return validate(SANDBOX_LIMITS, given, source);
}

export const INSTALL_HINT =
  "install bubblewrap (Debian/Ubuntu: `apt-get install -y bubblewrap`; Fedora: `dnf install bubblewrap`)";

/** Thrown when code cannot be run sandboxed here: herd then runs none at all. */
export class SandboxUnavailableError extends Error {
  constructor(reason: string) {
    super(`code execution refused: ${reason} (generated code is only ever run inside the sandbox)`);
    this.name = "SandboxUnavailableError";
  }
}

export interface SandboxResult {
  /** The process exit code, or 128 + signal number when a signal ended it (bwrap's convention). */
  exitCode: number | null;
  /** The wall-clock limit was reached and the sandbox was killed. */
  timedOut: boolean;
  stdout: string;
  stderr: string;
  /** What the program wrote on fd 3 after the wrapper's "ready" line. */
  channel: string;
  wallS: number;
}

/** Python's own account of where it lives (run on the host: this is the trusted interpreter). */
interface PythonInfo {
  executable: string;
  binds: string[];
}

interface Setup {
  bwrap: string;
  python: PythonInfo;
}

let cached: { python: string; setup: Promise<Setup | string> } | null = null;

function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const p = join(dir || ".", name);
    try {
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {}
  }
  return null;
}

const under = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith("/") ? dir : `${dir}/`);

function pythonInfo(python: string): PythonInfo {
  const out = execFileSync(
    python,
    [
      "-I",
      "-c",
      "import sys,json;print(json.dumps([sys.executable,sys.prefix,sys.base_prefix,sys.exec_prefix]))",
    ],
    { encoding: "utf8", timeout: 20_000, stdio: ["ignore", "pipe", "pipe"] },
  );
  const [executable, ...prefixes] = JSON.parse(out) as string[];
  if (!executable) throw new Error(`${python} did not report sys.executable`);
  const dirs = [...prefixes, dirname(executable), dirname(realpathSync(executable))].map((d) =>
    realpathSync(d),
  );
  const binds: string[] = [];
  for (const d of [...new Set(dirs)].sort()) {
    if (d === "/") throw new Error(`${python}: its prefix is '/', which would bind the whole host`);
    if (under(d, "/usr") || binds.some((b) => under(d, b))) continue;
    binds.push(d);
  }
  return { executable, binds };
}

/** Finds bwrap and python, and runs one trivial program in a sandbox to see that it works; cached. */
function setup(python: string): Promise<Setup | string> {
  if (cached?.python !== python) cached = { python, setup: probe(python) };
  return cached.setup;
}

async function probe(python: string): Promise<Setup | string> {
  const bwrap = onPath("bwrap");
  if (process.platform !== "linux") return `the sandbox needs Linux (this is ${process.platform})`;
  if (!bwrap) return `bwrap (bubblewrap) was not found on PATH: ${INSTALL_HINT}`;
  try {
    const s = { bwrap, python: pythonInfo(python) };
    const r = await runIn(s, "print('ok')", sandboxLimits({ timeoutS: 30 }), 0);
    if (r.exitCode !== 0 || r.stdout !== "ok\n") throw new Error(`exit ${r.exitCode}: ${r.stderr.trim()}`);
    return s;
  } catch (e) {
    return `bwrap could not run a sandbox here (${(e as Error).message.slice(0, 400)})`;
  }
}

/** Null when code can be run sandboxed here, else the reason it cannot (tests skip with it). */
export async function sandboxCheck(python = "python3"): Promise<string | null> {
  const s = await setup(python);
  return typeof s === "string" ? s : null;
}

const isRoot = () => process.getuid?.() === 0;

function bwrapArgs(py: PythonInfo, limits: SandboxLimits): string[] {
  const a = ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"];
  if (isRoot()) a.push("--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID");
  else a.push("--unshare-user", "--disable-userns");
  a.push("--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr");
  for (const d of ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]) {
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(d);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) a.push("--symlink", readlinkSync(d), d);
    else if (st.isDirectory()) a.push("--ro-bind", d, d);
  }
  // The folders above each bind are made world-searchable (bwrap would copy the host's modes, and /root
  // is 0700): they hold nothing but the path to the bind.
  const above = new Set<string>();
  for (const d of py.binds) for (let up = dirname(d); up !== "/"; up = dirname(up)) above.add(up);
  for (const up of [...above].sort()) if (!under(up, "/usr")) a.push("--perms", "0755", "--dir", up);
  for (const d of py.binds) a.push("--ro-bind", d, d);
  a.push("--perms", "1777", "--size", String(limits.tmpMb * 2 ** 20), "--tmpfs", "/tmp");
  a.push("--proc", "/proc", "--dev", "/dev", "--chdir", "/tmp", "--clearenv");
  for (const [k, v] of Object.entries({ PATH: "/usr/bin:/bin", HOME: "/tmp", LANG: "C.UTF-8" }))
    a.push("--setenv", k, v);
  return a;
}

// The trusted first stage inside the sandbox: reads the program from stdin into /tmp, sets the rlimits,
// drops root (when it has it) to the run's own uid, checks that it cannot become root again, says "ready" on
// fd 3 and execs a fresh interpreter on the program.
const WRAPPER = `
import os, resource as r, sys
cpu, mem, nproc, fsize, nofile, uid = (int(x) for x in sys.argv[1:7])
src = sys.stdin.buffer.read()
with open("/tmp/program.py", "wb") as f:
    f.write(src)
os.chmod("/tmp/program.py", 0o444)
for lim, v in ((r.RLIMIT_CPU, (cpu, cpu + 1)), (r.RLIMIT_AS, (mem, mem)), (r.RLIMIT_NPROC, (nproc, nproc)),
               (r.RLIMIT_FSIZE, (fsize, fsize)), (r.RLIMIT_NOFILE, (nofile, nofile)), (r.RLIMIT_CORE, (0, 0))):
    r.setrlimit(lim, v)
if uid >= 0:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    assert os.getuid() == uid and os.geteuid() == uid and os.getgid() == uid
try:
    os.setuid(0)
except OSError:
    pass
else:
    sys.exit("sandbox: still privileged after dropping root")
os.write(3, b"ready\\n")
os.execv(sys.executable, [sys.executable, "-I", "-B", "/tmp/program.py"])
`;

const FILTER = seccompFilter();
const slots: boolean[] = [];

/** A run's uid: its own per process (by pid) and per concurrent run in it, so none shares a process count. */
export function runUid(limits: SandboxLimits, slot: number): number {
  return limits.uidBase + (process.pid & 0xffff) * 256 + slot;
}

function takeSlot(): number {
  let i = slots.indexOf(false);
  if (i < 0) i = slots.push(false) - 1;
  if (i >= 256) throw new Error("sandbox: at most 256 runs at once");
  slots[i] = true;
  return i;
}

/**
 * Runs `program` (Python source) in the sandbox under `limits` and reports how it ended. Throws
 * SandboxUnavailableError when there is no working sandbox here, and Error when the sandbox failed to
 * start this run (never mistaken for the program failing).
 */
export async function runSandboxed(
  program: string,
  given: Partial<SandboxLimits> = {},
  python = "python3",
): Promise<SandboxResult> {
  const limits = sandboxLimits(given);
  const s = await setup(python);
  if (typeof s === "string") throw new SandboxUnavailableError(s);
  const slot = takeSlot();
  try {
    return await runIn(s, program, limits, slot);
  } finally {
    // The kernel tears a killed pid namespace down asynchronously: the slot's uid is reused (its process
    // count is what RLIMIT_NPROC limits) only once none of its processes is left.
    if (!isRoot() || (await uidGone(runUid(limits, slot), 10_000))) slots[slot] = false;
  }
}

/** Processes whose real uid is `uid` now (zombies included). */
export function processesOf(uid: number): number[] {
  const pids: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const real = /\nUid:\s+(\d+)/.exec(readFileSync(`/proc/${d}/status`, "latin1"))?.[1];
      if (Number(real) === uid) pids.push(Number(d));
    } catch {} // exited meanwhile
  }
  return pids;
}

async function uidGone(uid: number, waitMs: number): Promise<boolean> {
  for (const t0 = Date.now(); Date.now() - t0 < waitMs; await new Promise((r) => setTimeout(r, 10)))
    if (processesOf(uid).length === 0) return true;
  return false;
}

function runIn(s: Setup, program: string, limits: SandboxLimits, slot: number): Promise<SandboxResult> {
  const uid = isRoot() ? runUid(limits, slot) : -1;
  const MiB = 2 ** 20;
  const wrapperArgs = [limits.cpuS, limits.memoryMb * MiB, limits.processes, limits.fileSizeMb * MiB];
  const args = [
    ...bwrapArgs(s.python, limits),
    ...(FILTER ? ["--seccomp", "4"] : []),
    s.python.executable,
    "-I",
    "-B",
    "-c",
    WRAPPER,
    ...[...wrapperArgs, limits.openFiles, uid].map(String),
  ];
  const started = performance.now();
  // fds 0-2, fd 3 (the channel) and fd 4 (the seccomp filter, read by bwrap itself).
  const stdio: StdioOptions = Array<"pipe">(FILTER ? 5 : 4).fill("pipe");
  const child = spawn(s.bwrap, args, { stdio, detached: true, env: {} });
  if (FILTER) (child.stdio[4] as NodeJS.WritableStream).end(FILTER);
  const cap = limits.outputKb * 1024;
  const keep = (stream: NodeJS.ReadableStream | null, max: number) => {
    const parts: Buffer[] = [];
    let n = 0;
    stream?.on("data", (b: Buffer) => {
      if (n < max) parts.push(b.subarray(0, max - n));
      n += b.length;
    });
    return () => Buffer.concat(parts).toString("utf8");
  };
  const stdout = keep(child.stdout, cap);
  const stderr = keep(child.stderr, cap);
  const channel = keep(child.stdio[3] as NodeJS.ReadableStream, 4096);
  child.stdin?.on("error", () => {}); // the program may exit before reading all of stdin
  child.stdin?.end(program);
  let timedOut = false;
  // bwrap leads its own process group (detached); the sandbox's processes die with it (--die-with-parent).
  const kill = () => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null)
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, limits.timeoutS * 1000);
  return new Promise((resolve, reject) => {
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const ch = channel();
      const err = stderr();
      if (!ch.startsWith("ready\n") && !timedOut) {
        reject(new Error(`sandbox: did not start (exit ${code ?? signal}): ${err.trim().slice(0, 500)}`));
        return;
      }
      resolve({
        exitCode: code ?? (signal ? 128 + constants.signals[signal] : null),
        timedOut,
        stdout: stdout(),
        stderr: err,
        channel: ch.slice("ready\n".length),
        wallS: (performance.now() - started) / 1000,
      });
    });
  });
}
