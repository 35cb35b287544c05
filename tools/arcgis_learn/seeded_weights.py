"""Seeded weights for arcgis.learn FeatureClassifier test packages: the reference implementation.

Every tensor of a state_dict is a pure function of (seed, key, dtype, shape), so a generator in
another language (the Rust test support) can write the same bytes without torch. The spec is in
README.md ("Seeded weights"); this file is its executable form and needs only numpy.

    per tensor: state = seed XOR fnv1a64(key as UTF-8)
                one splitmix64 draw per element, C (row-major) order
                u = (draw >> 40) as f32 / 2^24        exact, in [0, 1)
                v = 2u - 1                             exact, in [-1, 1)
    value, first rule that matches (all arithmetic in float32, IEEE round-to-nearest-even):
      1. integer dtype (int64, e.g. num_batches_tracked)  -> 0
      2. key ends with "running_var"                       -> 0.5 + u
      3. key ends with "running_mean"                      -> v * 0.1
      4. ndim >= 2                                         -> v * b,  b = f32(sqrt(gain / fan_in)),
                                                              in f64, fan_in = prod(shape[1:]),
                                                              gain: per package, default 3
      5. key ends with ".weight"                           -> 1 + v * 0.25
      6. any other float tensor (biases, other 1-D/0-D)    -> v * 0.1

usage:
    python seeded_weights.py                  # self-check values (also listed in README.md)
    python seeded_weights.py KEY SEED D0,D1,.. [--dtype float32|int64] [--gain 3] [-n 4]
"""
import argparse
import hashlib
import math
import sys

import numpy as np

MASK64 = (1 << 64) - 1
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB

F32 = np.float32
HALF = F32(0.5)
ONE = F32(1.0)
TWO = F32(2.0)
TENTH = F32(0.1)
QUARTER = F32(0.25)
TWO_POW_24 = F32(16777216.0)

SUPPORTED_DTYPES = ("float32", "int64")
DEFAULT_GAIN = 3.0  # rule 4: LeCun-uniform bound sqrt(3 / fan_in) unless a package says otherwise


def fnv1a64(data: bytes) -> int:
    h = FNV_OFFSET
    for byte in data:
        h ^= byte
        h = (h * FNV_PRIME) & MASK64
    return h


def initial_state(seed: int, key: str) -> int:
    return (seed ^ fnv1a64(key.encode("utf-8"))) & MASK64


def splitmix64_draws(state: int, n: int) -> np.ndarray:
    """The first n outputs of splitmix64 started at `state` (uint64; wrapping arithmetic).
    Output i uses the state after i+1 increments: s_i = state + (i+1) * GOLDEN."""
    with np.errstate(over="ignore"):
        idx = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(state) + idx * np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
        return z ^ (z >> np.uint64(31))


def splitmix64_scalar(state: int, n: int) -> list:
    """The same draws, one at a time, exactly as the spec states them (for the self-check)."""
    out = []
    for _ in range(n):
        state = (state + GOLDEN) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * MIX1) & MASK64
        z = ((z ^ (z >> 27)) * MIX2) & MASK64
        out.append(z ^ (z >> 31))
    return out


def fan_in_bound(shape, gain=DEFAULT_GAIN) -> np.float32:
    fan_in = 1
    for d in shape[1:]:
        fan_in *= int(d)
    return F32(math.sqrt(float(gain) / fan_in))  # f64 division and sqrt, one rounding to f32


def rule(key: str, dtype: str, shape, gain=DEFAULT_GAIN) -> str:
    """Which rule of the spec applies (its number and formula), for listings."""
    if dtype != "float32":
        return "1: 0"
    if key.endswith("running_var"):
        return "2: 0.5 + u"
    if key.endswith("running_mean"):
        return "3: v * 0.1"
    if len(shape) >= 2:
        return "4: v * f32(sqrt(%r/%d))" % (float(gain), int(np.prod(shape[1:])))
    if key.endswith(".weight"):
        return "5: 1 + v * 0.25"
    return "6: v * 0.1"


