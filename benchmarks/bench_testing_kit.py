"""The cost of one ``saml_idp.sign_in`` (saml_gate.testing), as the kit configures the gate.

Each sign-in is the whole round trip a test pays for: ``/saml/login`` (the AuthnRequest), the
test IdP signing the Response, and the ACS verifying it, through Starlette's ``TestClient``. The
kit's gates verify in a thread (``verify_isolation="thread"``); for comparison, the same with
the production default, worker processes, whose first sign-in also starts them. Prints the
first sign-in's time, the mean over each round and the best round, for each.

    python benchmarks/bench_testing_kit.py [sign-ins per round, default 200] [rounds, default 3]
"""

from __future__ import annotations

import sys
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from saml_gate import SamlGate
from saml_gate.testing import SamlTestIdp


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


def main(count: int, rounds: int) -> None:
    from starlette.testclient import TestClient  # over httpx2: the testing extra installs it

    for isolation in ("thread", "process"):
        idp = SamlTestIdp()
        options = idp.gate_options(verify_isolation=isolation)
        app = SamlGate(Starlette(routes=[Route("/", hello)]), **options)
        means = []
        with TestClient(app) as client:
            started = time.perf_counter()
            idp.sign_in(client)  # with processes: starts the verification workers
            first = (time.perf_counter() - started) * 1000
            print(f"{isolation}: first sign_in {first:.0f} ms")
            for _ in range(rounds):
                started = time.perf_counter()
                for i in range(count):
                    client.cookies.clear()
                    idp.sign_in(client, email=f"user{i}@example.com", groups=["staff"])
                means.append((time.perf_counter() - started) / count * 1000)
                print(f"{isolation}: {means[-1]:.2f} ms per sign_in (mean of {count})")
        print(f"{isolation}: best round {min(means):.2f} ms per sign_in")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*(args + [200, 3][len(args) :]))
