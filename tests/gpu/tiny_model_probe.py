"""Loads each tiny-model variant (tests/gpu/device_diag.py) in its own process.

Prints one line per (mode, GPU layers, variant): "ok" or the signal that killed it,
so one device run shows which metadata or which code path the crash follows.
"""

import signal
import subprocess
import sys
from pathlib import Path

DIAG = Path(__file__).with_name("device_diag.py")
CASES = [("raw", "0", "default"), ("raw", "99", "default"), ("engine", "0", "default")] + [
    ("engine", "99", variant)
    for variant in (
        "default",
        "no-template",
        "wide",
        "head-dim-64",
        "four-layers",
        "more-vocab",
        "head-lengths",
    )
]


def main() -> int:
    for case in CASES:
        try:
            done = subprocess.run(
                [sys.executable, "-X", "faulthandler", str(DIAG), *case],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired:
            print(f"{' '.join(case)}: hung for 60 s")
            continue
        if done.returncode == 0:
            result = "ok"
        elif done.returncode < 0:
            result = f"killed by {signal.Signals(-done.returncode).name}"
        else:
            result = f"exit {done.returncode}"
        last = [line for line in done.stdout.splitlines() if "print_info" in line][-1:]
        where = f"  last: {last[0][-70:]}" if last and result != "ok" else ""
        print(f"{' '.join(case)}: {result}{where}")
        sys.stderr.write(f"==== {case}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
