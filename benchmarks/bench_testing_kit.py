"""The cost of one ``saml_idp.sign_in`` (saml_gate.testing) against a gate with its defaults.

Each sign-in is the whole round trip a test pays for: ``/saml/login`` (the AuthnRequest, built in
a verification worker process), the test IdP signing the Response, and the ACS (verified in a
worker process), through Starlette's ``TestClient``. The first sign-in, which starts the worker
processes, is not timed. Prints the mean over each round and the best round.

    python benchmarks/bench_testing_kit.py [sign-ins per round, default 200] [rounds, default 3]
"""

from __future__ import annotations

import sys
import time
import warnings

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from saml_gate import SamlGate
from saml_gate.testing import SamlTestIdp


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


def main(count: int, rounds: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette's notice about httpx2
        from starlette.testclient import TestClient

    idp = SamlTestIdp()
    app = SamlGate(Starlette(routes=[Route("/", hello)]), **idp.gate_options())
    means = []
    with TestClient(app) as client:
        idp.sign_in(client)  # starts the verification workers
        for _ in range(rounds):
            started = time.perf_counter()
            for i in range(count):
                client.cookies.clear()
                idp.sign_in(client, email=f"user{i}@example.com", groups=["staff"])
            means.append((time.perf_counter() - started) / count * 1000)
            print(f"{means[-1]:.2f} ms per sign_in (mean of {count})")
    print(f"best round: {min(means):.2f} ms per sign_in")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*(args + [200, 3][len(args) :]))
