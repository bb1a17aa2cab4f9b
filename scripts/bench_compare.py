#!/usr/bin/env python3
"""f32 Adam (lr 1e-3, torch's defaults otherwise), one thread, in Gparam/s (params updated
per second / 1e9): gradstep's default build, the plain C loop, torch's fused and foreach
Adam and, when it can be imported, DeepSpeedCPUAdam, measured side by side in one run.

Rounds are interleaved (every contender at every size once per round) and the medians
are printed, with the ratios of gradstep to each contender: on a shared machine only the
ratios within one run are claims. Every contender is timed by its thread's CPU time
(`time.thread_time`, `CLOCK_THREAD_CPUTIME_ID` in the C loop and in gradstep's
benches/speed.rs), for about `--ms` milliseconds after a warm-up step, so that time the
scheduler gives to other processes counts for no one.

gradstep runs as benches/speed.rs in its worker mode (built here with
`cargo bench --bench speed --no-run`); the C loop is benches/c/adam.c built with
`cc -O3 -march=native -fno-math-errno`.

Recorded with: Python 3.11 from /work/venv, torch 2.15.0 (its +cu132 wheel, run on the
CPU, capability AVX512). DeepSpeedCPUAdam is measured when `deepspeed` imports and its
CPU Adam op builds: deepspeed 0.19.8 installs without CUDA by `pip install --target DIR
--no-deps deepspeed==0.19.8 hjson ninja py-cpuinfo pydantic pydantic-core
annotated-types typing-inspection einops msgpack psutil tqdm packaging` with DIR on
PYTHONPATH (and DIR/bin on PATH, for ninja); the op is compiled on first use by torch's
C++ extension loader (17.7 minutes at `nice -n 19` on the loaded 2-core development
machine; the build is cached in ~/.cache/torch_extensions, and a stale `lock` file left
there by an interrupted build makes the next one wait forever: delete it). Not part of the test command: nothing in the tests needs Python.

With `--multi`, also Adam over the tensor lists of benches/speed.rs (a small
transformer's parameters; 200 tensors of 4K): gradstep's owning optimizer on one and
two threads against torch's fused and foreach Adam over the same list, in wall time.

After the tables, the spread of the speed bench's machine-state probes (benches/speed.rs,
`--probe`), timed at the start of every round and before every size of torch and
DeepSpeed: a shared VM's core or caches can change speed during a run.

With `--resume-at T`, every contender steps from step T instead of from fresh state: a
long run's steady state (gradstep's speed bench and the C loop resume their step count;
torch's and DeepSpeed's `state["step"]` is set to T after their first step). There every
bias correction of the defaults has rounded to 1 in f32 (1 - 0.999^t from t = 17 321):
gradstep's x86 lanes skip the divisions by them, the C loop and torch still divide, and
DeepSpeed multiplies by their reciprocals as it always does.

Run: /work/venv/bin/python scripts/bench_compare.py [--rounds 7] [--ms 25] [--multi]
[--resume-at T]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# One thread everywhere, before torch (and DeepSpeed's OpenMP) start any.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIZES = [4 << 10, 64 << 10, 1 << 20, 16 << 20]


def size_name(n):
    return f"{n >> 20}M" if n >= 1 << 20 else f"{n >> 10}K"


def measure(step, n, ms):
    """Gparam/s of `step` (n params per call) over `ms` ms of thread CPU time."""
    step()
    # The clock is read once per batch of about 64K params, as in benches/speed.rs.
    batch = -(-(1 << 16) // n)
    start = time.thread_time()
    reps = 0
    while True:
        for _ in range(batch):
            step()
        reps += batch
        secs = time.thread_time() - start
        if reps >= 2 and secs * 1e3 >= ms:
            return n * reps / secs / 1e9


def resumed(opt, params, resume_at, tensor):
    """`opt.step`, after one step that creates the state of `params` and each one's
    `state["step"]` set to `resume_at` (a tensor for torch, an int for DeepSpeed); fresh
    when `resume_at` is 0."""
    if resume_at:
        opt.step()
        for p in params:
            if tensor:
                opt.state[p]["step"].fill_(float(resume_at))
            else:
                opt.state[p]["step"] = resume_at
    return opt.step


def torch_adam(n, resume_at=0, **kwargs):
    p = torch.nn.Parameter(torch.rand(n, dtype=torch.float32) * 0.2 - 0.1)
    p.grad = torch.rand(n, dtype=torch.float32) * 0.2 - 0.1
    opt = torch.optim.Adam([p], lr=1e-3, **kwargs)
    return resumed(opt, [p], resume_at, tensor=True)


# The multi-tensor lists of benches/speed.rs (`tensor_lists`): a small transformer's
# parameters and many equal small tensors.
K, M = 1 << 10, 1 << 20
LISTS = {
    "transformer": [16 * M] + [4 * M] * 4 + [64 * K] * 24 + [4 * K] * 48 + [K] * 48,
    "200x4K": [4 * K] * 200,
}


def torch_adam_list(sizes, resume_at=0, **kwargs):
    params = []
    for n in sizes:
        p = torch.nn.Parameter(torch.rand(n, dtype=torch.float32) * 0.2 - 0.1)
        p.grad = torch.rand(n, dtype=torch.float32) * 0.2 - 0.1
        params.append(p)
    opt = torch.optim.Adam(params, lr=1e-3, **kwargs)
    return resumed(opt, params, resume_at, tensor=True)


def measure_wall(step, n, ms):
    """Gparam/s of `step` (n params per call) over `ms` ms of wall time."""
    step()
    start = time.perf_counter()
    reps = 0
    while True:
        step()
        reps += 1
        secs = time.perf_counter() - start
        if reps >= 2 and secs * 1e3 >= ms:
            return n * reps / secs / 1e9


def deepspeed_adam():
    """DeepSpeedCPUAdam's constructor, or the reason it is not available."""
    try:
        from deepspeed.ops.adam import DeepSpeedCPUAdam
    except Exception as e:  # noqa: BLE001 - any import failure means "not measured"
        return None, f"{type(e).__name__}: {e}"

    def make(n, resume_at=0):
        p = torch.nn.Parameter(torch.rand(n, dtype=torch.float32) * 0.2 - 0.1)
        p.grad = torch.rand(n, dtype=torch.float32) * 0.2 - 0.1
        opt = DeepSpeedCPUAdam([p], lr=1e-3, adamw_mode=False)
        return resumed(opt, [p], resume_at, tensor=False)

    try:
        make(1024)()
    except Exception as e:  # noqa: BLE001
        return None, f"{type(e).__name__}: {e}"
    return make, None


