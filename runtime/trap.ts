/**
 * Turns what escapes generated code into an `ExecError`: the error code and insn index that
 * `$fail` stored in the worker's control slot, or, for a trap V8 raised itself (out-of-bounds
 * memory, a null table slot), a kind read from its message. BpfErrors thrown by helpers pass
 * through unchanged; anything else is wrapped, never leaked as a plain Error.
 *
 * Called from host: LoadedProgram.run* on the failure path only (a trap costs ≈2–6 µs).
 */

import { CTRL_ERR_AUX, CTRL_ERR_CODE, CTRL_ERR_INSN, EXEC_CODE } from '../src/abi.js';
import {
  ExecError,
  TerminationError,
  isBpfError,
  type BpfError,
  type ExecErrorKind,
} from '../src/errors.js';

const KIND_BY_CODE: ReadonlyMap<number, ExecErrorKind> = new Map(
  Object.entries(EXEC_CODE).map(([k, v]) => [v, k as ExecErrorKind]),
);

const REASONS: Readonly<Record<ExecErrorKind, string>> = {
  mem: 'invalid memory access',
  align: 'misaligned atomic access',
  stack: 'stack overflow',
  'call-depth': 'the call stack is too deep (more than 8 frames)',
  call: 'call to something that is not a helper or a function',
  jump: 'indirect jump to a target that is not in the jump table',
  'insn-budget': 'instruction budget exhausted',
  'fall-off': 'execution fell off the end of a function',
  helper: 'helper failed',
  frame: 'not a live coroutine frame of the size the access needs',
  throw: 'bpf_throw',
  trap: 'trap',
};

/** Reads and clears the error a program recorded in control slot `ctrl`, then builds the error. */
export function trapToError(e: unknown, view: DataView, ctrl: number): BpfError {
  if (isBpfError(e)) return e;
  const code = view.getUint32(ctrl + CTRL_ERR_CODE, true);
  if (code !== 0) {
    const insn = view.getUint32(ctrl + CTRL_ERR_INSN, true);
    const aux = view.getBigUint64(ctrl + CTRL_ERR_AUX, true);
    view.setUint32(ctrl + CTRL_ERR_CODE, 0, true);
    const kind = KIND_BY_CODE.get(code) ?? 'trap';
    // bpf_throw: the cookie; LoadedProgram turns it into the run's r0.
    if (kind === 'throw') return new TerminationError('throw', aux);
    const detail =
      kind === 'mem' || kind === 'align' || kind === 'frame'
        ? ` at 0x${aux.toString(16)}`
        : kind === 'call'
          ? ` (target ${aux})`
          : '';
    return new ExecError(insn, kind, REASONS[kind] + detail, { cause: e });
  }
  const msg = e instanceof Error ? e.message : String(e);
  let kind: ExecErrorKind = 'trap';
  if (/memory access out of bounds/i.test(msg)) kind = 'mem';
  else if (/unaligned/i.test(msg)) kind = 'align';
  else if (/table index|null function|signature mismatch|function signature/i.test(msg))
    kind = 'call';
  else if (e instanceof RangeError && /call stack/i.test(msg)) kind = 'stack';
  return new ExecError(null, kind, `${REASONS[kind]}: ${msg}`, { cause: e });
}
