"""Write (and describe) a PyTorch `.pth` state_dict file byte for byte as torch 2.15 `torch.save`
writes it on Linux x86-64 (CPython 3.11 pickler, PyTorchStreamWriter/miniz zip), without torch.

This is the executable form of README.md "Reproducing torch's .pth". It is original code written
from observation of files torch wrote (and from torch's documented record names); make_reference.py
checks it against every package it makes, and check_seeded.py uses it to rebuild the packages.

    layout   (the dict in fixtures/arcgis_learn/<name>/layout.json, see layout_from_pth)
    storages (list of bytes, one per storage, in storage key order = order of first use)
    -> data_pkl(layout)                       the pickle, protocol 2
    -> pth_bytes(archive_name, layout, storages)  the whole zip, including .data/serialization_id

Only what a plain state_dict needs is covered: OrderedDict of tensors, one storage per tensor
except where a module is registered twice (then the second name's tensor views the first one's
storage whole: the same storage key, written once), storage_offset 0, contiguous strides, requires_grad False, location 'cpu', dtypes float32/int64,
a `_metadata` OrderedDict of module path -> {'version': n}, and a zip below 4 GiB.
"""
import bisect
import collections
import hashlib
import io
import pickle
import struct
import zipfile
import zlib

STORAGE_CLASS = {"float32": "FloatStorage", "int64": "LongStorage"}
DTYPE_OF_CLASS = {v: k for k, v in STORAGE_CLASS.items()}
ITEM_SIZE = {"float32": 4, "int64": 8}

# Records torch 2.15 writes besides data.pkl and data/<k>, with their content.
FORMAT_VERSION = b"1"
STORAGE_ALIGNMENT = b"64"
BYTEORDER = b"little"
VERSION = b"3\n"
ALIGNMENT = 64
BATCHSIZE = 1000  # pickle's SETITEMS batch size


# ---- pickle (protocol 2, as CPython's C pickler writes torch's state_dict) ------------------

class _Pickle:
    def __init__(self):
        self.out = bytearray(b"\x80\x02")  # PROTO 2
        self.memo = {}  # identity key -> memo index

    def put(self, ident=None):
        """Memoise the object just written (BINPUT / LONG_BINPUT)."""
        idx = len(self.memo)
        self.memo[ident if ident is not None else ("anon", idx)] = idx
        self.out += b"q" + bytes([idx]) if idx < 256 else b"r" + struct.pack("<I", idx)

    def get(self, ident):
        """True (and a BINGET written) if `ident` is already memoised."""
        idx = self.memo.get(ident)
        if idx is None:
            return False
        self.out += b"h" + bytes([idx]) if idx < 256 else b"j" + struct.pack("<I", idx)
        return True

    def global_(self, module, name):
        ident = ("global", module, name)
        if not self.get(ident):
            self.out += b"c" + module.encode() + b"\n" + name.encode() + b"\n"
            self.put(ident)

    def string(self, s, shared=None):
        """A str. Strings are memoised by object identity: `shared` names the ones torch/CPython
        reuse as one object ('storage', 'cpu', 'version'); every other string is a new object."""
        if shared is not None and self.get(("str", shared)):
            return
        b = s.encode("utf-8")
        self.out += b"X" + struct.pack("<I", len(b)) + b
        self.put(("str", shared) if shared is not None else None)

    def int_(self, v):
        if 0 <= v <= 0xFF:
            self.out += b"K" + bytes([v])
        elif 0 <= v <= 0xFFFF:
            self.out += b"M" + struct.pack("<H", v)
        elif -(1 << 31) <= v < (1 << 31):
            self.out += b"J" + struct.pack("<i", v)
        else:
            raise NotImplementedError("integers beyond 32 bits (LONG1) are not needed here")

    def int_tuple(self, values):
        if not values:
            self.out += b")"  # EMPTY_TUPLE, never memoised
            return
        if len(values) <= 3:
            for v in values:
                self.int_(v)
            self.out += {1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(values)]
        else:
            self.out += b"("
            for v in values:
                self.int_(v)
            self.out += b"t"
        self.put()

    def empty_odict(self):
        self.global_("collections", "OrderedDict")
        self.out += b")R"  # EMPTY_TUPLE REDUCE
        self.put()

    def items(self, pairs, write_pair):
        """dict items as CPython batches them: 1 item -> key value SETITEM; more -> MARK ...
        SETITEMS, in batches of 1000 (a trailing batch of one item is again a SETITEM)."""
        pairs = list(pairs)
        i = 0
        while i < len(pairs):
            batch = pairs[i:i + BATCHSIZE]
            if len(batch) == 1:
                write_pair(*batch[0])
                self.out += b"s"
            else:
                self.out += b"("
                for p in batch:
                    write_pair(*p)
                self.out += b"u"
            i += BATCHSIZE


