/**
 * bpfwasm's public API. Build a Program (from bytes, assembly or, later, ELF), load it into a
 * Vm on the JIT or the interpreter, and run it.
 *
 * @example
 * ```ts
 * import { Vm, assembleProgram } from 'bpfwasm';
 * const prog = assembleProgram('mov %r0, %r2\nexit');
 * const vm = Vm.create();
 * const loaded = await vm.load(prog, { verify: false });
 * loaded.run(new Uint8Array(4)); // 4n (r2 = input length)
 * ```
 */

export {
  BpfError,
  DecodeError,
  AsmError,
  ElfError,
  BtfError,
  VerifierError,
  JitError,
  LinkError,
  ExecError,
  TerminationError,
  MapError,
  TestRunError,
  UsageError,
  WorkerError,
  InternalError,
  isBpfError,
  isExecError,
  isVerifierError,
  type ErrnoCode,
  type ExecErrorKind,
  type TerminationReason,
} from './errors.js';
export { insn, decodeInsns, encodeInsns, isLdImm64, type Insn, type Reg } from './isa/insn.js';
export {
  OP_TABLE,
  lookupOp,
  type OpInfo,
  type OpKind,
  type AluOp,
  type JmpCond,
} from './isa/table.js';
export {
  createProgram,
  programFromBytes,
  PROG_TYPES,
  type Program,
  type ProgramOptions,
  type ProgType,
  type Subprog,
} from './program.js';
export { assemble, assembleProgram } from './asm/assembler.js';
export {
  disassemble,
  disassembleBytes,
  disasmInsn,
  type DisasmOptions,
  type DisasmSyntax,
} from './asm/disassembler.js';
export { parseDataFile, type DataFile } from './asm/data-file.js';
export { interpret } from './interp/interpreter.js';
export { FUNC_PROTOS, funcProto, helperName, type FuncProto } from './helper-protos.js';
export { KFUNC_PROTOS, kfuncProto } from './kfunc-protos.js';
export type { KfuncSig, KfuncArg, KfuncRet } from './verifier/verifier.js';
export { loadObject } from './loader/object.js';
export {
  decodeBtf,
  encodeBtf,
  enumName,
  type BtfValue,
  type BtfStruct,
} from './loader/btf-value.js';
export type {
  BpfObject,
  ObjProgram,
  MapDef,
  GlobalData,
  GlobalVar,
  ProgReloc,
} from './loader/types.js';
export type { ExecEnv, MemRegion, HelperArgs } from './interp/env.js';
export { Vm, type VmOptions, type LoadOptions } from '../runtime/vm.js';
export {
  LoadedProgram,
  type Batch,
  type Engine,
  type RunInput,
} from '../runtime/loaded-program.js';
export type { HelperProto } from '../runtime/helpers.js';
export { BpfMap, type MapSpec } from '../runtime/maps/map.js';
export { LoadedObject, ObjectGlobals, type ObjectOptions } from '../runtime/object.js';
export { TypedMap } from '../runtime/btf-view.js';
export type { KfuncProto } from '../runtime/helpers.js';
export {
  FRAME_ALLOC_MAX,
  FRAME_SIZE_CLASSES,
  FrameAllocator,
  type FrameAllocStats,
  type LiveObject,
  type OwnerUsage,
} from '../runtime/frame-alloc.js';
export type { TestRunOptions, TestRunResult } from '../runtime/test-run.js';
