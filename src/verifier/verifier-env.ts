/**
 * The verifier environment (kernel `struct bpf_verifier_env`): the program and its options,
 * the log, the control-flow facts of check_cfg, static register liveness, the explored-state
 * store, the counters of the stats line, and the facts collected for the JIT (register classes
 * and constants per insn, stack depth per subprog).
 *
 * Called from: every `check*` of the main pass (do-check.ts, check-mem.ts, check-alu.ts,
 * check-jmp.ts, check-call.ts).
 *
 * Privileges: the model is a root loader's (`bpf_capable`, `perfmon_capable`: bounded loops,
 * bpf-to-bpf calls, variable stack offsets, 32-bit copies and differences of pointers as
 * scalars, partial overwrites of spilled pointers), which the code clang emits relies on,
 * except where an address or stale data would leave the program: no pointer is stored into
 * a map, the packet or the ctx, passed to a helper as a value or returned (`allowPtrLeaks`
 * false there), and no uninitialised stack is read (`allowUninitStack` false): a host that
 * runs BPF as a plug-in should not hand its addresses or old stack bytes out.
 */

import type { Insn } from '../isa/insn.js';
import type { OpInfo } from '../isa/table.js';
import type { ErrnoCode, VerifierError } from '../errors.js';
import type { Program, ProgType } from '../program.js';
import { PACKET_CAPACITY } from '../abi.js';
import type { CfgInfo } from './cfg.js';
import { VerifierLog } from './log.js';
import { ExploredStates, MAX_BPF_REG, type VerifierState } from './states.js';
import type { RegState } from './reg-state.js';
import {
  REG_CLASS_PTR,
  REG_CLASS_SCALAR,
  REG_CLASS_UNINIT,
  type InsnFacts,
} from './verified-program.js';
import type { KfuncSig, LdMap, VerifyOptions } from './verifier.js';

/** States kept per insn for pruning (`BPF_COMPLEXITY_LIMIT_STATES`). */
export const STATES_PER_INSN = 64;

/** What a rejection carries before it becomes a `VerifierError`. */
export class VerifierReject extends Error {
  readonly err: VerifierError;
  constructor(err: VerifierError) {
    super(err.message);
    this.err = err;
  }
}

/** The verifier environment of one `verifyProgram` call. */
export class VerifierEnv {
  readonly prog: Program;
  readonly insns: readonly Insn[];
  readonly ops: readonly (OpInfo | undefined)[];
  readonly type: ProgType;
  readonly log: VerifierLog;
  readonly opts: VerifyOptions;
  /** Explored states, at most `STATES_PER_INSN` per insn (kernel: 64 for unprivileged). */
  readonly explored = new ExploredStates({ maxStatesPerInsn: STATES_PER_INSN });
  /** `env->allow_ptr_leaks`. */
  readonly allowPtrLeaks = false;
  /** `env->allow_uninit_stack`. */
  readonly allowUninitStack = false;
  /** Bytes of the `mem` program's input buffer. */
  readonly memSize: number;
  cfg!: CfgInfo;
  /** Registers live before each insn (bit r), from `computeLiveRegs`. */
  liveBefore!: Uint16Array;
  /** `mem` programs: the largest end offset of a proven access through the input (R1). */
  memInputMax = 0;
  /** `insn_processed`. */
  insnProcessed = 0;
  /** `jmps_processed`. */
  jmpsProcessed = 0;
  /** Bytes of stack each subprog uses. */
  readonly stackDepth: number[];
  private idGen = 0;
  private readonly regClass: (Uint8Array | undefined)[];
  /** Per slot, per register: the constant every state agreed on so far. */
  private readonly consts: ((bigint | undefined)[] | undefined)[];

