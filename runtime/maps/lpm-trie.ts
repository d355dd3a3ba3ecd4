/**
 * BPF_MAP_TYPE_LPM_TRIE: spec checks and node pool sizing, as the kernel's lpm_trie.c. The
 * operations are Wasm (runtime/wasm/lpm-trie.ts).
 *
 * Keys are `struct bpf_lpm_trie_key { u32 prefixlen; u8 data[]; }` (host byte order for
 * prefixlen, network order for data): key_size is 4 + 1..256 data bytes. The kernel
 * allocates nodes on demand and so requires BPF_F_NO_PREALLOC; here the nodes are
 * preallocated anyway: max_entries prefix nodes and up to max_entries - 1 intermediate ones.
 */

import { LPM_NODE_HEADER, round8 } from '../../src/abi.js';
import { MapError } from '../../src/errors.js';
import type { MapSpec, MapStorage } from './map.js';
import {
  BPF_F_ACCESS_MASK,
  BPF_F_NO_PREALLOC,
  BPF_F_NUMA_NODE,
  checkMapFlags,
} from './map-type.js';

/** Bytes of key data an LPM trie key may carry. */
export const LPM_DATA_SIZE_MIN = 1;
export const LPM_DATA_SIZE_MAX = 256;

/** Checks an LPM trie spec and sizes its node pool (2 * max_entries nodes) and next_key stack. */
export function lpmTrieStorage(spec: MapSpec): MapStorage {
  const dataSize = spec.keySize - 4;
  if (dataSize < LPM_DATA_SIZE_MIN || dataSize > LPM_DATA_SIZE_MAX) {
    throw new MapError(
      spec.name,
      'EINVAL',
      `lpm_trie keys are a u32 prefixlen and ${LPM_DATA_SIZE_MIN}..${LPM_DATA_SIZE_MAX} data bytes, not ${spec.keySize} bytes`,
    );
  }
  if (((spec.flags ?? 0) & BPF_F_NO_PREALLOC) === 0)
    throw new MapError(spec.name, 'EINVAL', 'lpm_trie maps must be created with BPF_F_NO_PREALLOC');
  checkMapFlags(spec, BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK);
  const elemSize = LPM_NODE_HEADER + round8(dataSize) + round8(spec.valueSize);
  return {
    elemSize,
    nBuckets: 0,
    dataBytes: 0,
    elemsBytes: 2 * spec.maxEntries * elemSize,
    auxBytes: (dataSize * 8 + 2) * 4,
    values: 'elems',
  };
}

/**
 * Encodes an LPM key: `prefixlen` then `data` (network order), padded with zero bytes to the
 * map's key size.
 * @example
 * map.update(lpmKey(map.keySize, 24, [10, 0, 0]), value); // 10.0.0.0/24
 */
export function lpmKey(keySize: number, prefixlen: number, data: ArrayLike<number>): Uint8Array {
  const key = new Uint8Array(keySize);
  new DataView(key.buffer).setUint32(0, prefixlen, true);
  key.set(Array.from(data).slice(0, keySize - 4), 4);
  return key;
}
