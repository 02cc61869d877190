// The seccomp filter the sandbox (sandbox.ts) hands bwrap (`--seccomp FD`): a classic BPF program, as
// raw `struct sock_filter` records (u16 code, u8 jt, u8 jf, u32 k; little-endian), that refuses with
// EPERM the system calls sandboxed code has no business making and that widen the kernel's attack
// surface: new namespaces (unshare, setns, and clone with any CLONE_NEW* flag; clone3 answers ENOSYS so
// libc falls back to clone, whose flags a filter can see), mounts, ptrace and reading or writing other
// processes' memory, bpf, perf events, userfaultfd, io_uring, the kernel keyring, module and kexec loading.
// Any other architecture than the one the filter was written for kills the process (no 32-bit or x32
// side door). Written for x86-64 only: seccompFilter() is null elsewhere, and the sandbox then runs
// without one (its header says so).

// x86-64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl).
const DENIED: Record<string, number> = {
  ptrace: 101,
  pivot_root: 155,
  mount: 165,
  umount2: 166,
  swapon: 167,
  kexec_load: 246,
  add_key: 248,
  request_key: 249,
  keyctl: 250,
  unshare: 272,
  perf_event_open: 298,
  setns: 308,
  process_vm_readv: 310,
  process_vm_writev: 311,
  finit_module: 313,
  kexec_file_load: 320,
  bpf: 321,
  userfaultfd: 323,
  init_module: 175,
  delete_module: 176,
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
  open_tree: 428,
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  mount_setattr: 442,
};
const CLONE = 56;
const CLONE3 = 435;
/** CLONE_NEWTIME | CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET */
const CLONE_NEW_ANY =
  0x80 | 0x20000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;
const AUDIT_ARCH_X86_64 = 0xc000003e;
const X32_BIT = 0x40000000;

// BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h).
const LD_ABS_W = 0x20;
const JEQ = 0x15;
const JGE = 0x35;
const JSET = 0x45;
const RET = 0x06;
const RET_KILL_PROCESS = 0x80000000;
const RET_ERRNO = 0x00050000;
const RET_ALLOW = 0x7fff0000;
const EPERM = 1;
const ENOSYS = 38;
/** Offsets in struct seccomp_data: nr, arch, args[0] (its low 32 bits on little-endian). */
const NR = 0;
const ARCH = 4;
const ARG0 = 16;

type Insn = [code: number, jt: number, jf: number, k: number];

/** The filter as bytes for bwrap's --seccomp, or null where it is not written for this machine. */
export function seccompFilter(arch: string = process.arch): Buffer | null {
  if (arch !== "x64") return null;
  const denied = Object.values(DENIED);
  // Layout: arch check, load nr, one jeq per denied call, clone3, clone's flags, then the returns.
  const prog: Insn[] = [];
  const n = denied.length;
  // Indices of the return instructions, filled once the body's length is known.
  const body = 2 + 1 + 1 + n + 1 + 3;
  const ALLOW = body;
  const DENY = body + 1;
  const NOSYS = body + 2;
  const KILL = body + 3;
  const to = (from: number, target: number) => target - from - 1;
  prog.push([LD_ABS_W, 0, 0, ARCH]);
  prog.push([JEQ, 0, to(1, KILL), AUDIT_ARCH_X86_64]);
  prog.push([LD_ABS_W, 0, 0, NR]);
  prog.push([JGE, to(3, DENY), 0, X32_BIT]);
  for (const [i, nr] of denied.entries()) prog.push([JEQ, to(4 + i, DENY), 0, nr]);
  prog.push([JEQ, to(4 + n, NOSYS), 0, CLONE3]);
  prog.push([JEQ, 0, to(5 + n, ALLOW), CLONE]);
  prog.push([LD_ABS_W, 0, 0, ARG0]);
  prog.push([JSET, to(7 + n, DENY), to(7 + n, ALLOW), CLONE_NEW_ANY]);
  if (prog.length !== body) throw new Error("seccomp: layout mismatch");
  prog.push([RET, 0, 0, RET_ALLOW], [RET, 0, 0, RET_ERRNO | EPERM], [RET, 0, 0, RET_ERRNO | ENOSYS]);
  prog.push([RET, 0, 0, RET_KILL_PROCESS]);
  const buf = Buffer.alloc(prog.length * 8);
  prog.forEach(([code, jt, jf, k], i) => {
    if (jt > 255 || jf > 255) throw new Error("seccomp: jump out of range");
    buf.writeUInt16LE(code, i * 8);
    buf.writeUInt8(jt, i * 8 + 2);
    buf.writeUInt8(jf, i * 8 + 3);
    buf.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return buf;
}

/** The names of the system calls the filter refuses (besides clone with CLONE_NEW* flags and clone3). */
export const SECCOMP_DENIED = Object.keys(DENIED);
