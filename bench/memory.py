"""Peak memory of this process, for the benchmarks' figures."""


def peak_rss_mb() -> float:
    """The process's peak resident memory in MB (VmHWM).

    Not getrusage's ru_maxrss: Linux keeps that across exec, so a benchmark started from a
    larger process would report its parent's peak instead of its own.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
