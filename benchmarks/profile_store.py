"""Where a store task's CPU goes, and what malloc's settings do to it.

Runs the tasks of ``lobfast process`` (bench_store.py's simulated tree, N symbols x 50 h) in one
process, three ways, each in a fresh interpreter, and reports CPU seconds and minor page faults
per round (``getrusage``; the first round also pays the imports) with the load average:

* ``default``: glibc's defaults (the local pool's and one process's case);
* ``dask-env``: ``MALLOC_TRIM_THRESHOLD_=65536``, as Dask's nanny sets it for its workers, tasks
  run in a worker thread as on a Dask worker (``store._run_task``: no tuning);
* ``dask-env, tuned``: the same through ``store._run_task_dask`` (what ``process(client=)``
  submits: freed memory is kept while the task runs, handed back after).

``--profile`` also prints a cProfile (CPU clock) of one round of the default case.

    .venv/bin/python benchmarks/profile_store.py [--symbols 2] [--rounds 3] [--profile]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

CHILD = r"""
import concurrent.futures, cProfile, os, pstats, resource, shutil, sys, time
from lobfast import store
tree, out, mode, rounds, profile = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1"
spec = store.make_spec(10, "100ms", "default")
fn = store._run_task_dask if mode == "dask-env, tuned" else store._run_task
pool = concurrent.futures.ThreadPoolExecutor(1) if mode != "default" else None
for r in range(rounds):
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    groups, _ = store._discover([tree], False)
    tasks = store._plan(groups, spec, out, {}, store.Summary(out))
    prof = cProfile.Profile(time.process_time) if profile and r == rounds - 1 else None
    u0 = resource.getrusage(resource.RUSAGE_SELF)
    if prof:
        prof.enable()
    res = list(pool.map(fn, tasks)) if pool else [fn(t) for t in tasks]
    if prof:
        prof.disable()
    u1 = resource.getrusage(resource.RUSAGE_SELF)
    assert all(x["status"] == "ok" for x in res), [x["error"] for x in res if x["error"]]
    cpu = u1.ru_utime + u1.ru_stime - u0.ru_utime - u0.ru_stime
    print(f"{mode:16s} round {r}: {len(tasks)} partitions, CPU {cpu:6.2f} s, "
          f"minor faults {u1.ru_minflt - u0.ru_minflt:8d}, load {os.getloadavg()[0]:.1f}", flush=True)
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(18)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    import bench_store

    with tempfile.TemporaryDirectory(prefix="profile-store-") as tmp:
        tree = Path(tmp) / "tree"
        bench_store.make_tree(tree, a.symbols)
        from lobfast import store

        store.process(tree, Path(tmp) / "warm", workers=2, quiet=True)  # the time indexes
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        env["PYTHONPATH"] = str(BENCH.parent)
        for mode in ("default", "dask-env", "dask-env, tuned"):
            e = dict(env, **({"MALLOC_TRIM_THRESHOLD_": "65536"} if mode != "default" else {}))
            prof = "1" if a.profile and mode == "default" else "0"
            args = [sys.executable, "-c", CHILD, str(tree), str(Path(tmp) / "out"), mode, str(a.rounds), prof]
            subprocess.run(args, env=e, check=True)


if __name__ == "__main__":
    main()
