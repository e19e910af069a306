"""Writes disk_golden.jsonl: the exact columns python-diskcache 5.6.3's Disk and JSONDisk
produce for a set of keys and values.

Run with a Python that has diskcache 5.6.3 installed:

    python gen_disk_golden.py > disk_golden.jsonl

Each line is a JSON object: {"disk", "kind" ("key" or "value"), "name", and the columns}.
Column values are tagged: {"int": n}, {"real": "<repr>"}, {"text": s}, {"blob": hex},
{"null": true}. File-backed values carry the file's bytes as "file": hex.
"""
import json
import os
import sys
import tempfile

import diskcache

assert diskcache.__version__ == '5.6.3', diskcache.__version__


def col(v):
    if v is None:
        return {'null': True}
    if isinstance(v, bool):
        raise TypeError('bool columns do not occur')
    if isinstance(v, int):
        return {'int': v}
    if isinstance(v, float):
        return {'real': repr(v)}
    if isinstance(v, str):
        return {'text': v}
    if isinstance(v, (bytes, memoryview)):
        return {'blob': bytes(v).hex()}
    raise TypeError(type(v))


KEYS = [
    ('text', 'key'),
    ('text_unicode', 'h\u00e9llo \u2603'),
    ('text_empty', ''),
    ('bytes', b'key'),
    ('bytes_nul', b'\x00\xff'),
    ('bytes_empty', b''),
    ('int', 42),
    ('int_neg', -1),
    ('int_max', 2**63 - 1),
    ('int_min', -(2**63)),
    ('float', 1.5),
    ('float_neg_zero', -0.0),
    ('float_inf', float('inf')),
    ('big_int', 2**64),
    ('none', None),
    ('true', True),
    ('tuple', (1, 'x')),
    ('memo_key', ('__main__.f', 1, None, 'b', 3)),
]

VALUES = [
    ('text', 'small'),
    ('text_file', 'x' * 20 + '\u00e9'),
    ('text_crlf_file', 'line\r\nnext\r\n' * 2),
    ('bytes', b'ab'),
    ('bytes_file', b'y' * 20),
    ('int', 7),
    ('int_min', -(2**63)),
    ('float', 1.25),
    ('float_inf', float('-inf')),
    ('none', None),
    ('true', True),
    ('list', [1, 2]),
    ('dict', {'a': 1, 'b': [None, 2.5]}),
    ('tuple', (1, 'x')),
    ('big_int', 2**64),
    ('list_file', list(range(40))),
]

JSON_KEYS = [
    ('text', 'key'),
    ('int', 1),
    ('list', [1, 2]),
    ('dict', {'a': 1}),
    ('float', 0.1),
]

JSON_VALUES = [
    ('dict', {'a': [1, 2.5]}),
    ('text', 'text'),
    ('file', {'data': 'z' * 200}),
]


def emit(out, disk_name, disk, directory, kind, name, obj):
    row = {'disk': disk_name, 'kind': kind, 'name': name}
    if kind == 'key':
        db_key, raw = disk.put(obj)
        row.update(key=col(db_key), raw=bool(raw), hash=disk.hash(obj))
    else:
        size, mode, filename, db_value = disk.store(obj, False)
        row.update(size=size, mode=mode, value=col(db_value))
        if filename is not None:
            with open(os.path.join(directory, filename), 'rb') as f:
                row['file'] = f.read().hex()
    out.write(json.dumps(row, sort_keys=True) + '\n')


def main():
    out = sys.stdout
    with tempfile.TemporaryDirectory() as directory:
        disk = diskcache.Disk(directory, min_file_size=16, pickle_protocol=5)
        for name, key in KEYS:
            emit(out, 'Disk', disk, directory, 'key', name, key)
        for name, value in VALUES:
            emit(out, 'Disk', disk, directory, 'value', name, value)
        jdisk = diskcache.JSONDisk(directory, compress_level=1, min_file_size=64)
        for name, key in JSON_KEYS:
            emit(out, 'JSONDisk', jdisk, directory, 'key', name, key)
        for name, value in JSON_VALUES:
            emit(out, 'JSONDisk', jdisk, directory, 'value', name, value)


if __name__ == '__main__':
    main()
