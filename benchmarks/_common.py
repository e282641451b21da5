"""Small helpers shared by the benchmark scripts.

- :func:`run_child` runs one benchmark job in its own process, under a memory limit and a
  wall-clock timeout, and reports how it ended and its peak resident memory, so that every
  method is measured alone and a method that cannot cope is reported instead of taking the
  machine down;
- :func:`child_result` / :func:`write_child_result` are the child's side of that exchange;
- :func:`time_calls` and :func:`per_step` time repeated calls (median after warm-up), and split
  a call's time into a fixed set-up cost and a cost per step (sweep, iteration, epoch);
- :func:`text_table`, :func:`markdown_table` and :func:`write_readme_section` print results and
  rewrite one marked section of a markdown file, leaving the other sections alone;
- :func:`machine_info` describes the machine and the versions the numbers were measured with.

Nothing here knows about a particular benchmark.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ChildResult",
    "child_result",
    "format_bytes",
    "machine_info",
    "markdown_table",
    "peak_rss_bytes",
    "per_step",
    "run_child",
    "text_table",
    "time_calls",
    "write_child_result",
    "write_readme_section",
]

#: Environment variable through which a child learns where to write its JSON result.
RESULT_ENV = "BENCH_RESULT_FILE"

_OOM_PATTERNS = (
    "MemoryError",
    "can't allocate memory",
    "Cannot allocate memory",
    "out of memory",
    "std::bad_alloc",
)


# ---------------------------------------------------------------------------- memory
def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return int(peak if sys.platform == "darwin" else peak * 1024)


def format_bytes(n: float | None) -> str:
    """``1.23 GB`` style (decimal units), ``-`` for None."""
    if n is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"


def _tree_rss(proc) -> int:
    """RSS of a psutil process and its descendants (0 once they are gone)."""
    import psutil

    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


# ---------------------------------------------------------------------------- child processes
@dataclass
class ChildResult:
    """How a child job ended.

    ``status`` is ``"ok"``, ``"out of memory"``, ``"timeout"`` or ``"failed"``;
    ``peak_rss`` is the child's own ``ru_maxrss`` when it reported one, else the peak seen by
    polling (which can miss a short spike); ``result`` is the JSON the child wrote, if any.
    """

    status: str
    returncode: int | None
    wall_s: float
    peak_rss: int | None
    polled_peak_rss: int
    result: dict = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def error_line(self) -> str:
        """The last meaningful line of the child's error output (for tables and logs)."""
        if self.result.get("error"):
            return str(self.result["error"]).splitlines()[-1][:200]
        lines = [ln for ln in self.stderr.strip().splitlines() if ln.strip()]
        return lines[-1][:200] if lines else ""


def _limit_memory(limit_bytes: int | None) -> Callable[[], None] | None:
    if not limit_bytes:
        return None

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return apply


def run_child(
    args: Sequence[str],
    *,
    timeout_s: float,
    mem_limit_bytes: int | None = None,
    env: Mapping[str, str] | None = None,
    poll_s: float = 0.05,
    echo: bool = False,
) -> ChildResult:
    """Run ``args`` as a child process and report how it went.

    The child's address space is capped at ``mem_limit_bytes`` (``RLIMIT_AS``), so an
    allocation beyond it fails inside the child (``MemoryError`` and the like) rather than
    pushing the machine into swap or the OOM killer. After ``timeout_s`` seconds the child is
    killed. The child's resident memory is polled every ``poll_s`` seconds; a child that calls
    :func:`write_child_result` also reports its exact peak. ``echo`` forwards the child's
    stdout as it arrives (stderr is kept for the report).
    """
    import psutil

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        result_file = Path(tmp) / "result.json"
        out_file = Path(tmp) / "stdout.txt"
        err_file = Path(tmp) / "stderr.txt"
        child_env = dict(os.environ if env is None else env)
        child_env[RESULT_ENV] = str(result_file)
        start = time.perf_counter()
        with open(out_file, "w+") as out, open(err_file, "w+") as err:
            proc = subprocess.Popen(
                list(args),
                stdout=out,
                stderr=err,
                env=child_env,
                preexec_fn=_limit_memory(mem_limit_bytes),
            )
            watched = psutil.Process(proc.pid)
            polled = 0
            timed_out = False
            shown = 0
            while proc.poll() is None:
                polled = max(polled, _tree_rss(watched))
                if time.perf_counter() - start > timeout_s:
                    timed_out = True
                    for p in [*watched.children(recursive=True), watched]:
                        with contextlib.suppress(psutil.Error):
                            p.kill()
                    proc.wait()
                    break
                if echo:
                    shown = _echo_new(out_file, shown)
                time.sleep(poll_s)
            wall = time.perf_counter() - start
            if echo:
                _echo_new(out_file, shown)
        stdout = out_file.read_text(errors="replace")
        stderr = err_file.read_text(errors="replace")
        result: dict = {}
        if result_file.exists():
            with contextlib.suppress(ValueError):
                result = json.loads(result_file.read_text())
    rc = proc.returncode
    if timed_out:
        status = "timeout"
    elif result.get("status"):
        status = result["status"]
    elif rc == 0:
        status = "ok"
    elif rc == -9 or any(p in stderr for p in _OOM_PATTERNS):
        # -9 without our timeout: most likely the kernel's OOM killer.
        status = "out of memory"
    else:
        status = "failed"
    peak = result.get("peak_rss")
    return ChildResult(
        status=status,
        returncode=rc,
        wall_s=wall,
        peak_rss=int(peak) if peak is not None else (polled or None),
        polled_peak_rss=polled,
        result=result,
        stdout=stdout,
        stderr=stderr,
    )


