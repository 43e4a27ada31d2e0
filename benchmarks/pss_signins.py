"""PSS of the gate's processes after N sign-ins through a real server, process by process.

    python benchmarks/pss_signins.py [--sign-ins 5000]

The peers section's gate (``bench_peers.gate_target``: uvicorn's fast stack, the gate's
defaults accepting unsolicited Responses) takes ``--sign-ins`` sign-ins (``bench_peers.top_up``,
1,000 at a time), then each of its processes is read from ``/proc/<pid>/smaps_rollup``: PSS
(the figure the peers section sums), and what makes it: pages the process alone has written
(Private_Dirty) and pages written before a fork and still shared (Shared_Dirty: the zygote's,
in its children). A process is named by its place in the tree: the app's, the zygote (a child
with children), a verification child. About 20 s for 5,000 sign-ins on 2 cores.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import bench_peers
import proc_tree
from bench_common import World


def rollup_kb(pid: int) -> dict[str, int]:
    lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    return {line.split(":")[0]: int(line.split()[1]) for line in lines}


def roles(root: int) -> dict[int, str]:
    """Each process of the server by what it is: "app", "zygote" or "child"."""
    found = {root: "app"}
    for pid in proc_tree.tree((root,)):
        if pid != root:
            has_children = any(other != pid for other in proc_tree.tree((pid,)))
            found[pid] = "zygote" if has_children else "child"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sign-ins", type=int, default=5000)
    args = parser.parse_args()
    world = World.create()
    with (
        bench_peers.gate_target(world, "fast", "saml-gate defaults") as target,
        ProcessPoolExecutor(2) as pool,
    ):
        bench_peers.top_up(pool, target, args.sign_ins, 1000)
        time.sleep(1)  # the last answers written, the children idle
        memory = proc_tree.memory(target.roots)
        named = roles(target.roots[0])
        print(f"PSS after {target.signed_in:,} sign-ins: {memory.total / 1e6:.1f} MB")
        for pid, _, pss in sorted(memory.processes, key=lambda p: "azc".index(named[p[0]][0])):
            kb = rollup_kb(pid)
            print(
                f"  {named[pid]:<6} {pss / 1e6:5.1f} MB"
                f"  (Private_Dirty {kb['Private_Dirty'] / 1e3:5.1f},"
                f" Shared_Dirty {kb['Shared_Dirty'] / 1e3:5.1f},"
                f" Pss_File {kb['Pss_File'] / 1e3:4.1f} MB)"
            )


if __name__ == "__main__":
    main()
