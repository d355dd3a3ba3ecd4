/**
 * eBPF opcode fields and composite opcodes, spelled as the kernel's uapi
 * (`include/uapi/linux/bpf.h`, `bpf_common.h`) and RFC 9669 spell them, so that every
 * constant can be grepped against kernel documentation.
 *
 * An opcode byte is `class | source | op` for ALU and JMP classes and
 * `class | size | mode` for load and store classes.
 */

// Instruction classes (low 3 bits).
export const BPF_LD = 0x00;
export const BPF_LDX = 0x01;
export const BPF_ST = 0x02;
export const BPF_STX = 0x03;
export const BPF_ALU = 0x04;
export const BPF_JMP = 0x05;
export const BPF_JMP32 = 0x06;
export const BPF_ALU64 = 0x07;

// Source operand (bit 3) for ALU and JMP classes.
export const BPF_K = 0x00;
export const BPF_X = 0x08;
/** In BPF_END: convert to little endian (same bit as BPF_K). */
export const BPF_TO_LE = 0x00;
/** In BPF_END: convert to big endian (same bit as BPF_X). */
export const BPF_TO_BE = 0x08;

// ALU operations (high 4 bits).
export const BPF_ADD = 0x00;
export const BPF_SUB = 0x10;
export const BPF_MUL = 0x20;
export const BPF_DIV = 0x30;
export const BPF_OR = 0x40;
export const BPF_AND = 0x50;
export const BPF_LSH = 0x60;
export const BPF_RSH = 0x70;
export const BPF_NEG = 0x80;
export const BPF_MOD = 0x90;
export const BPF_XOR = 0xa0;
export const BPF_MOV = 0xb0;
export const BPF_ARSH = 0xc0;
export const BPF_END = 0xd0;

// Jump operations (high 4 bits).
export const BPF_JA = 0x00;
export const BPF_JEQ = 0x10;
export const BPF_JGT = 0x20;
export const BPF_JGE = 0x30;
export const BPF_JSET = 0x40;
export const BPF_JNE = 0x50;
export const BPF_JSGT = 0x60;
export const BPF_JSGE = 0x70;
export const BPF_CALL = 0x80;
export const BPF_EXIT = 0x90;
export const BPF_JLT = 0xa0;
export const BPF_JLE = 0xb0;
export const BPF_JSLT = 0xc0;
export const BPF_JSLE = 0xd0;
export const BPF_JCOND = 0xe0;

// Load/store sizes (bits 3-4).
export const BPF_W = 0x00;
export const BPF_H = 0x08;
export const BPF_B = 0x10;
export const BPF_DW = 0x18;

// Load/store modes (bits 5-7).
export const BPF_IMM = 0x00;
export const BPF_ABS = 0x20;
export const BPF_IND = 0x40;
export const BPF_MEM = 0x60;
export const BPF_MEMSX = 0x80;
export const BPF_ATOMIC = 0xc0;

// Atomic operations (imm of BPF_STX | BPF_ATOMIC).
export const BPF_FETCH = 0x01;
export const BPF_XCHG = 0xe0 | BPF_FETCH;
export const BPF_CMPXCHG = 0xf0 | BPF_FETCH;

// Pseudo source registers of ld_imm64 (lddw).
/** imm is a map fd; the register gets the map's address. */
export const BPF_PSEUDO_MAP_FD = 1;
/** imm is a map fd, next imm an offset; the register gets the address of the value + offset. */
export const BPF_PSEUDO_MAP_VALUE = 2;
/** imm is a BTF id of a kernel variable. */
export const BPF_PSEUDO_BTF_ID = 3;
/** imm is the relative insn offset of a function; the register gets its function token. */
export const BPF_PSEUDO_FUNC = 4;
/** imm is an index into the program's map table; like BPF_PSEUDO_MAP_FD. */
export const BPF_PSEUDO_MAP_IDX = 5;
/** imm is an index into the program's map table; like BPF_PSEUDO_MAP_VALUE. */
export const BPF_PSEUDO_MAP_IDX_VALUE = 6;

// Call source registers.
/** src of `call`: imm is a helper id. */
export const BPF_HELPER_CALL = 0;
/** src of `call`: imm is the relative insn offset of a local function. */
export const BPF_PSEUDO_CALL = 1;
/** src of `call`: imm is a kfunc id. */
export const BPF_PSEUDO_KFUNC_CALL = 2;

/** src of BPF_JMP | BPF_JCOND: may_goto. */
export const BPF_MAY_GOTO = 0;

// Registers.
export const BPF_REG_0 = 0;
export const BPF_REG_1 = 1;
export const BPF_REG_2 = 2;
export const BPF_REG_3 = 3;
export const BPF_REG_4 = 4;
export const BPF_REG_5 = 5;
export const BPF_REG_6 = 6;
export const BPF_REG_7 = 7;
export const BPF_REG_8 = 8;
export const BPF_REG_9 = 9;
export const BPF_REG_10 = 10;
/** The read-only frame pointer. */
export const BPF_REG_FP = BPF_REG_10;
/** Number of registers r0..r10. */
export const MAX_BPF_REG = 11;

/** Bytes of stack one BPF function may use. */
export const MAX_BPF_STACK = 512;
/** Nested BPF-to-BPF call frames, the entry included (the kernel's MAX_CALL_FRAMES). */
export const MAX_CALL_FRAMES = 8;
/** Budget of may_goto iterations per run (the kernel's BPF_MAX_LOOPS). */
export const BPF_MAX_LOOPS = 8 * 1024 * 1024;
/** Tail calls per run (the kernel's MAX_TAIL_CALL_CNT). */
export const MAX_TAIL_CALL_CNT = 33;

/** Field extractors, as the kernel's macros. */
export const BPF_CLASS = (code: number): number => code & 0x07;
export const BPF_SRC = (code: number): number => code & 0x08;
export const BPF_OP = (code: number): number => code & 0xf0;
export const BPF_SIZE = (code: number): number => code & 0x18;
export const BPF_MODE = (code: number): number => code & 0xe0;

/** `lddw dst, imm64`: the only 16-byte instruction. */
export const LD_DW_IMM = BPF_LD | BPF_DW | BPF_IMM;
/** `exit`. */
export const EXIT = BPF_JMP | BPF_EXIT;
/** `call imm` (helper, local function or kfunc depending on src). */
export const CALL = BPF_JMP | BPF_CALL;
/** `callx dst`: indirect call through the register in dst. */
export const CALLX = BPF_JMP | BPF_CALL | BPF_X;
/** `ja off`. */
export const JA = BPF_JMP | BPF_JA;
/** `ja32 imm` (gotol): unconditional jump with a 32-bit offset in imm. */
export const JA32 = BPF_JMP32 | BPF_JA;
/** `gotox dst`: indirect jump to the insn index held in dst. */
export const GOTOX = BPF_JMP | BPF_JA | BPF_X;
/** `may_goto off`: jump when the loop budget is spent. */
export const MAY_GOTO = BPF_JMP | BPF_JCOND;

/** Bytes per instruction slot. */
export const INSN_SIZE = 8;
