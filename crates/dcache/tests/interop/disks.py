"""python-diskcache's side of crates/dcache/tests/python_interop_disks.rs: MsgpackDisk
directories, JSONDisk directories, and text value files."""

import math
import os

from diskcache import Cache, JSONDisk

from common import items, main, rows, warnings_of


def msgpack(data):
    """Reads a directory dcache's MsgpackDisk wrote; adds a pickled entry."""
    with Cache(data['dir']) as c:
        found = items(c)
        check = warnings_of(c, False)
        c['from-python'] = {'a': 1, 'b': [True, None]}
    return {'items': found, 'check': check, 'rows': rows(data['dir'])}


# The JSON cases both sides write: [key, value], as JSON.
def json_cases():
    return [
        ['str', 'h\u00e9llo \u2713'],
        [42, [1, 2.5, 'x', None, True]],
        [1.5, {'a': 1, 'b': [True, False]}],
        [[1, 'x'], {'nested': {'deep': [1, 2, 3]}}],
        [{'k': 1, 'j': [None]}, 'dict key'],
        [None, 0],
        [True, -1.25],
        ['unicode-\u00e9-\U0001f980', 9223372036854775807],
        ['big', [i * i % 1000 for i in range(500)]],
    ]


def as_key(k):
    """A JSON key as python code would spell it: a tuple for a list (same JSON text)."""
    return tuple(k) if isinstance(k, list) else k


def json_disk(data):
    """Reads the JSONDisk directory dcache wrote and finds its rows by python's own keys;
    writes the same cases with JSONDisk at another compress level."""
    with Cache(data['rust_dir'], disk=JSONDisk) as c:
        # JSONDisk keys are JSON text, never hashed: lists and dicts work as keys too.
        found = [[k, c[k]] for k in c]
        # Every row's key bytes are what python's JSONDisk makes of the same key.
        stored = [bytes(r[0]) for r in c._sql('SELECT key FROM Cache ORDER BY rowid')]
        own = [bytes(c._disk.put(k)[0]) for k in c]
        lookups = [c.get(as_key(k), default='MISSING') for k, _ in json_cases()]
        modes = [r['mode'] for r in rows(data['rust_dir'])]
        settings = {'compress_level': c._disk.compress_level, 'min_file_size': c._disk.min_file_size}
        check = warnings_of(c, False)
    with Cache(
        data['py_dir'], disk=JSONDisk, disk_compress_level=9, disk_min_file_size=64
    ) as c:
        for k, v in json_cases():
            c[as_key(k)] = v
        c['nan'] = float('nan')
        c['inf'] = float('inf')
        py_modes = [r['mode'] for r in rows(data['py_dir'])]
    return {
        'found': found,
        'same_key_bytes': stored == own,
        'lookups': lookups,
        'rust_modes': modes,
        'settings': settings,
        'check': check,
        'py_modes': py_modes,
    }


def json_disk_after(data):
    """Reads back what dcache added to python's JSONDisk directory."""
    with Cache(data['dir'], disk=JSONDisk) as c:
        return {
            'rust_value': c.get('from-rust'),
            'bytes_value': c.get('rust-bytes'),
            'inf_is_inf': c.get('rust-inf') == float('inf'),
            'nan_is_nan': math.isnan(c.get('rust-nan')),
            'check': warnings_of(c, False),
        }


def text_files(data):
    """Reads dcache's text value file, writes the same text with python."""
    text = data['text']
    with Cache(data['rust_dir']) as c:
        read = c['crlf']
        ((filename,),) = c._sql("SELECT filename FROM Cache WHERE key = 'crlf'").fetchall()
        with open(os.path.join(data['rust_dir'], filename), 'rb') as f:
            file_bytes_exact = f.read() == text.encode()
    with Cache(data['py_dir']) as c:
        c['crlf'] = text
        own = c['crlf']
        ((mode,),) = c._sql("SELECT mode FROM Cache WHERE key = 'crlf'").fetchall()
    translated = text.replace('\r\n', '\n').replace('\r', '\n')
    return {
        'rust_file_exact': file_bytes_exact,
        'read_translated': read == translated,
        'read_exact': read == text,
        'own_translated': own == translated,
        'py_mode': mode,
    }


main({
    'msgpack': msgpack,
    'json_disk': json_disk,
    'json_disk_after': json_disk_after,
    'text_files': text_files,
})
