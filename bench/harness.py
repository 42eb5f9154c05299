"""What every benchmark here needs: a throwaway database, gunicorn servers, wrk runs, a table.

Benchmarks compare an endpoint of the app with a bare endpoint run side by side under the same
gunicorn settings, and print the ratio. Everything they start is put in its own process group and
stopped on exit, Ctrl-C or SIGTERM; the throwaway database is dropped unless asked to keep it.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
WRK_LUA = Path(__file__).resolve().parent / "wrk_report.lua"
RESULTS = Path(__file__).resolve().parent / "results"


class BenchError(RuntimeError):
    """The benchmark cannot run; the message says why and what to do."""


def need_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise BenchError("wrk is not installed. On Debian/Ubuntu: `sudo apt-get install -y wrk` "
                         "(or build it from https://github.com/wg/wrk).")
    return path


def sigterm_as_interrupt() -> None:
    """Make SIGINT (even where a shell started us with it ignored), SIGTERM and SIGHUP unwind
    like Ctrl-C, so `finally` blocks stop what we started."""
    def _raise(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGHUP, _raise)


# --- database ----------------------------------------------------------------------------------

@contextlib.contextmanager
def throwaway_database(server_url: str, prefix: str, keep: bool = False):
    """Create `<prefix>_<random>` on the server; yield its URL; drop it afterwards unless `keep`."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server_url.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        if keep:
            print(f"kept database {url}")
        else:
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(database_url: str, redis_url: str, app_dir: Path = ROOT) -> None:
    """The schema comes only from the Alembic migrations, as in production."""
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
                   cwd=app_dir, env=app_env(database_url, redis_url), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)


def app_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT", "FLASK_"))}
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, APP_ENV="development",
               LOG_LEVEL="WARNING", **extra)
    return env


# --- servers -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """CPU time used so far by the master and its workers (Linux /proc; 0 elsewhere).
        Per request, it shows what an endpoint costs even when other load skews req/s."""
        ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        total = 0
        for pid in [self.process.pid, *_children(self.process.pid)]:
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks

    def cpu_split(self) -> dict[str, float]:
        """User and system CPU seconds, and voluntary / involuntary context switches, of the
        master and its workers so far (Linux /proc; zeros elsewhere)."""
        ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        totals = {"user": 0.0, "system": 0.0, "voluntary_switches": 0, "involuntary_switches": 0}
        for pid in [self.process.pid, *_children(self.process.pid)]:
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                totals["user"] += int(fields[11]) / ticks
                totals["system"] += int(fields[12]) / ticks
                for task in Path(f"/proc/{pid}/task").iterdir():  # every thread's own count
                    with contextlib.suppress(OSError, ValueError):
                        for line in (task / "status").read_text().splitlines():
                            name, _sep, value = line.partition(":")
                            if name == "voluntary_ctxt_switches":
                                totals["voluntary_switches"] += int(value)
                            elif name == "nonvoluntary_ctxt_switches":
                                totals["involuntary_switches"] += int(value)
        return totals

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


@dataclass
class Gunicorn:
    """One gunicorn configuration, used for the app and for its baseline alike."""
    workers: int = 2
    worker_class: str = "sync"
    threads: int = 1
    extra: list[str] = field(default_factory=list)

    def argv(self, target: str, port: int) -> list[str]:
        argv = [sys.executable, "-m", "gunicorn", target, "--bind", f"127.0.0.1:{port}",
                "--workers", str(self.workers), "--worker-class", self.worker_class,
                "--log-level", "warning", "--threads", str(self.threads), *self.extra]
        # --threads always: gunicorn.conf.py's `threads` would otherwise apply, and gunicorn
        # turns a sync worker with more than one thread into gthread.
        return argv

    def describe(self) -> str:
        text = f"--workers {self.workers} --worker-class {self.worker_class}"
        return text + (f" --threads {self.threads}" if self.threads > 1 else "")

    def start(self, name: str, target: str, env: dict[str, str], ready_path: str,
              log_dir: Path, chdir: Path = ROOT) -> Server:
        port = free_port()
        log = log_dir / f"{name}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(self.argv(target, port), cwd=chdir, env=env,
                                       stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        server = Server(name, port, process, log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BenchError(f"{name} exited at start; see {log}:\n{log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                if fetch(server.base + ready_path)[0] == 200:
                    return server
            time.sleep(0.2)
        server.stop()
        raise BenchError(f"{name} did not answer {ready_path} within 30 s; see {log}")


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --- load --------------------------------------------------------------------------------------

def wrk(server: Server, paths: list[str], *, seconds: float, connections: int, threads: int,
        work_dir: Path) -> dict:
    """Run wrk against `server` on `paths` (picked at random per request); return its summary,
    with the server's CPU time per request."""
    base = server.base
    cpu_before = server.cpu_seconds()
    paths_file = work_dir / f"paths-{secrets.token_hex(4)}.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    argv = [need_wrk(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            "--timeout", "5s", "-s", str(WRK_LUA), base, "--", str(paths_file)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    data = json.loads(line[len("WRK_JSON "):])
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    cpu = server.cpu_seconds() - cpu_before
    data["cpu_us_per_request"] = cpu / max(1, data["requests"]) * 1e6
    return data


def combine(runs: list[dict]) -> dict:
    """Several rounds of one endpoint: total throughput, and the median round's latencies."""
    requests = sum(r["requests"] for r in runs)
    seconds = sum(r["duration_us"] for r in runs) / 1e6
    by_p50 = sorted(runs, key=lambda r: r["latency_us"]["p50"])
    middle = by_p50[len(by_p50) // 2]
    errors = {k: sum(r["errors"][k] for r in runs) for k in runs[0]["errors"]}
    cpu = sum(r["cpu_us_per_request"] * r["requests"] for r in runs) / max(1, requests)
    return {"rps": requests / seconds, "requests": requests, "seconds": seconds,
            "cpu_us_per_request": cpu,
            "p50_ms": middle["latency_us"]["p50"] / 1000,
            "p99_ms": max(r["latency_us"]["p99"] for r in runs) / 1000,
            "errors": errors, "rounds": runs}


def print_table(rows: list[dict]) -> None:
    """rows: {"endpoint", "rps", "p50_ms", "p99_ms", "ratio" (or None), "cpu_us", "note"}."""
    head = (f"{'endpoint':<36} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6} "
            f"{'cpu us/req':>10}  note")
    print(head)
    print("-" * len(head))
    for row in rows:
        ratio = "" if row.get("ratio") is None else f"{row['ratio']:.2f}"
        print(f"{row['endpoint']:<36} {row['rps']:>7.0f} {row['p50_ms']:>7.2f} "
              f"{row['p99_ms']:>7.2f} {ratio:>6} {row['cpu_us']:>10.0f}  {row.get('note', '')}")


def save_results(name: str, data: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2))
    return path
