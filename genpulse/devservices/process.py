"""A server child process that can be stopped politely, then firmly."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ServerProcess:
    """A started server: its pid, where it logs, and how to stop it."""

    pid: int
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (clean shutdown), then SIGKILL if it does not exit in time."""
        if not self.alive():
            return
        os.kill(self.pid, signal.SIGTERM)
        if self._wait(timeout_s):
            return
        os.kill(self.pid, signal.SIGKILL)
        self._wait(10.0)

    def kill(self) -> None:
        """SIGKILL: for tests that simulate a crash."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            self._wait(10.0)

    def _wait(self, timeout_s: float) -> bool:
        if self.popen is not None:
            try:
                self.popen.wait(timeout=timeout_s)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                return True
            time.sleep(0.1)
        return False

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