def contiguous_stride(shape):
    stride, acc = [], 1
    for d in reversed(shape):
        stride.append(acc)
        acc *= d
    return list(reversed(stride))


def data_pkl(layout):
    """torch.save's data.pkl for the state_dict described by `layout`."""
    p = _Pickle()
    p.empty_odict()  # the state_dict (top-level OrderedDict), memo 0 = the OrderedDict global

    def tensor(key, t):
        p.string(key)
        p.global_("torch._utils", "_rebuild_tensor_v2")
        p.out += b"("  # MARK: arguments of _rebuild_tensor_v2
        p.out += b"("  # MARK: persistent id ('storage', <class>, key, location, numel)
        p.string("storage", shared="storage")
        p.global_("torch", STORAGE_CLASS[t["dtype"]])
        # torch's id_map hands back the same key string for a storage seen before: BINGET
        p.string(t["storage_key"], shared="storage_key:" + t["storage_key"])
        p.string(t["location"], shared="location:" + t["location"])
        p.int_(t["numel"])
        p.out += b"t"
        p.put()
        p.out += b"Q"  # BINPERSID
        p.int_(t["storage_offset"])
        p.int_tuple(t["shape"])
        p.int_tuple(t["stride"])
        p.out += b"\x89"  # NEWFALSE: requires_grad
        p.empty_odict()  # backward_hooks
        p.out += b"t"
        p.put()
        p.out += b"R"
        p.put()

    p.items(((t["key"], t) for t in layout["tensors"]), tensor)

    # BUILD state: {'_metadata': OrderedDict(path -> {'version': n})}
    p.out += b"}"
    p.put()

    def state_item(_, meta):
        p.string("_metadata")
        p.empty_odict()

        def module(path, version):
            p.string(path)
            p.out += b"}"
            p.put()
            p.string("version", shared="version")
            p.int_(version)
            p.out += b"s"

        p.items(meta, module)

    p.items([("_metadata", [tuple(m) for m in layout["metadata"]])], state_item)
    p.out += b"b."  # BUILD STOP
    return bytes(p.out)


# ---- zip (PyTorchStreamWriter on miniz) -----------------------------------------------------

# libstdc++'s std::__detail::__prime_list (bucket counts of std::unordered_set), first entries
_PRIMES = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83,
           89, 97, 103, 109, 113, 127, 137, 139, 149, 157, 167, 179, 193, 199, 211, 227, 241, 257,
           277, 293, 313, 337, 359, 383, 409, 439, 467, 503, 541, 577, 619, 661, 709, 761, 823, 887,
           953, 1031, 1109, 1193, 1289, 1381, 1493, 1613, 1741, 1879, 2029, 2179, 2357, 2549, 2753,
           2971, 3209, 3469, 3739, 4027, 4349, 4703, 5087, 5503, 5953, 6427, 6949, 7517, 8123,
           8783, 9497, 10273, 11113, 12011, 12983, 14033, 15173, 16411, 17749, 19183, 20753,
           22447, 24281, 26267, 28411, 30727, 33223, 35933, 38873, 42043, 45481, 49201, 53201,
           57557, 62233, 67307, 72817, 78779, 85229, 92203, 99733]
_FAST_BKT = [2, 2, 2, 3, 5, 5, 7, 7, 11, 11, 11, 11, 13, 13]
M64 = (1 << 64) - 1


def std_hash(data: bytes) -> int:
    """libstdc++ std::hash<std::string> on 64-bit: _Hash_bytes(data, len, 0xc70f6907)."""
    mul = (0xC6A4A793 << 32) + 0x5BD1E995
    n = len(data)
    h = (0xC70F6907 ^ (n * mul)) & M64
    aligned = n & ~7
    for i in range(0, aligned, 8):
        d = int.from_bytes(data[i:i + 8], "little")
        d = (d * mul) & M64
        d = ((d ^ (d >> 47)) * mul) & M64
        h = ((h ^ d) * mul) & M64
    if n & 7:
        h = ((h ^ int.from_bytes(data[aligned:], "little")) * mul) & M64
    h = ((h ^ (h >> 47)) * mul) & M64
    return h ^ (h >> 47)


def hash_combine(seed: int, value: int) -> int:
    """c10::hash_combine on 64-bit size_t."""
    return (seed ^ ((value + 0x9E3779B9 + (seed << 6) + (seed >> 2)) & M64)) & M64


