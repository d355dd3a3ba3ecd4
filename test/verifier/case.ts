/**
 * The verifier corpus case type (STYLE.md "Tests": kernel-selftest style accept/reject cases)
 * and `pair`, which builds a rejected program and its accepted twin that differ only in the
 * point the rule checks. Every case's `desc` names the kernel rule it mirrors (the verifier
 * selftests under tools/testing/selftests/bpf/progs/verifier_*.c and verifier/*.c); the programs
 * are our own.
 */
import type { ProgType } from '../../src/program.js';

/** A map created before loading; the n-th entry (1-based) is `map_fd n`. */
export interface CaseMap {
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
}

/** One verifier test: an assembly program and the verdict the kernel gives it. */
export interface VerifierCase {
  readonly desc: string;
  readonly asm: string;
  readonly progType: ProgType;
  /** Created in order, so map_fd 1, 2, ... */
  readonly maps?: readonly CaseMap[];
  readonly result: 'accept' | 'reject';
  /** For rejects: a substring of the kernel's last log line (or of the DecodeError reason). */
  readonly msg?: string;
  /** For accepts that run: r0 after running on `input`. */
  readonly retval?: bigint;
  /** Packet / mem bytes the accepted program runs on. */
  readonly input?: readonly number[];
  /** The desc of the counterpart (the accepted twin of a reject and vice versa). */
  readonly twin?: string;
  /**
   * A reject whose flaw `createProgram` already refuses (as the kernel's check_subprogs /
   * check_cfg do before the main pass): `msg` is then checked against the DecodeError.
   */
  readonly structural?: boolean;
}

/** Map types used by the corpus (uapi `enum bpf_map_type`). */
export const HASH = 1;
export const ARRAY = 2;
export const RINGBUF = 27;

/** What `pair` needs: one rule, the accepted and the rejected program. */
export interface PairSpec {
  /** The rule, citing its kernel selftest, e.g. `verifier_stack_ptr.c: ...`. */
  readonly rule: string;
  readonly progType: ProgType;
  readonly maps?: readonly CaseMap[];
  readonly accept: string;
  readonly retval?: bigint;
  readonly input?: readonly number[];
  readonly reject: string;
  readonly msg: string;
  readonly structural?: boolean;
}

/** Strips the common indentation so the corpus reads like the kernel's __naked asm blocks. */
function clean(text: string): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join('\n');
}

/** Builds the accepted program and its rejected twin for one rule. */
export function pair(p: PairSpec): [VerifierCase, VerifierCase] {
  const okDesc = `${p.rule} (accepted twin)`;
  const badDesc = `${p.rule} (rejected)`;
  const common = {
    progType: p.progType,
    ...(p.maps !== undefined ? { maps: p.maps } : {}),
  };
  return [
    {
      desc: okDesc,
      asm: clean(p.accept),
      ...common,
      result: 'accept',
      ...(p.retval !== undefined ? { retval: p.retval } : {}),
      ...(p.input !== undefined ? { input: p.input } : {}),
      twin: badDesc,
    },
    {
      desc: badDesc,
      asm: clean(p.reject),
      ...common,
      result: 'reject',
      msg: p.msg,
      twin: okDesc,
      ...(p.structural === true ? { structural: true } : {}),
    },
  ];
}
