"""Serial and parallel compilations of one kernel keep separate on-disk caches."""

import subprocess
import sys
import textwrap

_MODULE = textwrap.dedent('''
    import numpy as np
    from numba import prange

    from vitaccel.fixed._kernels import compiled_pair

    def _twice(a):
        out = np.empty(a.size, np.int64)
        for i in prange(a.size):
            out[i] = 2 * i
        return out

    PAIR = compiled_pair(_twice)
''')

_RUN = textwrap.dedent('''
    import warnings
    import numpy as np
    import kern
    a = np.zeros(1 << 10)
    for d in kern.PAIR:
        assert (d(a) == 2 * np.arange(a.size)).all()
        hit = sum(d.stats.cache_hits.values())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # cached code cannot be inspected
            ir = d.overloads[d.signatures[0]].library.get_llvm_str()
        print(hit, int("do_scheduling" in ir))
''')


def test_parallel_twin_is_not_the_cached_serial_code(tmp_path) -> None:
    """First run: compiled fresh, only the parallel twin calls the thread scheduler. Second
    run: both load their own cache entries (a shared entry would hand one the other's code)."""
    (tmp_path / "kern.py").write_text(_MODULE)
    runs = []
    for _ in range(2):
        res = subprocess.run([sys.executable, "-c", _RUN], cwd=tmp_path, capture_output=True,
                             text=True, check=True)
        runs.append([tuple(int(v) for v in line.split()) for line in res.stdout.splitlines()])
    assert runs[0] == [(0, 0), (0, 1)]  # (cache hits, parallel scheduling) serial, parallel
    assert [hit for hit, _ in runs[1]] == [1, 1]
    names = sorted(p.name.split(".")[1].split("-")[0] for p in (tmp_path / "__pycache__").glob(
        "*.nbi"))
    assert names == ["_twice", "_twice_parallel"]