def unordered_set_order(names):
    """Iteration order of a libstdc++ std::unordered_set<std::string> after inserting `names` in
    this order (default construction, max_load_factor 1): torch iterates its written-record set
    in this order when it hashes the record names into the serialization id."""
    bucket_count, next_resize = 1, 0
    order = []  # (hash, name) in iteration (singly linked list) order

    def next_bkt(n):
        nonlocal next_resize
        if n < len(_FAST_BKT):
            next_resize = _FAST_BKT[n]
            return _FAST_BKT[n]
        i = bisect.bisect_left(_PRIMES, n, 6)
        if i >= len(_PRIMES) - 1:
            raise NotImplementedError("too many records for the embedded prime list")
        next_resize = _PRIMES[i]
        return _PRIMES[i]

    def first_in_bucket(lst, b, nb):
        for i, (h, _) in enumerate(lst):
            if h % nb == b:
                return i
        return None

    for name in names:
        h = std_hash(name.encode("utf-8"))
        n_elt = len(order)
        if n_elt + 1 > next_resize:  # _Prime_rehash_policy::_M_need_rehash
            min_bkts = max(n_elt + 1, 0 if next_resize else 11)
            if min_bkts >= bucket_count:
                new_count = next_bkt(max(min_bkts + 1, bucket_count * 2))
                rehashed = []  # _M_rehash: walk the list, each node to the front of its bucket
                for node in order:
                    b = node[0] % new_count
                    i = first_in_bucket(rehashed, b, new_count)
                    rehashed.insert(0 if i is None else i, node)
                order, bucket_count = rehashed, new_count
            else:
                next_resize = bucket_count
        b = h % bucket_count
        i = first_in_bucket(order, b, bucket_count)
        order.insert(0 if i is None else i, (h, name))
    return [name for _, name in order]


def serialization_id(record_names, crcs):
    """`.data/serialization_id`: 20 digits of the combined std::hash of the written record names
    (unordered_set order) + 20 digits of the combined CRC32s of the records (write order)."""
    name_hash = 0
    for name in unordered_set_order(record_names):
        name_hash = hash_combine(name_hash, std_hash(name.encode("utf-8")))
    crc_hash = 0
    for c in crcs:
        crc_hash = hash_combine(crc_hash, c)
    return f"{name_hash:020d}{crc_hash:020d}"


def zip_records(archive_name, records):
    """The zip torch writes: every record STORED, flags 0x0808 (data descriptor, UTF-8), no
    timestamps, an 'FB' extra field padding each payload to a 64-byte offset, a 16-byte data
    descriptor, a central directory without extras, then zip64 end record + locator + EOCD."""
    out = bytearray()
    central = bytearray()
    for name, data in records:
        full = (archive_name + "/" + name).encode("utf-8")
        cursor = len(out)
        if cursor >= 0xFFFFFFFF or len(data) >= 0xFFFFFFFF:
            raise NotImplementedError("zip64 records (>= 4 GiB) are not needed here")
        start = cursor + 30 + len(full) + 4
        pad = (-start) % ALIGNMENT
        extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
        crc = zlib.crc32(data) & 0xFFFFFFFF
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 0, 0x0808, 0, 0, 0, 0, 0, 0, len(full), len(extra))
        out += full + extra
        assert len(out) % ALIGNMENT == 0
        out += data
        out += struct.pack("<IIII", 0x08074B50, crc, len(data), len(data))
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0, 0, 0x0808, 0, 0, 0, crc,
                               len(data), len(data), len(full), 0, 0, 0, 0, 0, cursor)
        central += full
    cd_offset, cd_size, n = len(out), len(central), len(records)
    out += central
    z64_offset = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 0x002D, 0, 0, n, n, cd_size, cd_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, z64_offset, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(n, 0xFFFF), min(n, 0xFFFF),
                       min(cd_size, 0xFFFFFFFF), min(cd_offset, 0xFFFFFFFF), 0)
    return bytes(out)


def records_for(layout, storages, pkl=None):
    """(name, bytes) in torch's write order, without the serialization id."""
    recs = [("data.pkl", data_pkl(layout) if pkl is None else pkl),
            (".format_version", FORMAT_VERSION), (".storage_alignment", STORAGE_ALIGNMENT),
            ("byteorder", BYTEORDER)]
    owners = storage_owners(layout["tensors"])
    assert len(owners) == len(storages), (len(owners), len(storages))
    recs += [(f"data/{t['storage_key']}", s) for t, s in zip(owners, storages)]
    recs.append(("version", VERSION))
    return recs


def pth_bytes(layout, storages, pkl=None):
    recs = records_for(layout, storages, pkl)
    sid = serialization_id([n for n, _ in recs], [zlib.crc32(d) & 0xFFFFFFFF for _, d in recs])
    recs.append((".data/serialization_id", sid.encode("ascii")))
    return zip_records(layout["archive_name"], recs)


# ---- storages and layout.json's compact tensor list ------------------------------------------

