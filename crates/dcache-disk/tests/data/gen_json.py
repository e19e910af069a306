#!/usr/bin/env python3
"""Writes json_golden.txt: the bytes of python's json.dumps for the cases pyjson.rs checks.

One line per case: name, a tab, hex(json.dumps(obj).encode('utf-8')). Default arguments
throughout (ensure_ascii=True, separators ', ' and ': ', allow_nan=True, no sorting), as
python-diskcache's JSONDisk calls it. Stdlib only; run with CPython 3.11:

    python3 gen_json.py            # rewrites json_golden.txt next to this script
"""

import json
import os
import struct
import sys

CASES = [
    ("none", None),
    ("true", True),
    ("false", False),
    ("zero", 0),
    ("minus_one", -1),
    ("i64_max", 2**63 - 1),
    ("i64_min", -(2**63)),
    ("two_pow_64", 2**64),
    ("float_zero", 0.0),
    ("float_neg_zero", -0.0),
    ("float_one", 1.0),
    ("float_one_half", 1.5),
    ("float_tenth", 0.1),
    ("float_third", 1 / 3),
    ("float_1e16", 1e16),
    ("float_1e15", 1e15),
    ("float_123456789012345678", 123456789012345678.0),
    ("float_1e-4", 1e-4),
    ("float_1e-5", 1e-5),
    ("float_min_subnormal", 5e-324),
    ("float_max", 1.7976931348623157e308),
    ("float_inf", float("inf")),
    ("float_neg_inf", float("-inf")),
    ("float_nan", float("nan")),
    ("f32_1_1", struct.unpack(">f", struct.pack(">f", 1.1))[0]),
    ("str_empty", ""),
    ("str_quote_backslash", 'a"b\\c'),
    ("str_controls", "".join(chr(i) for i in range(0x20)) + "\x7f"),
    ("str_latin", "héllo"),
    ("str_cjk", "日本"),
    ("str_astral", "😀"),
    ("list_empty", []),
    ("list_nested", [1, [2, [3]]]),
    ("tuple", (1, "a")),
    ("dict_empty", {}),
    ("dict_str_keys", {"a": 1, "b": [None, True]}),
    ("dict_int_key", {1: 2}),
    ("dict_float_key", {1.5: "x"}),
    ("dict_float_key_1e16", {1e16: 0}),
    ("dict_nan_key", {float("nan"): 1}),
    ("dict_neg_inf_key", {float("-inf"): 1}),
    ("dict_true_key", {True: 1}),
    ("dict_none_key", {None: 0}),
    ("dict_escaped_key", {'k"\n\u00e9😀': "v"}),
    ("enum_unit", "Unit"),
    ("enum_newtype", {"Newtype": 1}),
    ("enum_tuple", {"Tuple": [1, "a"]}),
    ("enum_tuple_empty", {"Tuple": []}),
    ("enum_struct", {"Struct": {"x": 1, "y": None}}),
    (
        "nested_mix",
        {
            "name": "dcache",
            "version": [5, 6],
            "ratio": 0.25,
            "tags": ["a", "ü", "\t"],
            "meta": {"nested": {"deep": [1.5, None, False]}, "empty": {}},
            "missing": float("nan"),
            "big": 2**70,
            "pairs": {-1: 1e-07, 2: 1e22},
        },
    ),
]


def main():
    if sys.implementation.name != "cpython":
        sys.exit("run with CPython")
    here = os.path.dirname(os.path.abspath(__file__))
    lines = [f"{name}\t{json.dumps(obj).encode('utf-8').hex()}\n" for name, obj in CASES]
    with open(os.path.join(here, "json_golden.txt"), "w", encoding="ascii", newline="\n") as f:
        f.writelines(lines)


if __name__ == "__main__":
    main()
