// A pickle *data interpreter* for the subset `torch.save(state_dict)` writes: it builds plain values
// and never imports, calls or executes anything named by the file. A GLOBAL is only a name; the few
// names below are recognised and turned into data, any other one (or any other opcode) is an error
// that names the file and the opcode.
//
// Opcodes (pickle protocols 2–4):
//   framing    PROTO 0x80 n · FRAME 0x95 u64 · STOP '.'
//   memo       BINPUT 'q' u8 · LONG_BINPUT 'r' u32 · MEMOIZE 0x94 · BINGET 'h' u8 · LONG_BINGET 'j' u32
//   values     NONE 'N' · NEWTRUE 0x88 · NEWFALSE 0x89 · BININT1 'K' u8 · BININT2 'M' u16 · BININT 'J' i32
//              LONG1 0x8a n bytes (two's complement) · BINFLOAT 'G' f64 big-endian
//              BINUNICODE 'X' u32 · SHORT_BINUNICODE 0x8c u8 · BINUNICODE8 0x8d u64 (UTF-8 text)
//              SHORT_BINSTRING 'U' u8 · BINSTRING 'T' u32 (bytes, taken as Latin-1 text)
//   containers MARK '(' · EMPTY_TUPLE ')' · TUPLE 't' · TUPLE1/2/3 0x85/0x86/0x87 · EMPTY_LIST ']'
//              APPEND 'a' · APPENDS 'e' · EMPTY_DICT '}' · SETITEM 's' · SETITEMS 'u'
//   objects    GLOBAL 'c' "module\nname\n" · STACK_GLOBAL 0x93 · REDUCE 'R' · BUILD 'b' · BINPERSID 'Q'
//
// Recognised globals and what REDUCE / BINPERSID make of them:
//   collections.OrderedDict()                  → a dict (Map)
//   torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks[, meta])
//                                              → a TorchTensorRef (no data is read here)
//   torch._utils._rebuild_parameter(tensor, requires_grad, hooks) → the tensor
//   torch.FloatStorage / BFloat16Storage / HalfStorage: storage types, used inside persistent ids
//   BINPERSID ('storage', <storage type>, key, location, numel) → a TorchStorageRef: the zip record
//     `<archive>/data/<key>` holding numel elements
//   BUILD on a dict (the `_metadata` state that `state_dict()` attaches) is accepted and ignored.
import type { DType } from "../../tensor/dtype.js";

export interface TorchStorageRef {
  kind: "storage";
  dtype: DType;
  key: string;
  numel: number;
}

export interface TorchTensorRef {
  kind: "tensor";
  storage: TorchStorageRef;
  /** In elements of the storage. */
  offset: number;
  shape: number[];
  stride: number[];
}

interface Global {
  kind: "global";
  name: string;
}

export type PickleValue =
  | null
  | boolean
  | number
  | string
  | PickleValue[]
  | Map<PickleValue, PickleValue>
  | TorchStorageRef
  | TorchTensorRef
  | Global;

const MARK = Symbol("mark");
type Slot = PickleValue | typeof MARK;

const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  "torch.FloatStorage": "f32",
  "torch.BFloat16Storage": "bf16",
  "torch.HalfStorage": "f16",
};
const KNOWN_GLOBALS = new Set([
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter",
  ...Object.keys(STORAGE_DTYPES),
]);

function isGlobal(v: Slot, name: string): boolean {
  return typeof v === "object" &&
    v !== null &&
    !Array.isArray(v) &&
    !(v instanceof Map) &&
    v.kind === "global"
    ? v.name === name
    : false;
}

function intList(v: PickleValue, what: string, file: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => Number.isSafeInteger(x)))
    throw new Error(`${file}: pickle: ${what} is not a tuple of integers`);
  return v as number[];
}