def check_storage_keys(tensors):
    """torch numbers storages "0", "1", ... in order of first use; a tensor naming an earlier
    storage must view all of it (same dtype and size: a module registered under two names)."""
    seen = {}
    for t in tensors:
        k = t["storage_key"]
        if k in seen:
            first = seen[k]
            assert (first["dtype"], first["numel"], t["storage_offset"]) == (t["dtype"], t["numel"], 0), t["key"]
        else:
            assert k == str(len(seen)), (t["key"], k, len(seen))
            seen[k] = t


def storage_owners(tensors):
    """The first tensor of each storage, in storage key order: its key seeds the storage's values
    and its bytes are the record data/<k>."""
    owners = {}
    for t in tensors:
        owners.setdefault(t["storage_key"], t)
    return list(owners.values())


def compact_tensors(tensors):
    """layout.json's form: [key, dtype, shape], plus the storage key as a 4th element when the
    tensor shares a storage first used by an earlier tensor."""
    out, seen = [], set()
    for t in tensors:
        row = [t["key"], t["dtype"], t["shape"]]
        if t["storage_key"] in seen:
            row.append(t["storage_key"])
        seen.add(t["storage_key"])
        out.append(row)
    return out


def expand_tensors(compact):
    """The inverse of compact_tensors: every field a tensor of layout_from_pth has."""
    tensors, fresh = [], 0
    for row in compact:
        k, d, s = row[:3]
        if len(row) > 3:
            key = row[3]
        else:
            key, fresh = str(fresh), fresh + 1
        numel = 1
        for n in s:
            numel *= n
        tensors.append({"key": k, "dtype": d, "shape": s, "stride": contiguous_stride(s), "storage_key": key,
                        "storage_offset": 0, "numel": numel, "location": "cpu"})
    check_storage_keys(tensors)
    return tensors


# ---- reading (for layout.json / fingerprint.json) --------------------------------------------

class _StorageType:
    def __init__(self, name):
        self.name = name


class _TensorRef:
    def __init__(self, storage, offset, size, stride, requires_grad, hooks):
        self.storage, self.offset, self.size, self.stride = storage, offset, list(size), list(stride)
        self.requires_grad, self.hooks = requires_grad, hooks


def _rebuild(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    assert metadata is None
    return _TensorRef(storage, storage_offset, size, stride, requires_grad, backward_hooks)


class _Reader(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild
        if module == "torch" and name in DTYPE_OF_CLASS:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

    def persistent_load(self, pid):
        kind, stype, key, location, numel = pid
        assert kind == "storage"
        return {"class": stype.name, "key": key, "location": location, "numel": numel}


def zip_entries(raw):
    """Each zip entry: name, method, size, crc32, local-header offset, payload offset."""
    z = zipfile.ZipFile(io.BytesIO(raw))
    out = []
    for i in z.infolist():
        fn_len, ex_len = struct.unpack("<HH", raw[i.header_offset + 26:i.header_offset + 30])
        out.append({"name": i.filename, "method": i.compress_type, "size": i.file_size,
                    "crc32": i.CRC, "header_offset": i.header_offset,
                    "data_offset": i.header_offset + 30 + fn_len + ex_len})
    return z, out


def layout_from_pth(raw):
    """What layout.json holds, read from the bytes torch wrote (no torch needed)."""
    z, entries = zip_entries(raw)
    pkl_name = [e["name"] for e in entries if e["name"].endswith("/data.pkl")]
    assert len(pkl_name) == 1, pkl_name
    archive = pkl_name[0][: -len("/data.pkl")]
    pkl = z.read(pkl_name[0])
    sd = _Reader(io.BytesIO(pkl)).load()
    assert type(sd) is collections.OrderedDict
    tensors = []
    for k, t in sd.items():
        st = t.storage
        dtype = DTYPE_OF_CLASS[st["class"]]
        numel = 1
        for d in t.size:
            numel *= d
        # the subset pth_writer covers; anything else must fail loudly here
        assert t.offset == 0 and t.stride == contiguous_stride(t.size) and st["numel"] == numel, k
        assert t.requires_grad is False and isinstance(t.hooks, collections.OrderedDict) and not t.hooks, k
        tensors.append({"key": k, "dtype": dtype, "shape": t.size, "stride": t.stride,
                        "storage_key": st["key"], "storage_offset": t.offset, "numel": numel,
                        "location": st["location"]})
    check_storage_keys(tensors)
    meta = getattr(sd, "_metadata")
    assert type(meta) is collections.OrderedDict
    metadata = []
    for path, d in meta.items():
        assert list(d) == ["version"], (path, d)
        metadata.append([path, d["version"]])
    return {"archive_name": archive, "pickle_protocol": pkl[1], "tensors": tensors,
            "metadata": metadata}, pkl, z, entries


def sha256(b):
    return hashlib.sha256(b).hexdigest()
