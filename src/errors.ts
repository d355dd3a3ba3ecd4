/**
 * Errors that reach the host. Every exception the public API throws is a `BpfError`;
 * anything else escaping is a bug (the fuzzers check this).
 *
 * ```
 * BpfError                base: name, code (errno-like string)
 * ├─DecodeError           bytecode: insnIdx            "insn 3: invalid opcode 0xff"
 * ├─AsmError              assembler: line, column      "asm: 3:7: unknown mnemonic 'ad'"
 * ├─ElfError              loader: section?, offset?    "elf: .rel.text: bad symbol index 42"
 * ├─BtfError              BTF/BTF.ext: section, offset "btf: .BTF +0x40: type id 99 out of range"
 * ├─VerifierError         insnIdx, reason, log         "insn 7: R1 invalid mem access 'scalar'"
 * ├─JitError              insnIdx                      "jit: insn 12: unsupported opcode 0xdb"
 * ├─LinkError             symbol                       "link: unknown helper #99"
 * ├─ExecError             insnIdx, kind                "insn 5: mem: write of 8 bytes at 0x0 ..."
 * ├─TerminationError      reason
 * ├─MapError              errno code                   host-side map API
 * ├─TestRunError          errno code                   input a test run refuses, as the kernel
 * ├─UsageError            bad arguments to the API or the command line
 * ├─WorkerError           worker index                 "worker 1: the thread exited (code 1)"
 * └─InternalError         "bug: ..." never the user's fault
 * ```
 *
 * Errors that reach a BPF program are values (negative errno), never exceptions.
 */

/** Kernel-style errno names used as `BpfError.code`. */
export type ErrnoCode =
  | 'EINVAL'
  | 'EACCES'
  | 'E2BIG'
  | 'ENOENT'
  | 'EEXIST'
  | 'ENOMEM'
  | 'EFAULT'
  | 'ENOSPC'
  | 'EPERM'
  | 'ENOTSUPP'
  | 'EINTR'
  | 'EBUSY'
  | 'ENODEV'
  | 'ETIMEDOUT'
  | 'ECHILD';

/** Base class of every error the engine throws. */
export class BpfError extends Error {
  override name: string = 'BpfError';
  readonly code: ErrnoCode;

  constructor(message: string, code: ErrnoCode, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** A malformed instruction stream: unknown opcode, bad reserved field, jump out of range. */
export class DecodeError extends BpfError {
  override name = 'DecodeError' as const;
  readonly insnIdx: number;
  readonly reason: string;

  constructor(insnIdx: number, reason: string) {
    super(`insn ${insnIdx}: ${reason}`, 'EINVAL');
    this.insnIdx = insnIdx;
    this.reason = reason;
  }
}

/** Assembly text that does not assemble. `line` and `column` are 1-based. */
export class AsmError extends BpfError {
  override name = 'AsmError' as const;
  readonly line: number;
  readonly column: number;
  readonly reason: string;

  constructor(line: number, column: number, reason: string) {
    super(`asm: ${line}:${column}: ${reason}`, 'EINVAL');
    this.line = line;
    this.column = column;
    this.reason = reason;
  }
}

/** A malformed or unsupported ELF object. */
export class ElfError extends BpfError {
  override name = 'ElfError' as const;
  readonly section: string | undefined;
  readonly offset: number | undefined;
  readonly reason: string;

  constructor(reason: string, section?: string, offset?: number) {
    const where = [section, offset === undefined ? undefined : `+0x${offset.toString(16)}`]
      .filter((s) => s !== undefined)
      .join(' ');
    super(`elf: ${where === '' ? '' : `${where}: `}${reason}`, 'EINVAL');
    this.section = section;
    this.offset = offset;
    this.reason = reason;
  }
}

/** Malformed or unsupported BTF or BTF.ext type information. */
export class BtfError extends BpfError {
  override name = 'BtfError' as const;
  readonly section: string;
  readonly offset: number | undefined;
  readonly reason: string;

  constructor(reason: string, section: string, offset?: number) {
    super(
      `btf: ${section}${offset === undefined ? '' : ` +0x${offset.toString(16)}`}: ${reason}`,
      'EINVAL',
    );
    this.section = section;
    this.offset = offset;
    this.reason = reason;
  }
}

/** The verifier rejected the program. `log` holds the kernel-format log. */
export class VerifierError extends BpfError {
  override name = 'VerifierError' as const;
  readonly insnIdx: number | null;
  readonly reason: string;
  readonly log: string;
  readonly hint: string | undefined;

  constructor(
    insnIdx: number | null,
    reason: string,
    log: string,
    code: ErrnoCode = 'EACCES',
    hint?: string,
  ) {
    super(insnIdx === null ? reason : `insn ${insnIdx}: ${reason}`, code);
    this.insnIdx = insnIdx;
    this.reason = reason;
    this.log = log;
    this.hint = hint;
  }
}

/** The JIT could not translate an instruction. */
export class JitError extends BpfError {
  override name = 'JitError' as const;
  readonly insnIdx: number | null;
  readonly reason: string;

  constructor(insnIdx: number | null, reason: string) {
    super(`jit: ${insnIdx === null ? '' : `insn ${insnIdx}: `}${reason}`, 'EINVAL');
    this.insnIdx = insnIdx;
    this.reason = reason;
  }
}

/** A reference the program makes cannot be resolved: helper id, kfunc, map, symbol. */
export class LinkError extends BpfError {
  override name = 'LinkError' as const;
  readonly symbol: string;
  readonly reason: string;

  constructor(symbol: string, reason: string, code: ErrnoCode = 'EINVAL') {
    super(`link: ${reason}`, code);
    this.symbol = symbol;
    this.reason = reason;
  }
}

/** What went wrong while a program ran. */
export type ExecErrorKind =
  | 'mem' // access outside every region the program may touch
  | 'align' // misaligned atomic access
  | 'stack' // stack overflow
  | 'call-depth' // more than MAX_CALL_FRAMES nested calls
  | 'call' // call or callx to something that is not callable
  | 'jump' // gotox to a target that is not an instruction of the function
  | 'insn-budget' // instruction budget exhausted
  | 'fall-off' // ran past the last instruction of a function
  | 'helper' // a helper raised an error that is not a return value
  | 'frame' // a coroutine handle (or a resume function's r1) is not a live frame that large
  | 'throw' // bpf_throw unwinding (the host turns it into a normal return)
  | 'trap'; // any other Wasm trap

/** A program failed at run time. Only unverified programs can get here. */
export class ExecError extends BpfError {
  override name = 'ExecError' as const;
  readonly insnIdx: number | null;
  readonly kind: ExecErrorKind;
  readonly reason: string;

  constructor(
    insnIdx: number | null,
    kind: ExecErrorKind,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      `${insnIdx === null ? '' : `insn ${insnIdx}: `}${kind}: ${reason}`,
      kind === 'insn-budget' ? 'E2BIG' : 'EFAULT',
      options,
    );
    this.insnIdx = insnIdx;
    this.kind = kind;
    this.reason = reason;
  }
}

/** Why a run was stopped from the outside or by the program itself. */
export type TerminationReason = 'timeout' | 'request' | 'throw';

/** A run was terminated before it finished. */
export class TerminationError extends BpfError {
  override name = 'TerminationError' as const;
  readonly reason: TerminationReason;
  readonly cookie: bigint | undefined;

