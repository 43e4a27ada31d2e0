"""Instructions per sign-in through the real ACS, counted by callgrind (repeatable on a loaded
machine, where times are not).

    python benchmarks/acs_instructions.py --world /tmp/world.pickle --make   # keys, once
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg0 \\
        python benchmarks/acs_instructions.py --world /tmp/world.pickle 0
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg200 \\
        python benchmarks/acs_instructions.py --world /tmp/world.pickle 200

(Ir of the N=200 run minus Ir of the N=0 run) / 200 is one sign-in's count: the main process's
"I refs" line in valgrind's output (the minting processes it forks report their own). Verification
runs in a thread, so the whole sign-in is in that one process; the keys come from the file, since
RSA key generation's instruction count varies from run to run. Both runs mint the same number of
Responses and pending-sign-in cookies and post 20 sign-ins before counting starts to matter.

``--isolation process`` verifies in a child process, as a server does by default: callgrind
does not follow the child (it is a new program, not a fork), so the count is the app process's
side of the sign-in alone (the pipe exchange included, the verification not).
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
from datetime import UTC, datetime
from pathlib import Path

from bench_acs import post
from bench_common import World, fresh_responses, hello_app, mint_login

WARM = 20
MINTED = 220


async def sign_ins(world: World, count: int, isolation: str) -> None:
    # The gate's clock stays at the minting instant: under callgrind on a busy machine, minting
    # and the sign-ins take longer than a Response is valid (the run failed as "expired").
    minted_at = datetime.now(UTC)
    frozen = minted_at.timestamp()
    gate = world.gate(
        hello_app, verify_isolation=isolation, clock=lambda: frozen, login_timeout=3600
    )
    pairs = fresh_responses(world, "assertion-signed", MINTED, minted_at)
    logins = [mint_login(gate.settings, b64, rid, gate.core.relay) for rid, b64 in pairs]
    for login in logins[: WARM + count]:
        await post(gate, login)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", type=Path, required=True, help="the keys, pickled")
    parser.add_argument("--make", action="store_true", help="create the keys file and stop")
    parser.add_argument(
        "--isolation",
        choices=("thread", "process"),
        default="thread",
        help="where verification runs (process: only the app's side is counted)",
    )
    parser.add_argument("count", type=int, nargs="?", default=0, help=f"sign-ins after {WARM}")
    args = parser.parse_args()
    if args.make:
        world = World.create()
        world.started_gate(hello_app)  # the development JWT key, written once into its state_dir
        args.world.write_bytes(pickle.dumps(world))
        return
    if not 0 <= args.count <= MINTED - WARM:
        parser.error(f"count: 0 to {MINTED - WARM}")
    world = pickle.loads(args.world.read_bytes())  # our own file
    asyncio.run(sign_ins(world, args.count, args.isolation))


if __name__ == "__main__":
    main()
