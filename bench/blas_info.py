"""Which BLAS a Python reference of `npm run bench` runs and with how many threads, read back
from the loaded libraries themselves (not from what was asked for): every OpenBLAS mapped into
this process (found in /proc/self/maps), queried through ctypes. Debian's numpy, scipy and
torch share the system OpenBLAS (through libblas.so.3); pip wheels bundle their own copies
with prefixed symbols (scipy_openblas_get_num_threads, ..._64_), one for numpy and one for scipy.
"""
import ctypes
import os

_PREFIXES = ("", "scipy_")
_SUFFIXES = ("", "64_")


def loaded_openblas():
    """Paths of the OpenBLAS libraries mapped into this process, in load order."""
    out = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "openblas" in os.path.basename(path).lower() and ".so" in path and path not in out:
                    out.append(path)
    except OSError:
        pass
    return out


def _call(lib, name, restype):
    for p in _PREFIXES:
        for s in _SUFFIXES:
            f = getattr(lib, f"{p}{name}{s}", None)
            if f is not None:
                f.restype = restype
                return f()
    return None


def blas_info():
    """{"library", "threads", "config", "libraries"}: threads is the largest count of any
    loaded OpenBLAS (None when there is none); libraries lists each one."""
    libs = []
    for path in loaded_openblas():
        lib = ctypes.CDLL(path)
        threads = _call(lib, "openblas_get_num_threads", ctypes.c_int)
        config = _call(lib, "openblas_get_config", ctypes.c_char_p)
        libs.append({"library": path, "threads": threads, "config": config.decode() if config else ""})
    if not libs:
        return {"library": "unknown (no OpenBLAS mapped)", "threads": None, "config": "", "libraries": []}
    counts = [x["threads"] for x in libs if x["threads"] is not None]
    return {
        "library": "; ".join(x["library"] for x in libs),
        "threads": max(counts) if counts else None,
        "config": "; ".join(sorted({x["config"] for x in libs})),
        "libraries": libs,
    }


def env_threads():
    """The thread variables the process was started with."""
    return {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
