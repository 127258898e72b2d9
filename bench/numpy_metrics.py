"""numpy/scipy reference for the metrics part of `npm run bench`: ADM's evaluator
(guided-diffusion evaluations/evaluator.py) on the bench's features, as re-stated for the
kit's golden fixtures in scripts/fixtures/make_metrics_fixtures.py (imported, not copied):
  FID = compute_statistics (np.mean, np.cov) of both sets + frechet_distance (scipy.linalg.sqrtm)
  P/R = ManifoldEstimator (k = 3, 10000 x 10000 float32 distance blocks, np.partition) radii
        of both sets + evaluate_pr
(ADM partitions rows on a thread pool and computes distances with TensorFlow; here both are
single-threaded numpy, as the bench runs every side on one BLAS thread.)

Run it with OPENBLAS_NUM_THREADS=1 (bench/metrics.ts does):
  python3 bench/numpy_metrics.py --ref REF.npy --sample SAMPLE.npy --serve
prints {"ready": ...} with the BLAS actually used, then answers one JSON line per request
line: {"op": "fid"} or {"op": "pr"} -> seconds (wall and process CPU) and the values.
"""
import argparse
import json
import os
import sys
import time
import warnings

import numpy as np
import scipy

from blas_info import blas_info, env_threads

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "fixtures"))
import make_metrics_fixtures as adm  # noqa: E402


def timed(f):
    t0, c0 = time.perf_counter(), time.process_time()
    out = f()
    return out, {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}


def fid(ref, sample):
    mu1, s1 = adm.compute_statistics(ref)
    mu2, s2 = adm.compute_statistics(sample)
    return adm.frechet_distance(mu1, s1, mu2, s2)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True)
    ap.add_argument("--sample", required=True)
    ap.add_argument("--serve", action="store_true")
    a = ap.parse_args()
    ref, sample = np.load(a.ref), np.load(a.sample)
    info = {"numpy_version": np.__version__, "scipy_version": scipy.__version__, "blas": blas_info(), "env": env_threads()}
    ops = {
        "fid": lambda: {"fid": fid(ref, sample)},
        "pr": lambda: dict(zip(("precision", "recall"), adm.compute_prec_recall(ref, sample)[:2])),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if not a.serve:
            for op, f in ops.items():
                out, t = timed(f)
                info[op] = {**out, **t}
            print(json.dumps(info))
            return
        print(json.dumps({"ready": True, **info}), flush=True)
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd["op"] == "quit":
                break
            try:
                out, t = timed(ops[cmd["op"]])
                out = {**out, **t}
            except Exception as err:  # reported to the bench, which stops with it
                out = {"error": f"{type(err).__name__}: {err}"}
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