def _echo_new(path: Path, shown: int) -> int:
    with open(path, errors="replace") as f:
        f.seek(shown)
        new = f.read()
    if new:
        sys.stdout.write(new)
        sys.stdout.flush()
    return shown + len(new)


def write_child_result(payload: Mapping) -> None:
    """Write a child's JSON result where :func:`run_child` expects it (adds ``peak_rss``).

    Outside :func:`run_child` (the job run by hand) the result goes to stdout.
    """
    data = dict(payload)
    data.setdefault("peak_rss", peak_rss_bytes())
    text = json.dumps(data, default=_json_default)
    target = os.environ.get(RESULT_ENV)
    if target:
        Path(target).write_text(text)
    else:
        print(text)


def _json_default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


@contextlib.contextmanager
def child_result(payload: dict):
    """Run a child job's body; on exit, write ``payload`` (and how the body ended).

    A ``MemoryError`` (or an allocator failure reported as another exception) sets
    ``status="out of memory"``; any other exception ``status="failed"``. The exception is not
    re-raised: the parent reads the status from the result.
    """
    try:
        yield payload
    except BaseException as exc:
        text = f"{type(exc).__name__}: {exc}"
        oom = isinstance(exc, MemoryError) or any(p in text for p in _OOM_PATTERNS)
        payload["status"] = "out of memory" if oom else "failed"
        payload["error"] = text
        if not oom:
            import traceback

            traceback.print_exc()
    else:
        payload.setdefault("status", "ok")
    finally:
        write_child_result(payload)


# ---------------------------------------------------------------------------- timing
def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return times


def per_step(
    run: Callable[[int], object],
    n_short: int,
    n_long: int,
    repeats: int,
) -> dict:
    """Cost per step of ``run(n_steps)`` from calls with two step counts.

    ``run(n_short)`` and ``run(n_long)`` are called ``repeats`` times each, interleaved (so
    that a burst of load from elsewhere hits both alike); with ``t(n)`` the median wall time,
    the cost per step is ``(t(n_long) − t(n_short)) / (n_long − n_short)`` and the fixed cost
    of a call (validation, set-up, final clean-up) is ``t(n_short) − n_short · step``.
    Returns those and the raw times; ``last`` is the value of the last ``run(n_long)`` call.
    """
    if n_long <= n_short:
        raise ValueError(f"n_long={n_long} must exceed n_short={n_short}")
    short, long_, last = [], [], None
    for _ in range(repeats):
        tic = time.perf_counter()
        run(n_short)
        short.append(time.perf_counter() - tic)
        tic = time.perf_counter()
        last = run(n_long)
        long_.append(time.perf_counter() - tic)
    t_short, t_long = statistics.median(short), statistics.median(long_)
    step = (t_long - t_short) / (n_long - n_short)
    return {
        "step_s": step,
        "setup_s": t_short - n_short * step,
        "short_s": short,
        "long_s": long_,
        "n_short": n_short,
        "n_long": n_long,
        "last": last,
    }


# ---------------------------------------------------------------------------- tables
def _cells(rows: Iterable[Mapping], columns: Sequence[tuple[str, str]]) -> list[list[str]]:
    return [[str(row.get(key, "")) for key, _ in columns] for row in rows]


def text_table(rows: Iterable[Mapping], columns: Sequence[tuple[str, str]]) -> str:
    """A plain-text table; ``columns`` is a list of ``(key, header)``."""
    body = _cells(rows, columns)
    headers = [h for _, h in columns]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    rows_txt = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join([line, sep, *rows_txt])


def markdown_table(
    rows: Iterable[Mapping],
    columns: Sequence[tuple[str, str]],
    align: Mapping[str, str] | None = None,
) -> str:
    """A GitHub-flavoured markdown table; ``align`` maps keys to ``"l"`` or ``"r"``."""
    align = align or {}
    body = _cells(rows, columns)
    head = "| " + " | ".join(h for _, h in columns) + " |"
    rule = "|" + "|".join("---:" if align.get(k) == "r" else "---" for k, _ in columns) + "|"
    lines = ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in body]
    return "\n".join([head, rule, *lines])


def write_readme_section(path: str | os.PathLike, key: str, content: str, header: str) -> None:
    """Put ``content`` between ``<!-- key:start -->`` and ``<!-- key:end -->`` in ``path``.

    The file is created with ``header`` when absent; a missing section is appended; other
    sections and text are left as they are.
    """
    path = Path(path)
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    block = f"{start}\n{content.strip()}\n{end}"
    text = path.read_text() if path.exists() else header.rstrip() + "\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


# ---------------------------------------------------------------------------- machine
def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info(packages: Sequence[str] = ()) -> dict:
    """CPU, core count, memory, OS, Python and the versions of ``packages``."""
    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }
    with contextlib.suppress(ImportError):
        import psutil

        info["memory"] = format_bytes(psutil.virtual_memory().total)
    with contextlib.suppress(OSError):
        info["load"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    versions = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    info["versions"] = versions
    return info
