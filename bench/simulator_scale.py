"""How the simulator copes with a large fleet: start-up time, then listing every device in pages of 1000.

Runs ``python -m simulator`` as a subprocess (so the numbers are the server's alone), reads the base URL
it prints when ready, walks ``GET /api/v1/devices?limit=1000`` with the continue token until the end,
and reports wall times and the server's peak resident memory (``VmHWM`` from ``/proc``).

    .venv/bin/python bench/simulator_scale.py --devices 100000
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import httpx

TOKEN = "bench-static-token"  # a throwaway credential the simulator pre-issues for this run only
ROOT = Path(__file__).resolve().parent.parent


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{system}, {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"


def _peak_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _start(devices: int, seed: int) -> tuple[subprocess.Popen[str], str, float]:
    """Start the simulator; returns the process, its base URL and the seconds until it was ready."""
    command = [
        sys.executable, "-m", "simulator", "--port", "0", "--devices", str(devices), "--seed", str(seed),
        "--access-token", TOKEN,
    ]  # fmt: skip
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    base_url = process.stdout.readline().strip()
    if not base_url:
        process.kill()
        raise SystemExit("the simulator exited before printing its base URL; run it by hand to see why")
    return process, base_url, time.perf_counter() - began


def _list_all(base_url: str, limit: int) -> tuple[int, int, float]:
    """Walk every page; returns (devices seen, pages, seconds). Fails loudly on a duplicate."""
    seen: set[str] = set()
    pages = 0
    began = time.perf_counter()
    params: dict[str, str | int] = {"limit": limit}
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as client:
        while True:
            response = client.get("/api/v1/devices", params=params)
            response.raise_for_status()
            body = response.json()
            pages += 1
            for item in body["items"]:
                name = item["metadata"]["name"]
                if name in seen:
                    raise SystemExit(f"device {name} was listed twice")
                seen.add(name)
            token = body["metadata"].get("continue")
            if not token:
                break
            params = {"limit": limit, "continue": token}
    return len(seen), pages, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=int, default=1000)
    args = parser.parse_args()

    process, base_url, startup = _start(args.devices, args.seed)
    try:
        rss_after_start = _peak_rss_mib(process.pid)
        count, pages, listing = _list_all(base_url, args.limit)
        rss_peak = _peak_rss_mib(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(f"machine:          {_machine()}")
    print(f"devices:          {args.devices} (seed {args.seed})")
    print(f"start-up:         {startup:.2f} s until the base URL was printed")
    print(f"peak RSS (start): {rss_after_start:.0f} MiB" if rss_after_start else "peak RSS (start): n/a")
    print(f"list all:         {count} devices in {pages} pages of {args.limit} in {listing:.2f} s "
          f"({listing / max(pages, 1) * 1000:.0f} ms per page)")  # fmt: skip
    print(f"peak RSS (total): {rss_peak:.0f} MiB" if rss_peak else "peak RSS (total): n/a")
    if count != args.devices:
        raise SystemExit(f"listed {count} devices, expected {args.devices}")


if __name__ == "__main__":
    main()