  constructor(reason: TerminationReason, cookie?: bigint) {
    super(`terminated: ${reason}`, 'EINTR');
    this.reason = reason;
    this.cookie = cookie;
  }
}

/** A host-side map operation failed with the kernel's errno. */
export class MapError extends BpfError {
  override name = 'MapError' as const;
  readonly map: string;
  readonly reason: string;

  constructor(map: string, code: ErrnoCode, reason: string) {
    super(`map ${map}: ${reason} (${code})`, code);
    this.map = map;
    this.reason = reason;
  }
}

/** A test run refused its input, with the errno BPF_PROG_TEST_RUN would return. */
export class TestRunError extends BpfError {
  override name = 'TestRunError' as const;
  readonly reason: string;

  constructor(code: ErrnoCode, reason: string) {
    super(`test run: ${reason} (${code})`, code);
    this.reason = reason;
  }
}

/** Bad arguments to the API or the command line. */
export class UsageError extends BpfError {
  override name = 'UsageError' as const;

  constructor(message: string) {
    super(message, 'EINVAL');
  }
}

/**
 * A worker thread of a Vm died (it was terminated, or an exception escaped it) while it had a
 * request; the Vm replaces the thread, and the request is lost.
 */
export class WorkerError extends BpfError {
  override name = 'WorkerError' as const;
  readonly worker: number;
  readonly reason: string;

  constructor(worker: number, reason: string, options?: { cause?: unknown }) {
    super(`worker ${worker}: ${reason}`, 'ECHILD', options);
    this.worker = worker;
    this.reason = reason;
  }
}

/** An internal invariant is broken: a bug in bpfwasm, not the user's fault. */
export class InternalError extends BpfError {
  override name = 'InternalError' as const;

  constructor(message: string, options?: { cause?: unknown }) {
    super(`bug: ${message}`, 'EFAULT', options);
  }
}

const BPF_ERROR_NAMES: ReadonlySet<string> = new Set([
  'BpfError',
  'DecodeError',
  'AsmError',
  'ElfError',
  'BtfError',
  'VerifierError',
  'JitError',
  'LinkError',
  'ExecError',
  'TerminationError',
  'MapError',
  'TestRunError',
  'UsageError',
  'WorkerError',
  'InternalError',
]);

/** True for any `BpfError`, also across realms (worker threads) where `instanceof` fails. */
export function isBpfError(e: unknown): e is BpfError {
  return (
    e instanceof BpfError ||
    (e instanceof Error && BPF_ERROR_NAMES.has(e.name) && typeof (e as BpfError).code === 'string')
  );
}

/** True for an `ExecError`, also across realms. */
export function isExecError(e: unknown): e is ExecError {
  return e instanceof ExecError || (isBpfError(e) && e.name === 'ExecError');
}

/** True for a `VerifierError`, also across realms. */
export function isVerifierError(e: unknown): e is VerifierError {
  return e instanceof VerifierError || (isBpfError(e) && e.name === 'VerifierError');
}
