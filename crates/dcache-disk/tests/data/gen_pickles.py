#!/usr/bin/env python3
"""Generates the pickle test vectors of dcache-disk's pickle module (stdlib only).

Run from anywhere with CPython 3.8+ (the checked-in files were made with 3.11):

    python3 gen_pickles.py

Writes, next to this script:

* ``pickles.txt``: ``name<TAB>protocol<TAB>hex`` pickles for the decoder: each case
  pickled with every protocol 0-5 by ``pickle.dumps``, plus hand-written Python 2 style
  pickles (checked here against ``pickle.loads``). The Rust test holds the expected
  ``Value`` of each name.
* ``optimized.txt``: ``name<TAB>protocol<TAB>hex`` of
  ``pickletools.optimize(pickle.dumps(x, protocol))`` for protocols 3-5, which is how
  python-diskcache stores pickled keys (pickles above 2 KiB as
  ``fnv:<length>:<FNV-1a 64 hex>:<hex of the first 64 bytes>``). The Rust encoder must produce these bytes exactly
  for the equivalent Rust values.
"""

import datetime
import decimal
import os
import pickle
import pickletools

HERE = os.path.dirname(os.path.abspath(__file__))


def nested(depth):
    """A list nested ``depth`` levels deep: nested(1) == []."""
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


def cyclic():
    value = []
    value.append(value)
    return value


def shared():
    x = [1]
    return [x, x]


def shared_keys():
    # The same str object twice: Python writes it once and refers to it through the memo.
    name = "".join(["na", "me"])
    return [{name: 1}, {name: 2}]


MEMOIZE_KEY = ("__main__.f", 1, None, "b", 3)

# Cases pickled with every protocol by pickle.dumps. The Rust test knows what each decodes to.
CASES = {
    "none": None,
    "true": True,
    "false": False,
    "int_0": 0,
    "int_1": 1,
    "int_255": 255,
    "int_256": 256,
    "int_65535": 65535,
    "int_65536": 65536,
    "int_m1": -1,
    "int_2p31": 2**31,
    "int_m2p31m1": -(2**31) - 1,
    "int_i64max": 2**63 - 1,
    "int_i64min": -(2**63),
    "int_2p64": 2**64,
    "int_2p512": 2**512,
    "int_m2p100": -(2**100),
    "float_0": 0.0,
    "float_m0": -0.0,
    "float_1_5": 1.5,
    "float_inf": float("inf"),
    "float_minf": float("-inf"),
    "str_empty": "",
    "str_hello": "h\u00e9llo",
    "str_nul": "\x00",
    "str_300": "".join(chr(0x61 + i % 26) for i in range(300)),
    "str_special": "a\\b\nc\r\x1a\u1234\U0001f600'\"",
    "str_surrogate": "\ud800",
    "bytes_empty": b"",
    "bytes_00ff": b"\x00\xff",
    "bytes_300": bytes(range(256)) + bytes(44),
    "bytearray_ab": bytearray(b"ab"),
    "bytearray_empty": bytearray(),
    "list_empty": [],
    "list_mixed": [1, "a", None],
    "list_2500": list(range(2500)),
    "tuple_0": (),
    "tuple_1": (1,),
    "tuple_2": (1, 2),
    "tuple_3": (1, 2, 3),
    "tuple_4": (1, 2, 3, 4),
    "dict_empty": {},
    "dict_ab": {"a": 1, "b": [1, 2]},
    "dict_mixed": {1: "x", (1, 2): b"y"},
    "dict_1500": {str(i): i for i in range(1500)},
    "set_empty": set(),
    "set_12": {1, 2},
    "frozenset_empty": frozenset(),
    "frozenset_3": frozenset({3}),
    "nested": [[[]]],
    "nested_256": nested(256),
    "nested_257": nested(257),
    "shared": shared(),
    "shared_keys": shared_keys(),
    "cyclic": cyclic(),
    "decimal": decimal.Decimal("1.5"),
    "date": datetime.date(2020, 1, 1),
}

