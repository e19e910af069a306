"""python-diskcache's side of crates/dcache/tests/python_interop_values.rs: structured
(pickled) values and keys, memoize keys, and pickles dcache must refuse to run."""

import os

from diskcache import Cache

from common import MISSING, dec, enc, main, rows


class Point:
    """A class instance: pickled as a reference to ``__main__.Point``."""

    def __init__(self, x, y):
        self.x, self.y = x, y


class Evil:
    """Unpickling this runs ``os.system`` (in python): dcache must refuse it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ('touch %s' % self.marker,))


def structured_values(data):
    """Reads every value dcache wrote (tagged, so types show); writes python's own values."""
    with Cache(data['rust_dir']) as c:
        found = {key: enc(c[key]) for key in c}
        is_nan = c['nan'] != c['nan']
    with Cache(data['py_dir']) as c:
        c['struct'] = {
            'name': 'Ada',
            'langs': ['analytical engine', 'notes'],
            'admin': True,
            'age': None,
            'scores': {'math': 9.5},
            'avatar': b'\x89PNG',
        }
        c['map'] = {'a': 1, 'b': 2}
        c['tuple'] = (1, 'x', None, 2.5)
        c['list'] = [1, 2, 3]
        c['none'] = None
        c['true'] = True
        c['i64_max'] = 2**63 - 1
        c['u64_max'] = 2**64 - 1
        c['neg_big'] = -2**100
        c['too_big'] = 2**200
        c['set'] = {3, 1, 2}
        c['frozenset'] = frozenset({'a', 'b'})
        c['nested'] = [(1, ['a']), (2, [])]
        c['int_keys'] = {1: 'a', 2: 'b'}
        c['bytearray'] = bytearray(b'xy')
        c['unit_variant'] = 'Red'
        c['newtype_variant'] = {'Circle': 1.5}
        c['file'] = {'text': 'z' * 40_000, 'n': 1}
        modes = {key: mode for key, mode in ((r['key']['str'], r['mode']) for r in rows(data['py_dir']))}
    return {'found': found, 'nan_is_nan': is_nan, 'py_modes': modes}


def class_instances(data):
    """Stores a class instance and a pickle that would run a command when unpickled."""
    with Cache(data['dir']) as c:
        c['point'] = Point(1, 2)
        c['evil'] = Evil(data['marker'])
        c['plain'] = {'still': 'readable'}
        c[('evil-key',)] = 1
    return {}


def structured_keys(data):
    """Lists dcache's structured keys and finds the simple ones by python's own equal keys;
    writes python's structured keys."""
    with Cache(data['rust_dir']) as c:
        keys = [enc(k) for k in c]
        lookups = [enc(c.get(dec(k), default=MISSING)) if (dec(k) in c) else None
                   for k in data['lookups']]
        rust_rows = rows(data['rust_dir'])
    with Cache(data['py_dir']) as c:
        c[(1, 'x')] = 't1'
        c[('user', 42)] = 't2'
        c[(None, True)] = 't3'
        c[2**64 - 1] = 't4'
        c[True] = 't5'
        c[((1, 2), 'a')] = 't6'
        c[frozenset({1})] = 't7'
        c[2**100] = 't8'
        # The same str object twice: python's pickle writes it once and then a memo
        # reference, so these bytes differ from dcache's for ('a', 'a').
        a = 'a'
        c[(a, a)] = 't9'
        # python's key bytes for what dcache wrote, to compare with dcache's.
        py_bytes = [c._disk.put(dec(k))[0].hex() for k in data['lookups']]
    return {'keys': keys, 'lookups': lookups, 'rust_rows': rust_rows, 'py_bytes': py_bytes}


def memoize(data):
    """Calls a function memoized by python under the name dcache used; lists the keys."""
    calls = []
    with Cache(data['dir']) as c:

        @c.memoize(name='square')
        def square(x):
            calls.append(x)
            return x * x

        result = square(12)
        return {
            'result': result,
            'calls': calls,
            'keys': [enc(k) for k in c],
            'python_key': enc(square.__cache_key__(12)),
        }


main({
    'structured_values': structured_values,
    'class_instances': class_instances,
    'structured_keys': structured_keys,
    'memoize': memoize,
})
