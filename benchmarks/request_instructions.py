"""Instructions per admitted request, counted by callgrind (repeatable on a loaded machine,
where section 1's times are not).

    python benchmarks/acs_instructions.py --world /tmp/world.pickle --make   # keys, once
    for row in bare gated starlette; do for n in 0 5000; do
        PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/tmp/cg-$row-$n \\
            python benchmarks/request_instructions.py --world /tmp/world.pickle $row $n
    done; done

(Ir of the N=5000 run minus Ir of the N=0 run) / 5000 is one request's count ("I refs" in
valgrind's output); the gate's overhead is gated minus bare, compared with SessionMiddleware's
(starlette minus bare) as section 1 does, with the identity JWT on (the default). Every run
signs in once through the real ACS (verification in a thread) and sends 200 requests before
counting starts to matter, so caches (decoded cookie, JWT) are warm, as on a signed-in person's
requests. ``PYTHONHASHSEED=0`` keeps the two runs' start-up alike (string hashing moves it by
millions of instructions otherwise). The rows in ``SPLITS`` split the gate's cost (see there).
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import time
from pathlib import Path
from typing import Any

from bench_common import World, call, hello_app, status_of
from bench_requests import Subjects

from saml_gate import SamlGate
from saml_gate.identity.tokens import JWT_SCOPE_KEY
from saml_gate.session.cookies import cookie_header_of
from saml_gate.web.gatekeeper import AppRequest, Verdict

WARM = 200


async def requests(world: World, row: str, count: int) -> None:
    subjects = await Subjects.create(world)
    app, scopes = subjects.rows()["gated" if row in SPLITS else row]
    scope = scopes[0]
    if row in SPLITS:
        await split(subjects.gate, dict(scope), row)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    first = dict(scope)
    sent = await call(app, first)
    assert status_of(sent) == 200, sent
    assert row != "gated" or first.get(JWT_SCOPE_KEY), "the gated row must carry the JWT"
    for _ in range(WARM + count):
        await app(dict(scope), receive, send)


#: Rows that take a part of the gate's work away (the differences split its cost; these rows
#: admit without deciding, so they are for measuring only): "gated, verdict given" answers the
#: decision with the verdict it gave the first request (the middleware's own work is left);
#: "gated, session given" answers the cookie check with its first answer (the access policy,
#: the JWT lookup and the rest of the decision are left).
SPLITS = ("gated, verdict given", "gated, session given")


async def split(gate: SamlGate, scope: dict[str, Any], row: str) -> None:
    keeper = gate.parts.gatekeeper
    if row == "gated, verdict given":
        verdict = await keeper.decide(AppRequest(scope, scope["path"], gate.parts.addresses))

        def decided(request: AppRequest) -> Verdict:
            return verdict

        gate._decide_at_once = decided
    else:
        cookie = cookie_header_of(scope["headers"])
        answer = await keeper._authenticate(cookie, time.time())

        async def authenticated(header: str | None, now: float) -> Any:
            return answer

        keeper._authenticate = authenticated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", type=Path, required=True, help="the keys, pickled")
    parser.add_argument("row", choices=("bare", "gated", "starlette", *SPLITS))
    parser.add_argument("count", type=int, nargs="?", default=0, help=f"requests after {WARM}")
    args = parser.parse_args()
    world = pickle.loads(args.world.read_bytes())  # our own file
    world.gate(hello_app)  # nothing started: the import and build cost the same in every row
    asyncio.run(requests(world, args.row, args.count))


if __name__ == "__main__":
    main()
