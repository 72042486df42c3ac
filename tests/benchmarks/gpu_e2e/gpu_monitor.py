"""GPU memory and utilisation every 0.5 s through NVML, per GPU and per process, each
process tagged with the Snakemake script or harness step it runs.

    python3 gpu_monitor.py OUT.csv [max_seconds]     (stops early when OUT.csv.stop exists)

Rows: t, gpu, used_mib, util_pct, pid, tag, proc_mib (one row per GPU process; pid -1
when a GPU has none)."""

import os
import sys
import time

TAGS = (
    "label.py",
    "calibrate.py",
    "snapshot_model.py",
    "snapshot_label_model.py",
    "decoders.py",
    "labels_check.py",
    "race.py",
    "build_inputs.py",
)


def tag(pid: int) -> str:
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    return next((t[:-3] for t in TAGS if t in cmd), cmd[:60].replace(",", " "))


def main() -> None:
    out, limit = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 3600.0
    try:
        import pynvml

        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception as e:  # no NVIDIA GPU: the CPU rehearsal
        print(f"no NVML: {e}")
        return
    t0 = time.time()
    with open(out, "a") as f:
        f.write("t,gpu,used_mib,util_pct,pid,tag,proc_mib\n")
        while time.time() - t0 < limit and not os.path.exists(out + ".stop"):
            t = time.time()
            for g, h in enumerate(handles):
                try:
                    mem = pynvml.nvmlDeviceGetMemoryInfo(h).used / 2**20
                    util = pynvml.nvmlDeviceGetUtilizationRates(h).gpu
                    procs = pynvml.nvmlDeviceGetComputeRunningProcesses(h)
                except Exception as e:
                    f.write(f"{t:.2f},{g},-1,-1,-1,error {e},-1\n")
                    continue
                for p in procs or [None]:
                    pid, used = (p.pid, (p.usedGpuMemory or 0) / 2**20) if p else (-1, 0)
                    f.write(f"{t:.2f},{g},{mem:.0f},{util},{pid},{tag(pid) if p else ''},{used:.0f}\n")
            f.flush()
            time.sleep(max(0.0, 0.5 - (time.time() - t)))


if __name__ == "__main__":
    main()