def gradstep_exe():
    out = subprocess.run(
        ["cargo", "bench", "--bench", "speed", "--no-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.findall(r"Executable benches/speed\.rs \((.*)\)", out.stderr)
    if not found:
        sys.exit("bench_compare: no speed bench executable in cargo's output")
    return found[-1]


def c_loop_exe(tmp):
    exe = os.path.join(tmp, "adam_c")
    subprocess.run(
        [os.environ.get("CC", "cc"), "-O3", "-march=native", "-fno-math-errno",
         "-o", exe, str(ROOT / "benches/c/adam.c"), "-lm"],
        check=True,
    )
    return exe


def child(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    result = {}
    for line in out.splitlines():
        f = line.split()
        result[int(f[-2])] = float(f[-1])
    return result


class Probe:
    """The speed bench's machine-state probes (benches/speed.rs `--probe`: a multiply-add
    loop, a root-and-division pair on AVX-512, a 256 KiB add pass), in one child process
    that keeps its buffers for the whole run. `sample` takes one sample; `close` returns
    the child's report of their spread (benches/speed.rs `report_state`)."""

    def __init__(self, exe):
        self.proc = subprocess.Popen([exe, "--probe", "--clock", "cpu"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def sample(self):
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        self.proc.stdout.readline()

    def close(self):
        report, _ = self.proc.communicate()
        return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--ms", type=float, default=25.0)
    ap.add_argument("--multi", action="store_true",
                    help="also the multi-tensor step over benches/speed.rs's tensor lists")
    ap.add_argument("--resume-at", type=int, default=0, metavar="T",
                    help="step from step T (a long run's steady state) instead of fresh")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ds, ds_why = deepspeed_adam()
    exe = gradstep_exe()
    sizes = ",".join(str(n) for n in SIZES)
    samples = {}

    def push(name, n, v):
        samples.setdefault(name, {}).setdefault(n, []).append(v)

    probe = Probe(exe)
    with tempfile.TemporaryDirectory() as tmp:
        c_exe = c_loop_exe(tmp)
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
            probe.sample()
            for n, v in child([exe, "--worker", "--rules", "adam", "--sizes", sizes,
                               "--ms", str(args.ms), "--clock", "cpu",
                               "--resume-at", str(args.resume_at)]).items():
                push("gradstep (default build)", n, v)
            for n, v in child([c_exe, "cpu", str(args.ms), str(args.resume_at + 1)]
                              + [str(n) for n in SIZES]).items():
                push("plain C loop (gcc -O3 -march=native)", n, v)
            for n in SIZES:
                probe.sample()
                push("torch Adam(fused=True)", n,
                     measure(torch_adam(n, args.resume_at, fused=True), n, args.ms))
                push("torch Adam(foreach=True)", n,
                     measure(torch_adam(n, args.resume_at, foreach=True), n, args.ms))
                if ds is not None:
                    push("DeepSpeedCPUAdam", n, measure(ds(n, args.resume_at), n, args.ms))
            if args.multi:
                for line in subprocess.run(
                        [exe, "--worker", "--multi", "--ms", str(args.ms),
                         "--resume-at", str(args.resume_at)],
                        capture_output=True, text=True, check=True).stdout.splitlines():
                    name, threads, v = line.split()
                    push(f"gradstep, {threads} thread(s)", name, float(v))
                for name, list_sizes in LISTS.items():
                    total = sum(list_sizes)
                    for kind in ("fused", "foreach"):
                        step = torch_adam_list(list_sizes, args.resume_at, **{kind: True})
                        push(f"torch Adam({kind}=True)", name,
                             measure_wall(step, total, args.ms))
                        del step

    probe_report = probe.close()
    med = {k: {n: statistics.median(v) for n, v in by.items()} for k, by in samples.items()}
    start = f"resumed at step {args.resume_at}" if args.resume_at else "from fresh state"
    print(f"\nf32 Adam, one thread, Gparam/s, medians of {args.rounds} interleaved rounds, "
          f"{start} (torch {torch.__version__}, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()})\n")
    print("| | " + " | ".join(size_name(n) for n in SIZES) + " |")
    print("|---|" + "---|" * len(SIZES))
    for name, by in med.items():
        if all(n in by for n in SIZES):
            print(f"| {name} | " + " | ".join(f"{by[n]:.3f}" for n in SIZES) + " |")
    g = med["gradstep (default build)"]
    print()
    for name, by in med.items():
        if name.startswith("gradstep") or not all(n in by for n in SIZES):
            continue
        print(f"| gradstep / {name} | " + " | ".join(f"{g[n] / by[n]:.2f}" for n in SIZES) + " |")
    if args.multi:
        print(f"\nThe multi-tensor step (Adam over a list, wall time, Gparam/s of the "
              f"whole list; torch on one thread), medians of {args.rounds} rounds\n")
        print("| | " + " | ".join(LISTS) + " |")
        print("|---|" + "---|" * len(LISTS))
        for name, by in med.items():
            if all(k in by for k in LISTS):
                print(f"| {name} | " + " | ".join(f"{by[k]:.3f}" for k in LISTS) + " |")
        g1 = med.get("gradstep, 1 thread(s)", {})
        for name, by in med.items():
            if name.startswith("torch") and all(k in by for k in LISTS) and g1:
                print(f"| gradstep 1 thread / {name} | "
                      + " | ".join(f"{g1[k] / by[k]:.2f}" for k in LISTS) + " |")
    if probe_report:
        print("\nAt the start of every round and before each size's torch and DeepSpeed "
              "steps:\n" + probe_report, end="")
    if ds is None:
        print(f"\nDeepSpeedCPUAdam not measured: {ds_why}")


if __name__ == "__main__":
    main()
