"""Helpers shared by the interop scripts.

A script is run as ``python <script>.py <command>``: it reads one JSON document on stdin,
runs the function registered for ``command`` on it, and prints the JSON it returns.

Python values travel as tagged JSON (see ``crates/dcache/tests/common/tagged.rs``):
``{"none": null}``, ``{"bool": b}``, ``{"int": "<decimal>"}``, ``{"float": "<IEEE bits>"}``,
``{"str": s}``, ``{"bytes": "<hex>"}``, ``{"list"|"tuple"|"set"|"frozenset": [...]}``,
``{"dict": [[k, v], ...]}``.
"""

import json
import os
import sqlite3
import struct
import sys

import diskcache

assert diskcache.__version__ == '5.6.3', diskcache.__version__


def enc(x):
    """Tagged JSON for a python value (exact types: a bool is not an int)."""
    t = type(x)
    if x is None:
        return {'none': None}
    if t is bool:
        return {'bool': x}
    if t is int:
        return {'int': str(x)}
    if t is float:
        return {'float': str(struct.unpack('<Q', struct.pack('<d', x))[0])}
    if t is str:
        return {'str': x}
    if t in (bytes, bytearray):
        return {'bytes': bytes(x).hex()}
    if t in (list, tuple, set, frozenset):
        return {t.__name__: [enc(v) for v in x]}
    if t is dict:
        return {'dict': [[enc(k), enc(v)] for k, v in x.items()]}
    raise TypeError('no tagged form for %s' % t.__name__)


def dec(j):
    """The python value of tagged JSON."""
    ((kind, inner),) = j.items()
    if kind == 'none':
        return None
    if kind == 'bool':
        return bool(inner)
    if kind == 'int':
        return int(inner)
    if kind == 'float':
        return struct.unpack('<d', struct.pack('<Q', int(inner)))[0]
    if kind == 'str':
        return inner
    if kind == 'bytes':
        return bytes.fromhex(inner)
    if kind == 'list':
        return [dec(v) for v in inner]
    if kind == 'tuple':
        return tuple(dec(v) for v in inner)
    if kind == 'set':
        return {dec(v) for v in inner}
    if kind == 'frozenset':
        return frozenset(dec(v) for v in inner)
    if kind == 'dict':
        return {dec(k): dec(v) for k, v in inner}
    raise ValueError('unknown tag %r' % kind)


def column(v):
    """Tagged JSON for an SQLite column value (blobs as bytes)."""
    return enc(bytes(v) if isinstance(v, (bytes, memoryview)) else v)


def rows(directory):
    """The Cache table's columns that must agree between writers, in rowid order."""
    con = sqlite3.connect(os.path.join(directory, 'cache.db'))
    try:
        out = []
        query = (
            'SELECT key, raw, typeof(key), expire_time, tag, size, mode,'
            ' filename IS NOT NULL, typeof(value), value FROM Cache ORDER BY rowid'
        )
        for key, raw, key_type, expire, tag, size, mode, has_file, vtype, value in (
            con.execute(query)
        ):
            out.append({
                'key': column(key),
                'raw': raw,
                'key_type': key_type,
                'expire_time': expire,
                'tag': None if tag is None else column(tag),
                'size': size,
                'mode': mode,
                'file': bool(has_file),
                'value_type': vtype,
                'value': column(value),
            })
        return out
    finally:
        con.close()


def sql(directory, statement, args=()):
    """Runs one statement on ``cache.db`` directly (to inspect or to damage it)."""
    con = sqlite3.connect(os.path.join(directory, 'cache.db'), isolation_level=None)
    try:
        return [list(r) for r in con.execute(statement, args)]
    finally:
        con.close()


def warnings_of(cache, fix):
    """``cache.check(fix)`` as a sorted list of messages, the cache directory shown as <dir>."""
    return sorted(
        str(w.message).replace(cache.directory, '<dir>') for w in cache.check(fix=fix)
    )


def items(cache):
    """[key, value] of every live entry in iteration order (tagged)."""
    out = []
    for key in cache:
        value = cache.get(key, default=MISSING)
        if value is not MISSING:
            out.append([enc(key), enc(value)])
    return out


MISSING = object()


def main(commands):
    """Dispatches ``sys.argv[1]`` to ``commands`` with the JSON on stdin."""
    command = commands[sys.argv[1]]
    data = json.load(sys.stdin)
    result = command(data)
    sys.stdout.write(json.dumps(result))