# Hand-written pickles in the style of Python 2 and of other picklers, with what Python 3's
# pickle.loads makes of them (an exception class if it fails).
RAW = [
    ("py2_string", 0, b"S'abc'\np0\n.", "abc"),
    ("py2_string_escapes", 0, b"S'a\\n\\x41\\'\\\\\\101'\n.", "a\nA'\\A"),
    ("py2_string_dquote", 0, b'S"it\'s"\n.', "it's"),
    ("py2_string_nonascii", 0, b"S'\\xe9'\n.", UnicodeDecodeError),
    ("py2_binstring", 1, b"T\x03\x00\x00\x00abc.", "abc"),
    ("py2_short_binstring", 2, b"\x80\x02U\x03abcq\x00.", "abc"),
    ("py2_long", 0, b"L12345678901234567890L\n.", 12345678901234567890),
    ("py2_long_small", 0, b"L-5L\n.", -5),
    ("py2_ints", 0, b"(I01\nI00\nI42\nI-7\nI9223372036854775807\nl.",
     [True, False, 42, -7, 2**63 - 1]),
    ("py2_unicode", 0, b"V\\u00e9\\U0001f600x\\\\y\n.", "\u00e9\U0001f600x\\\\y"),
    ("py2_unicode_surrogate", 0, b"V\\ud800\n.", None),  # Python: a str Rust cannot hold
    ("py2_float", 0, b"F1.5\n.", 1.5),
    ("py2_float_exp", 0, b"F-1e+100\n.", -1e100),
    ("py2_set", 2, b"\x80\x02c__builtin__\nset\nq\x00]q\x01(K\x01K\x02e\x85q\x02Rq\x03.", {1, 2}),
    ("py2_bytearray", 2,
     b"\x80\x02c__builtin__\nbytearray\nq\x00X\x02\x00\x00\x00abq\x01U\x07latin-1q\x02\x86q\x03Rq\x04.",
     bytearray(b"ab")),
    ("py2_dict", 0, b"(dp0\nS'a'\np1\nI1\nsS'b'\np2\n(lp3\nI1\naI2\nas.", {"a": 1, "b": [1, 2]}),
    ("py2_instance", 0, b"(i__main__\nFoo\np0\n(dp1\nb.", AttributeError),
    ("py2_reconstructor", 0,
     b"ccopy_reg\n_reconstructor\np0\n(c__main__\nFoo\np1\nc__builtin__\nobject\np2\nNtp3\nRp4\n.",
     AttributeError),
    ("dup", 2, b"\x80\x02K\x012\x86.", (1, 1)),
    ("pop_mark", 1, b"(K\x01K\x021K\x03.", 3),
    ("pop", 1, b"K\x01K\x020.", 1),
    ("pop_on_mark", 1, b"K\x01(0.", 1),
    ("trailing_bytes", 2, b"\x80\x02K\x01.garbage", 1),
    ("text_memo", 0, b"(lp0\nI1\nag0\na.", None),  # a list containing itself
    ("long_memo", 2, b"\x80\x02K\x07r\x00\x00\x01\x000j\x00\x00\x01\x00.", 7),
    ("memoize_text_get", 4, b"\x80\x04\x8c\x01a\x94(h\x00g0\nt.", ("a", "a")),
    ("frame_ok", 4, b"\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00K\x05.", 5),
    ("stack_global_class", 4,
     b"\x80\x04\x8c\x07decimal\x8c\x07Decimal\x93\x8c\x031.5\x85R.", decimal.Decimal("1.5")),
    ("bytes_global", 2, b"\x80\x02c__builtin__\nbytes\n)R.", b""),
    ("codecs_encode", 2, b"\x80\x02c_codecs\nencode\nX\x04\x00\x00\x00\xc3\xa9\xc3\xbfX\x06\x00\x00\x00latin1\x86R.",
     b"\xe9\xff"),
    ("long1_nonminimal", 2, b"\x80\x02\x8a\x03\x01\x00\x00.", 1),
    ("long4", 2, b"\x80\x02\x8b\x02\x00\x00\x00\x00\x80.", -32768),
    ("empty_long1", 2, b"\x80\x02\x8a\x00.", 0),
    ("set_additems_frozenset", 4, b"\x80\x04\x8f(K\x01\x90(K\x02\x91\x86.", ({1}, frozenset({2}))),
    ("dict_op", 1, b"(K\x01K\x02K\x03K\x04d.", {1: 2, 3: 4}),
    ("list_op", 1, b"(K\x01K\x02l.", [1, 2]),
]