/** Interpret a torch pickle; `file` names it in errors. */
export function unpickle(bytes: Uint8Array, file: string): PickleValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder("utf-8", { fatal: true });
  const stack: Slot[] = [];
  const memo = new Map<number, PickleValue>();
  let p = 0;

  const fail = (msg: string): never => {
    throw new Error(`${file}: pickle byte ${p}: ${msg}`);
  };
  const need = (n: number): number => {
    if (p + n > bytes.length) fail("data ends inside an opcode (truncated pickle)");
    const at = p;
    p += n;
    return at;
  };
  const pop = (): PickleValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) return fail("stack underflow");
    return v as PickleValue;
  };
  const top = (): PickleValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) return fail("stack underflow");
    return v as PickleValue;
  };
  const popToMark = (): PickleValue[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail("no MARK on the stack");
    const items = stack.splice(i) as PickleValue[];
    items.shift();
    return items;
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, p);
    if (end < 0) fail("unterminated GLOBAL name");
    const s = new TextDecoder("latin1").decode(bytes.subarray(p, end));
    p = end + 1;
    return s;
  };
  const str = (n: number): string => text.decode(bytes.subarray(need(n), p));
  const global = (module: string, name: string): Global => {
    const full = `${module}.${name}`;
    if (!KNOWN_GLOBALS.has(full)) fail(`GLOBAL ${full} is not allowed (not part of a torch state dict)`);
    return { kind: "global", name: full };
  };
  const dictOf = (v: PickleValue, op: string): Map<PickleValue, PickleValue> => {
    if (!(v instanceof Map)) fail(`${op} on a value that is not a dict`);
    return v as Map<PickleValue, PickleValue>;
  };

  for (;;) {
    const at = p;
    const op = bytes[need(1)]!;
    switch (op) {
      case 0x80: // PROTO
        if (bytes[need(1)]! > 5) fail(`pickle protocol ${bytes[at + 1]} is not supported`);
        break;
      case 0x95: // FRAME: a length hint only
        need(8);
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail("STOP with a stack that does not hold one value");
        return pop();
      case 0x71: // BINPUT
        memo.set(bytes[need(1)]!, top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(view.getUint32(need(4), true), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const key = op === 0x68 ? bytes[need(1)]! : view.getUint32(need(4), true);
        if (!memo.has(key)) fail(`memo key ${key} was never stored`);
        stack.push(memo.get(key)!);
        break;
      }
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
      case 0x89: // NEWFALSE
        stack.push(op === 0x88);
        break;
      case 0x4b: // BININT1
        stack.push(bytes[need(1)]!);
        break;
      case 0x4d: // BININT2
        stack.push(view.getUint16(need(2), true));
        break;
      case 0x4a: // BININT
        stack.push(view.getInt32(need(4), true));
        break;
      case 0x8a: {
        // LONG1: n bytes, little-endian two's complement
        const n = bytes[need(1)]!;
        const b = bytes.subarray(need(n), p);
        let x = 0n;
        for (let i = n - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[i]!);
        if (n > 0 && b[n - 1]! & 0x80) x -= 1n << BigInt(8 * n);
        if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < -BigInt(Number.MAX_SAFE_INTEGER))
          fail(`integer ${x} is too large`);
        stack.push(Number(x));
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        stack.push(view.getFloat64(need(8), false));
        break;
      case 0x58: // BINUNICODE
        stack.push(str(view.getUint32(need(4), true)));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(str(bytes[need(1)]!));
        break;
      case 0x8d: {
        // BINUNICODE8
        const n = view.getBigUint64(need(8), true);
        if (n > BigInt(bytes.length)) fail("string longer than the pickle");
        stack.push(str(Number(n)));
        break;
      }
      case 0x55: // SHORT_BINSTRING
      case 0x54: {
        // BINSTRING
        const n = op === 0x55 ? bytes[need(1)]! : view.getUint32(need(4), true);
        stack.push(new TextDecoder("latin1").decode(bytes.subarray(need(n), p)));
        break;
      }
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x74: // TUPLE
        stack.push(popToMark());
        break;
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const n = op - 0x84;
        const items: PickleValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(pop());
        stack.push(items);
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        const list = top();
        if (!Array.isArray(list)) fail("APPEND to a value that is not a list");
        (list as PickleValue[]).push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popToMark();
        const list = top();
        if (!Array.isArray(list)) fail("APPENDS to a value that is not a list");
        // One at a time: spreading a long MARK group into push() overflows the call stack.
        for (const v of items) (list as PickleValue[]).push(v);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        dictOf(top(), "SETITEM").set(k, v);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popToMark();
        if (items.length % 2) fail("SETITEMS with an odd number of items");
        const d = dictOf(top(), "SETITEMS");
        for (let i = 0; i < items.length; i += 2) d.set(items[i]!, items[i + 1]!);
        break;
      }
      case 0x63: {
        // GLOBAL
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") fail("STACK_GLOBAL of non-strings");
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== "storage")
          fail("persistent id is not ('storage', type, key, location, numel)");
        const [, type, key, , numel] = pid as PickleValue[];
        const typeName = typeof type === "object" && type !== null && "kind" in type ? type : null;
        const dtype = typeName && typeName.kind === "global" ? STORAGE_DTYPES[typeName.name] : undefined;
        if (!dtype) fail("persistent id names no supported storage type (Float, BFloat16, Half)");
        if (typeof key !== "string" || !Number.isSafeInteger(numel) || (numel as number) < 0)
          fail("persistent id has a bad key or element count");
        stack.push({ kind: "storage", dtype: dtype!, key: key as string, numel: numel as number });
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        if (!Array.isArray(args)) fail("REDUCE arguments are not a tuple");
        const a = args as PickleValue[];
        if (isGlobal(fn, "collections.OrderedDict")) {
          if (a.length) fail("OrderedDict with arguments");
          stack.push(new Map());
        } else if (isGlobal(fn, "torch._utils._rebuild_tensor_v2")) {
          if (a.length < 4) fail("_rebuild_tensor_v2 with too few arguments");
          const storage = a[0] as TorchStorageRef;
          if (
            typeof storage !== "object" ||
            storage === null ||
            !("kind" in storage) ||
            storage.kind !== "storage"
          )
            fail("_rebuild_tensor_v2 without a storage");
          if (!Number.isSafeInteger(a[1])) fail("_rebuild_tensor_v2 with a bad storage offset");
          const shape = intList(a[2]!, "tensor size", file);
          const stride = intList(a[3]!, "tensor stride", file);
          if (shape.length !== stride.length) fail("tensor size and stride differ in length");
          stack.push({ kind: "tensor", storage, offset: a[1] as number, shape, stride });
        } else if (isGlobal(fn, "torch._utils._rebuild_parameter")) {
          const t = a[0];
          if (typeof t !== "object" || t === null || !("kind" in t) || t.kind !== "tensor")
            fail("_rebuild_parameter without a tensor");
          stack.push(t!);
        } else fail("REDUCE of something that is not a known constructor");
        break;
      }
      case 0x62: {
        // BUILD
        pop();
        dictOf(top(), "BUILD");
        break;
      }
      default:
        p = at;
        fail(`opcode 0x${op.toString(16).padStart(2, "0")} is not supported`);
    }
  }
}