  constructor(prog: Program, opts: VerifyOptions) {
    this.prog = prog;
    this.insns = prog.insns;
    this.ops = prog.ops;
    this.type = opts.type ?? prog.type;
    this.opts = opts;
    this.log = new VerifierLog({
      level: opts.logLevel ?? 0,
      ...(opts.logSize !== undefined ? { size: opts.logSize } : {}),
    });
    this.memSize = opts.memSize ?? PACKET_CAPACITY;
    this.stackDepth = prog.subprogs.map(() => 0);
    this.regClass = new Array<Uint8Array | undefined>(prog.insns.length);
    this.consts = new Array<(bigint | undefined)[] | undefined>(prog.insns.length);
  }

  /** A fresh id for a pointer, a reference or a scalar link (`++env->id_gen`). */
  newId(): number {
    return ++this.idGen;
  }

  /** Logs `reason` and returns the rejection to throw (`verbose` + `-EACCES`). */
  fail(insnIdx: number | null, reason: string, code?: ErrnoCode): VerifierReject {
    return new VerifierReject(this.log.fail(insnIdx, reason, code));
  }

  /** Logs a detail line that precedes a failure (`verbose`). */
  verbose(line: string): void {
    this.log.verbose(`${line}\n`);
  }

  /** The map an lddw at `idx` loads. */
  mapAt(idx: number): LdMap | undefined {
    return this.opts.maps?.get(idx);
  }

  /** The signature of the kfunc called at `idx`. */
  kfuncAt(idx: number): KfuncSig | undefined {
    return this.opts.kfuncs?.get(idx);
  }

  /** Notes the stack a subprog uses (`update_stack_depth`). */
  useStack(subprog: number, bytes: number): void {
    const d = this.stackDepth[subprog] ?? 0;
    if (bytes > d) this.stackDepth[subprog] = bytes;
  }

  /** Some state held a reference or a lock (VerifiedProgram.holdsResources). */
  holdsResources = false;

  /** Joins the registers of `st` (current frame) into the facts of `idx`. */
  recordFacts(idx: number, st: VerifierState): void {
    if (st.refs.length > 0 || st.activeLocks > 0) this.holdsResources = true;
    const f = st.frames[st.curframe];
    if (f === undefined) return;
    let cls = this.regClass[idx];
    let consts = this.consts[idx];
    if (cls === undefined) {
      this.regClass[idx] = cls = new Uint8Array(MAX_BPF_REG);
      this.consts[idx] = consts = new Array<bigint | undefined>(MAX_BPF_REG);
      for (let r = 0; r < MAX_BPF_REG; r++) {
        const reg = f.regs[r] as RegState;
        cls[r] = regClassOf(reg);
        consts[r] = constOf(reg);
      }
      return;
    }
    for (let r = 0; r < MAX_BPF_REG; r++) {
      const reg = f.regs[r] as RegState;
      cls[r] = (cls[r] as number) | regClassOf(reg);
      const c = (consts as (bigint | undefined)[])[r];
      if (c !== undefined && constOf(reg) !== c) (consts as (bigint | undefined)[])[r] = undefined;
    }
  }

  /** The facts per slot, for `VerifiedProgram`. */
  facts(): (InsnFacts | undefined)[] {
    return this.regClass.map((regClass, i) => {
      if (regClass === undefined) return undefined;
      const constants = new Map<number, bigint>();
      this.consts[i]?.forEach((c, r) => {
        if (c !== undefined) constants.set(r, c);
      });
      return { regClass, constants };
    });
  }
}

/** The constant a scalar register holds, if it is one. */
function constOf(reg: RegState): bigint | undefined {
  return reg.type === 'SCALAR_VALUE' && reg.scalar.varOff.mask === 0n
    ? reg.scalar.varOff.value
    : undefined;
}

/** The class bit of one register. */
function regClassOf(reg: RegState): number {
  if (reg.type === 'NOT_INIT') return REG_CLASS_UNINIT;
  if (reg.type === 'SCALAR_VALUE') return REG_CLASS_SCALAR;
  return REG_CLASS_PTR;
}