def fnv1a64(data):
    """64-bit FNV-1a, to check large pickles without storing them."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def python_result(data):
    try:
        return pickle.loads(data)
    except Exception as e:  # noqa: BLE001
        return type(e)


def main():
    lines = []
    for name, value in CASES.items():
        for proto in range(6):
            try:
                data = pickle.dumps(value, proto)
            except Exception as e:  # noqa: BLE001
                raise SystemExit(f"{name} protocol {proto}: {e}")
            lines.append(f"{name}\t{proto}\t{data.hex()}")
    for proto in range(6):
        data = pickletools.optimize(pickle.dumps(MEMOIZE_KEY, proto))
        lines.append(f"memoize_key\t{proto}\t{data.hex()}")
    for name, proto, data, expected in RAW:
        got = python_result(data)
        if expected is not None and got != expected:
            raise SystemExit(f"{name}: python loads {got!r}, expected {expected!r}")
        lines.append(f"{name}\t{proto}\t{data.hex()}")
    with open(os.path.join(HERE, "pickles.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")

    optimized = {
        "none": None,
        "true": True,
        "false": False,
        "int_0": 0,
        "int_255": 255,
        "int_256": 256,
        "int_65535": 65535,
        "int_65536": 65536,
        "int_m1": -1,
        "int_m256": -256,
        "int_2p31": 2**31,
        "int_m2p31": -(2**31),
        "int_m2p31m1": -(2**31) - 1,
        "int_i64max": 2**63 - 1,
        "int_i64min": -(2**63),
        "int_u64max": 2**64 - 1,
        "int_i128min": -(2**127),
        "int_u128max": 2**128 - 1,
        "float_1_5": 1.5,
        "float_m0": -0.0,
        "float_inf": float("inf"),
        "float_nan": float("nan"),
        "str_empty": "",
        "str_a": "a",
        "str_hello": "h\u00e9llo",
        "str_255": "x" * 255,
        "str_256": "x" * 256,
        "str_70000": "y" * 70000,
        "bytes_empty": b"",
        "bytes_00ff": b"\x00\xff",
        "bytes_256": bytes(256),
        "bytes_70000": bytes(70000),
        "list_empty": [],
        "list_1": [1],
        "list_123": [1, 2, 3],
        "list_1000": list(range(1000)),
        "list_1001": list(range(1001)),
        "list_2000": list(range(2000)),
        "list_100000": list(range(100000)),
        "list_bools": [True, False],
        "list_two_40000_bytes": [bytes(40000), bytes(40000)],
        "list_of_lists": [[1], [], [2, 3]],
        "tuple_0": (),
        "tuple_1": (1,),
        "tuple_2": (1, "a"),
        "tuple_3": (1, "a", None),
        "tuple_4": (1, 2, 3, 4),
        "tuple_nested": ((1, 2), "x"),
        "dict_empty": {},
        "dict_1": {"a": 1},
        "dict_struct": {"a": 1, "b": [1, 2]},
        "dict_1000": {i: i for i in range(1000)},
        "dict_1500": {str(i): i for i in range(1500)},
        "dict_2000": {i: i for i in range(2000)},
        "enum_unit": "Name",
        "enum_newtype": {"Name": 5},
        "enum_tuple": {"Name": (1, 2)},
        "enum_struct": {"Name": {"x": 1}},
        "set_12": {1, 2},
        "set_1000": set(range(1000)),
        "frozenset_12": frozenset({1, 2}),
        "bigint_2p512": 2**512,
        "memoize_key": MEMOIZE_KEY,
    }
    lines = []
    for name, value in optimized.items():
        for proto in (3, 4, 5):
            data = pickletools.optimize(pickle.dumps(value, proto))
            if len(data) <= 2048:
                lines.append(f"{name}\t{proto}\t{data.hex()}")
            else:
                # Large: the length and FNV-1a 64 hash, plus the first 64 bytes.
                lines.append(
                    f"{name}\t{proto}\tfnv:{len(data)}:{fnv1a64(data):016x}:{data[:64].hex()}"
                )
    with open(os.path.join(HERE, "optimized.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
