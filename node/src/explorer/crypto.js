// The explorer's own checks of a record, with nothing taken from the node: keccak-256,
// secp256k1 public-key recovery (what Solidity's ecrecover does), the EIP-712 digest an
// attestation signs, and the ABI encoding of `Tensor[]` that the input and output hashes cover.
// Plain JavaScript (BigInt), no dependency, no build step.

// ---- bytes ----

/** "0x…" hex to bytes. */
export function fromHex(hex) {
  const h = hex.startsWith("0x") ? hex.slice(2) : hex;
  if (h.length % 2 !== 0 || /[^0-9a-fA-F]/.test(h)) throw new Error("not hex: " + hex.slice(0, 20));
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.substr(2 * i, 2), 16);
  return out;
}

/** Bytes to "0x…" hex. */
export function toHex(bytes) {
  let s = "0x";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Concatenation of byte arrays. */
export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A big-endian 32-byte word of `value` (two's complement when negative). */
export function word(value) {
  let v = BigInt(value);
  if (v < 0n) v += 1n << 256n;
  const out = new Uint8Array(32);
  for (let i = 31; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** The unsigned integer a big-endian byte array holds. */
export function toBigInt(bytes) {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

// ---- keccak-256 ----

// Keccak-f[1600] on 25 lanes kept as 32-bit halves (lo, hi).
const RC = [
  [0x00000001, 0x00000000], [0x00008082, 0x00000000], [0x0000808a, 0x80000000], [0x80008000, 0x80000000],
  [0x0000808b, 0x00000000], [0x80000001, 0x00000000], [0x80008081, 0x80000000], [0x00008009, 0x80000000],
  [0x0000008a, 0x00000000], [0x00000088, 0x00000000], [0x80008009, 0x00000000], [0x8000000a, 0x00000000],
  [0x8000808b, 0x00000000], [0x0000008b, 0x80000000], [0x00008089, 0x80000000], [0x00008003, 0x80000000],
  [0x00008002, 0x80000000], [0x00000080, 0x80000000], [0x0000800a, 0x00000000], [0x8000000a, 0x80000000],
  [0x80008081, 0x80000000], [0x00008080, 0x80000000], [0x80000001, 0x00000000], [0x80008008, 0x80000000],
];
// Rotation of lane x + 5y.
const ROT = [0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14];

function rotl(lo, hi, n) {
  if (n >= 32) {
    [lo, hi] = [hi, lo];
    n -= 32;
  }
  if (n === 0) return [lo >>> 0, hi >>> 0];
  return [((lo << n) | (hi >>> (32 - n))) >>> 0, ((hi << n) | (lo >>> (32 - n))) >>> 0];
}

function keccakF(s) {
  const c = new Uint32Array(10);
  const b = new Uint32Array(50);
  for (let round = 0; round < 24; round++) {
    for (let x = 0; x < 5; x++) {
      c[2 * x] = s[2 * x] ^ s[2 * x + 10] ^ s[2 * x + 20] ^ s[2 * x + 30] ^ s[2 * x + 40];
      c[2 * x + 1] = s[2 * x + 1] ^ s[2 * x + 11] ^ s[2 * x + 21] ^ s[2 * x + 31] ^ s[2 * x + 41];
    }
    for (let x = 0; x < 5; x++) {
      const prev = (x + 4) % 5;
      const next = (x + 1) % 5;
      const [rlo, rhi] = rotl(c[2 * next], c[2 * next + 1], 1);
      const dlo = c[2 * prev] ^ rlo;
      const dhi = c[2 * prev + 1] ^ rhi;
      for (let y = 0; y < 5; y++) {
        s[2 * (x + 5 * y)] ^= dlo;
        s[2 * (x + 5 * y) + 1] ^= dhi;
      }
    }
    for (let x = 0; x < 5; x++) {
      for (let y = 0; y < 5; y++) {
        const from = x + 5 * y;
        const to = y + 5 * ((2 * x + 3 * y) % 5);
        const [lo, hi] = rotl(s[2 * from], s[2 * from + 1], ROT[from]);
        b[2 * to] = lo;
        b[2 * to + 1] = hi;
      }
    }
    for (let y = 0; y < 5; y++) {
      for (let x = 0; x < 5; x++) {
        const i = x + 5 * y;
        const i1 = ((x + 1) % 5) + 5 * y;
        const i2 = ((x + 2) % 5) + 5 * y;
        s[2 * i] = b[2 * i] ^ (~b[2 * i1] & b[2 * i2]);
        s[2 * i + 1] = b[2 * i + 1] ^ (~b[2 * i1 + 1] & b[2 * i2 + 1]);
      }
    }
    s[0] ^= RC[round][0];
    s[1] ^= RC[round][1];
  }
}

/** keccak-256 of `bytes` (Ethereum's, with Keccak's original padding). */
export function keccak256(bytes) {
  const rate = 136;
  const s = new Uint32Array(50);
  const padded = new Uint8Array(Math.floor(bytes.length / rate) * rate + rate);
  padded.set(bytes);
  padded[bytes.length] ^= 0x01;
  padded[padded.length - 1] ^= 0x80;
  for (let at = 0; at < padded.length; at += rate) {
    for (let j = 0; j < rate; j++) {
      const lane = j >> 3;
      const shift = 8 * (j & 3);
      s[2 * lane + ((j & 7) >> 2)] ^= padded[at + j] << shift;
    }
    keccakF(s);
  }
  const out = new Uint8Array(32);
  for (let j = 0; j < 32; j++) out[j] = (s[2 * (j >> 3) + ((j & 7) >> 2)] >>> (8 * (j & 3))) & 0xff;
  return out;
}

/** keccak-256 of a UTF-8 string. */
export function keccakText(text) {
  return keccak256(new TextEncoder().encode(text));
}

/** The 4-byte selector of a function or error signature, as hex. */
export function selector(signature) {
  return toHex(keccakText(signature).slice(0, 4));
}

// ---- secp256k1 ----

const P = 2n ** 256n - 2n ** 32n - 977n;
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const G = [
  0x79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798n,
  0x483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8n,
];

const mod = (a, m) => ((a % m) + m) % m;

function inverse(a, m) {
  let [r0, r1] = [mod(a, m), m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return mod(s0, m);
}

function powMod(base, exp, m) {
  let result = 1n;
  base = mod(base, m);
  while (exp > 0n) {
    if (exp & 1n) result = (result * base) % m;
    base = (base * base) % m;
    exp >>= 1n;
  }
  return result;
}

// Points are [x, y], or null for the point at infinity.
function add(a, b) {
  if (a === null) return b;
  if (b === null) return a;
  if (a[0] === b[0]) {
    if (mod(a[1] + b[1], P) === 0n) return null;
    const l = mod(3n * a[0] * a[0] * inverse(2n * a[1], P), P);
    const x = mod(l * l - 2n * a[0], P);
    return [x, mod(l * (a[0] - x) - a[1], P)];
  }
  const l = mod((b[1] - a[1]) * inverse(b[0] - a[0], P), P);
  const x = mod(l * l - a[0] - b[0], P);
  return [x, mod(l * (a[0] - x) - a[1], P)];
}

function multiply(point, k) {
  let result = null;
  let addend = point;
  while (k > 0n) {
    if (k & 1n) result = add(result, addend);
    addend = add(addend, addend);
    k >>= 1n;
  }
  return result;
}

/**
 * The address a 65-byte `r ‖ s ‖ v` signature over `digest` (32 bytes) recovers to, as
 * lowercase hex, or null where ecrecover would return zero.
 */
export function recoverAddress(digest, signature) {
  if (signature.length !== 65) return null;
  const r = toBigInt(signature.slice(0, 32));
  const s = toBigInt(signature.slice(32, 64));
  const v = signature[64];
  if (v !== 27 && v !== 28) return null;
  if (r <= 0n || r >= N || s <= 0n || s >= N) return null;
  const x = r;
  const ySquared = mod(x * x * x + 7n, P);
  let y = powMod(ySquared, (P + 1n) / 4n, P);
  if ((y * y) % P !== ySquared) return null;
  if ((y & 1n) !== BigInt(v - 27)) y = P - y;
  const e = mod(toBigInt(digest), N);
  const rInverse = inverse(r, N);
  const q = add(multiply(G, mod(-e * rInverse, N)), multiply([x, y], mod(s * rInverse, N)));
  if (q === null) return null;
  const hash = keccak256(concat(word(q[0]), word(q[1])));
  return toHex(hash.slice(12));
}

// ---- EIP-712 ----

/** The digest an attestation of record `id` signs (docs/design.md, "Attestation"). */
export function attestationDigest(chainId, id, modelId, inputHash, outputHash) {
  const domainType = keccakText(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)",
  );
  const domain = keccak256(
    concat(domainType, keccakText("verinfer"), keccakText("1"), word(chainId), word(0xa00n)),
  );
  const structType = keccakText(
    "Inference(uint256 chainId,uint256 id,bytes32 modelId,bytes32 inputHash,bytes32 outputHash)",
  );
  const struct = keccak256(
    concat(structType, word(chainId), word(id), fromHex(modelId), fromHex(inputHash), fromHex(outputHash)),
  );
  return keccak256(concat(new Uint8Array([0x19, 0x01]), domain, struct));
}

// ---- ABI: Tensor[] = (uint32[] shape, int256[] values, uint8 decimals)[] ----

function encodeArray(items) {
  return concat(word(items.length), ...items.map(word));
}

function encodeTensor(t) {
  const shape = encodeArray(t.shape);
  return concat(word(96), word(96 + shape.length), word(t.decimals), shape, encodeArray(t.values));
}

/** The ABI encoding of a `Tensor[]` as a tail (length, offsets, elements). */
function encodeTensors(tensors) {
  const encoded = tensors.map(encodeTensor);
  const heads = [];
  let offset = 32 * tensors.length;
  for (const e of encoded) {
    heads.push(word(offset));
    offset += e.length;
  }
  return concat(word(tensors.length), ...heads, ...encoded);
}

/** `keccak256(abi.encode(outputs))`: what a record's output hash commits to. */
export function outputHash(outputs) {
  return toHex(keccak256(concat(word(32), encodeTensors(outputs))));
}

/** `keccak256(abi.encode(modelId, inputs))`: what a record's input hash commits to. */
export function inputHash(modelId, inputs) {
  return toHex(keccak256(concat(fromHex(modelId), word(64), encodeTensors(inputs))));
}

function readWord(data, at) {
  if (at + 32 > data.length) throw new Error("calldata ends early");
  return toBigInt(data.slice(at, at + 32));
}

function readSigned(data, at) {
  const v = readWord(data, at);
  return v >= 1n << 255n ? v - (1n << 256n) : v;
}

function readSmall(data, at) {
  const v = readWord(data, at);
  if (v > BigInt(data.length)) throw new Error("offset or length out of range");
  return Number(v);
}

function decodeArray(data, at, read) {
  const n = readSmall(data, at);
  const out = [];
  for (let i = 0; i < n; i++) out.push(read(data, at + 32 + 32 * i));
  return out;
}

/** Decode `infer(bytes32, Tensor[], uint8)` calldata (selector included). */
export function decodeInferCall(calldata) {
  const data = calldata.slice(4);
  const modelId = toHex(data.slice(0, 32));
  const base = readSmall(data, 32);
  const outputDecimals = Number(readWord(data, 64) & 0xffn);
  const count = readSmall(data, base);
  const inputs = [];
  for (let i = 0; i < count; i++) {
    const start = base + 32 + readSmall(data, base + 32 + 32 * i);
    inputs.push({
      shape: decodeArray(data, start + readSmall(data, start), (d, a) => Number(readWord(d, a))),
      values: decodeArray(data, start + readSmall(data, start + 32), readSigned).map(String),
      decimals: Number(readWord(data, start + 64) & 0xffn),
    });
  }
  return { modelId, inputs, outputDecimals };
}

/** Decode an `Error(string)` revert's reason, or null. */
export function decodeRevertReason(data) {
  if (data.length < 68 || toHex(data.slice(0, 4)) !== "0x08c379a0") return null;
  const body = data.slice(4);
  const at = readSmall(body, 0);
  const length = readSmall(body, at);
  return new TextDecoder().decode(body.slice(at + 32, at + 32 + length));
}

/** `value / 10**decimals` as a decimal string, exactly. */
export function formatFixed(value, decimals) {
  const v = BigInt(value);
  if (decimals === 0) return v.toString();
  const digits = (v < 0n ? -v : v).toString().padStart(decimals + 1, "0");
  const cut = digits.length - decimals;
  return (v < 0n ? "-" : "") + digits.slice(0, cut) + "." + digits.slice(cut);
}