def tensor_values(seed: int, key: str, dtype: str, shape, gain=DEFAULT_GAIN) -> np.ndarray:
    """The tensor (numpy array, C order) that the spec assigns to `key`."""
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"{key}: dtype {dtype} is not covered by the seeded-weights spec")
    shape = tuple(int(d) for d in shape)
    n = int(np.prod(shape)) if shape else 1
    if dtype == "int64":
        return np.zeros(shape, dtype="<i8")
    draws = splitmix64_draws(initial_state(seed, key), n)
    u = (draws >> np.uint64(40)).astype(np.float32) / TWO_POW_24  # exact: < 2^24, power-of-two divisor
    v = TWO * u - ONE  # exact
    r = rule(key, dtype, shape)[0]
    if r == "2":
        out = HALF + u
    elif r == "3":
        out = v * TENTH
    elif r == "4":
        out = v * fan_in_bound(shape, gain)
    elif r == "5":
        out = ONE + v * QUARTER
    else:
        out = v * TENTH
    assert out.dtype == np.float32
    return out.reshape(shape)


def tensor_bytes(seed: int, key: str, dtype: str, shape, gain=DEFAULT_GAIN) -> bytes:
    """Little-endian storage bytes, as torch writes them into <top>/data/<k>."""
    arr = tensor_values(seed, key, dtype, shape, gain)
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes(order="C")


SELF_CHECK = [  # (key, seed, shape, dtype) printed by the self-check and listed in README.md
    ("0.0.weight", 2021, (64, 3, 7, 7), "float32"),
    ("0.1.weight", 2021, (64,), "float32"),
    ("0.1.bias", 2021, (64,), "float32"),
    ("0.1.running_mean", 2021, (64,), "float32"),
    ("0.1.running_var", 2021, (64,), "float32"),
    ("0.1.num_batches_tracked", 2021, (), "int64"),
    ("1.8.weight", 2025, (3, 512), "float32"),
]


def describe(key, seed, shape, dtype, n=4, gain=DEFAULT_GAIN):
    state = initial_state(seed, key)
    lines = [f"{key!r} seed {seed} shape {list(shape)} {dtype}",
             f"  fnv1a64(key) = 0x{fnv1a64(key.encode()):016x}, state0 = 0x{state:016x}",
             f"  rule {rule(key, dtype, shape, gain)}"]
    draws = splitmix64_scalar(state, n)
    vec = splitmix64_draws(state, n)
    assert [int(d) for d in vec] == draws, "vectorised and scalar splitmix64 disagree"
    arr = tensor_values(seed, key, dtype, shape, gain).reshape(-1)[:n]
    lines.append("  draws  = " + ", ".join(f"0x{d:016x}" for d in draws))
    if dtype == "float32":
        lines.append("  values = " + ", ".join(f"{float(x)!r}" for x in arr))
        lines.append("  bits   = " + ", ".join(f"0x{int(x):08x}" for x in arr.view(np.uint32)))
    else:
        lines.append("  values = " + ", ".join(str(int(x)) for x in arr))
    lines.append("  sha256(all bytes) = " + hashlib.sha256(tensor_bytes(seed, key, dtype, shape, gain)).hexdigest())
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("key", nargs="?")
    ap.add_argument("seed", nargs="?", type=int)
    ap.add_argument("shape", nargs="?", help="comma-separated, empty string for a scalar")
    ap.add_argument("--dtype", default="float32", choices=SUPPORTED_DTYPES)
    ap.add_argument("--gain", type=float, default=DEFAULT_GAIN)
    ap.add_argument("-n", type=int, default=4)
    a = ap.parse_args()
    if a.key is None:
        assert fnv1a64(b"") == FNV_OFFSET and fnv1a64(b"a") == 0xAF63DC4C8601EC8C  # published FNV-1a vectors
        assert splitmix64_scalar(0, 1)[0] == 0xE220A8397B1DCDAF  # splitmix64 from state 0
        for key, seed, shape, dtype in SELF_CHECK:
            print(describe(key, seed, shape, dtype, a.n))
        return
    if a.seed is None or a.shape is None:
        sys.exit("give KEY SEED SHAPE")
    shape = tuple(int(s) for s in a.shape.split(",") if s.strip())
    print(describe(a.key, a.seed, shape, a.dtype, a.n, a.gain))


if __name__ == "__main__":
    main()
