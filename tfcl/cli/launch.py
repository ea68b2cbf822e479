"""``tfcl launch``: run one command as the N workers of a local multi-worker cluster, each with its ``TF_CONFIG``.

tfcl launch --workers 2 -- tfcl train simclr --strategy multi_worker --out runs/simclr-2w

Worker 0 is the chief. On several machines, start the command on each with ``TF_CONFIG`` from
:func:`tfcl.strategy.tf_configs` instead (BUILD.md, "Running at scale").
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

DAY = 24 * 3600.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "launch", help="run a command as N local workers of a multi-worker cluster (sets each one's TF_CONFIG)"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--host", default="127.0.0.1", help="address the workers listen on (default loopback)")
    parser.add_argument("--port", type=int, help="worker i listens on PORT+i (default: free ports)")
    parser.add_argument(
        "--timeout", type=float, default=DAY, help="seconds before every worker is stopped (default a day)"
    )
    parser.add_argument("--log-dir", help="write worker i's output to LOG_DIR/worker-i.log (default: this terminal)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the command each worker runs")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise SystemExit("tfcl launch: give the command after --, e.g. tfcl launch -- tfcl train simclr ...")
    if args.workers < 1:
        raise SystemExit(f"tfcl launch: --workers must be at least 1, got {args.workers}")
    workers = start_workers(command, args.workers, host=args.host, port=args.port, log_dir=args.log_dir)
    try:
        codes = wait_for_workers(workers, args.timeout)
    except TimeoutError as error:
        print(f"tfcl launch: {error}", file=sys.stderr)
        return 124
    print(f"tfcl launch: worker exit codes {codes}", file=sys.stderr)
    return next((code for code in codes if code), 0)


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports the OS reports free on ``host`` now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def start_workers(
    command: list[str],
    workers: int,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    log_dir: str | os.PathLike | None = None,
    env: dict[str, str] | None = None,
) -> list[subprocess.Popen]:
    """Start ``command`` ``workers`` times, each with the ``TF_CONFIG`` of its place in the cluster (worker 0: the
    chief) on top of ``env`` (default: this process's environment); output to ``log_dir/worker-<i>.log`` if given."""
    from tfcl.strategy import tf_configs

    ports = free_ports(workers, host) if port is None else [port + index for index in range(workers)]
    processes = []
    for index, config in enumerate(tf_configs([f"{host}:{p}" for p in ports])):
        worker_env = {**(os.environ if env is None else env), "TF_CONFIG": json.dumps(config)}
        output = None
        if log_dir is not None:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
            output = open(Path(log_dir) / f"worker-{index}.log", "w")  # noqa: SIM115 (the child keeps it open)
        try:
            processes.append(
                subprocess.Popen(command, env=worker_env, stdout=output, stderr=subprocess.STDOUT if output else None)
            )
        finally:
            if output is not None:
                output.close()
    return processes


def wait_for_workers(processes: list[subprocess.Popen], timeout: float, grace: float = 10.0) -> list[int]:
    """Wait for every worker; their exit codes. Once one fails (the others would wait for it in their collectives),
    or after ``timeout`` seconds (``TimeoutError``), or on an interrupt, the rest are stopped."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            codes = [process.poll() for process in processes]  # every one, each round
            if None not in codes or any(codes):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers still running after {timeout:.0f} s: stopped")
            time.sleep(0.2)
    finally:
        stop(processes, grace)
    return [process.returncode for process in processes]


def stop(processes: list[subprocess.Popen], grace: float = 10.0) -> None:
    """Terminate the processes still running; kill those still there after ``grace`` seconds."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace)
