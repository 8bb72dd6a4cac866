"""Stopping the child processes that linkcast's commands and tests start."""

import subprocess


def stop_process(proc: "subprocess.Popen[bytes]", timeout_s: float = 30.0) -> int:
    """SIGTERM ``proc`` if it still runs, SIGKILL it after ``timeout_s``; its exit code."""
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
