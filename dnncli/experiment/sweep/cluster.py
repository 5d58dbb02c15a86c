"""Joining a Ray cluster by address (``dnn sweep --address HOST:PORT``), in the head's authentication mode.

From Ray 2.59 on, ``ray start --head`` runs in token mode when it finds a token (Ray's own ``ray.init()`` writes one
to ``~/.ray/auth_token``), while a driver given an explicit address stays in the mode its environment says
(``RAY_AUTH_MODE``, off by default): it is refused, and Ray retries for 20 seconds before a traceback. Here the
head is asked first, with one gRPC call to its GCS (the cluster's metadata, the same key Ray's version check
reads), without a token and then with the token Ray would send, found where Ray looks for it: ``RAY_AUTH_TOKEN``,
the file ``RAY_AUTH_TOKEN_PATH`` names, ``~/.ray/auth_token``. The answer gives the head's mode (the driver is then
run in it), its Ray and Python versions, or why it cannot be joined: each failure is one line naming the address
the user typed, the cause and the fix.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

from dnncli.errors import DnnError

TIMEOUT = 5.0  # seconds for the head to answer: a head on a network answers in milliseconds
TOKEN_PLACES = "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"
SHARE = (
    "copy the head's token (`ray get-auth-token` on the head prints it) to ~/.ray/auth_token on this machine,"
    " or set RAY_AUTH_TOKEN to it"
)


@dataclass
class Token:
    """A token and where it was found (said in errors, never the token itself)."""

    value: str
    source: str


def find_token(environ=None, home: Path | None = None) -> Token | None:
    """The token Ray would send, in Ray's order: ``RAY_AUTH_TOKEN``, then the file ``RAY_AUTH_TOKEN_PATH`` names
    (an error if it cannot be read, as in Ray), then ``~/.ray/auth_token``; None where there is none."""
    environ = os.environ if environ is None else environ
    value = environ.get("RAY_AUTH_TOKEN", "").strip()
    if value:
        return Token(value, "RAY_AUTH_TOKEN")
    named = environ.get("RAY_AUTH_TOKEN_PATH")
    if named:
        path = Path(named).expanduser()
        try:
            text = path.read_text().strip()
        except OSError as err:
            raise DnnError(
                f"RAY_AUTH_TOKEN_PATH={named}: the token file cannot be read ({err.strerror}); point it at a file"
                " holding the head's token, or unset it."
            ) from None
        if not text:
            raise DnnError(f"RAY_AUTH_TOKEN_PATH={named}: the token file is empty; put the head's token in it.")
        return Token(text, f"RAY_AUTH_TOKEN_PATH ({named})")
    default = (home if home is not None else Path.home()) / ".ray" / "auth_token"
    try:
        text = default.read_text().strip()
    except OSError:
        return None
    return Token(text, str(default)) if text else None


@dataclass
class Answer:
    """What the head said to one call: ``ok`` (with its metadata), ``refused`` (no or a wrong token),
    ``unreachable`` (nothing listening), ``silent`` (no answer in time) or ``other``."""

    kind: str
    metadata: dict | None = None
    detail: str = ""


def ask_head(address: str, token: str | None, timeout: float = TIMEOUT) -> Answer:
    """One call to the GCS at ``address``: its cluster metadata, with ``token`` as Ray sends it, or none."""
    import json

    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    metadata = [("authorization", f"Bearer {token}")] if token else []
    request = gcs_service_pb2.InternalKVGetRequest(key=b"CLUSTER_METADATA", namespace=b"cluster")
    with grpc.insecure_channel(address) as channel:
        stub = gcs_service_pb2_grpc.InternalKVGcsServiceStub(channel)
        try:
            reply = stub.InternalKVGet(request, metadata=metadata, timeout=timeout)
        except grpc.RpcError as err:
            code, detail = err.code(), (err.details() or "").strip().split("\n")[0]
            kinds = {
                grpc.StatusCode.UNAUTHENTICATED: "refused",
                grpc.StatusCode.UNAVAILABLE: "unreachable",
                grpc.StatusCode.DEADLINE_EXCEEDED: "silent",
            }
            return Answer(kinds.get(code, "other"), detail=f"{code.name}: {detail}")
    try:
        found = json.loads(reply.value) if reply.value else None
    except ValueError:
        found = None
    return Answer("ok", found if isinstance(found, dict) else None)


def check_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` split, or a one-line error saying what an address looks like."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DnnError(
            f"--address {address}: give the head's HOST:PORT, as `ray start --head` prints it (for example"
            " 10.0.0.5:6379)."
        )
    return host, int(port)


def head_mode(address: str, token: Token | None, ask=ask_head) -> str:
    """The authentication mode of the head at ``address`` (``token`` or ``disabled``), its versions checked against
    this driver's; a ``DnnError`` of one line where it cannot be joined."""
    _, port = check_address(address)
    answer = ask(address, None)
    mode = "disabled"
    if answer.kind == "refused":
        if token is None:
            raise DnnError(
                f"--address {address}: the head uses token authentication, and no token was found here"
                f" ({TOKEN_PLACES}); {SHARE}."
            )
        answer = ask(address, token.value)
        if answer.kind == "refused":
            raise DnnError(
                f"--address {address}: the head refused the token from {token.source} (it is not the head's"
                f" token); {SHARE}."
            )
        mode = "token"
    if answer.kind == "unreachable":
        why = answer.detail.rsplit(": ", 1)[-1]
        what = "nothing is listening there" if "refused" in why.lower() else "it cannot be reached"
        raise DnnError(
            f"--address {address}: {what} ({why}); start the head on that machine with"
            f" `ray start --head --port {port}`, or give the address it printed."
        )
    if answer.kind == "silent":
        raise DnnError(
            f"--address {address}: no answer in {TIMEOUT:g} s (a host that is down, or a firewall); check that the"
            f" head runs there and that port {port} is open to this machine."
        )
    if answer.kind != "ok":
        raise DnnError(f"--address {address}: the head's answer was an error ({answer.detail}); is it a Ray head?")
    check_versions(address, answer.metadata)
    return mode


def check_versions(address: str, metadata: dict | None) -> None:
    """Ray's rule, said before Ray raises it: the same Ray, and the same Python (to the patch level, or the minor
    one with ``RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL=minor``)."""
    import ray

    if not metadata or "ray_version" not in metadata:
        return
    theirs = (metadata["ray_version"], metadata.get("python_version", ""))
    ours = (ray.__version__, platform.python_version())
    level = os.environ.get("RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL", "patch")
    parts = 2 if level == "minor" else 3
    same_python = theirs[1].split(".")[:parts] == ours[1].split(".")[:parts]
    if theirs[0] != ours[0] or not same_python:
        fix = f"pip install 'ray[tune]=={theirs[0]}' here" if theirs[0] != ours[0] else f"Python {theirs[1]} here"
        raise DnnError(
            f"--address {address}: the head runs Ray {theirs[0]} on Python {theirs[1]}, and this driver Ray"
            f" {ours[0]} on Python {ours[1]}; a driver needs the head's versions: {fix}, or start the head with"
            " this one's."
        )


def use_mode(mode: str) -> None:
    """Run this process's Ray in ``mode``, as Ray switches itself (its config re-read, the token cache reset)."""
    os.environ["RAY_AUTH_MODE"] = mode
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:  # a Ray without token authentication: nothing to switch
        return
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _token_for(address: str) -> Token | None:
    try:
        return find_token()
    except DnnError as err:  # RAY_AUTH_TOKEN_PATH names a file that cannot be read: said with the address
        raise DnnError(f"--address {address}: {err.message}") from None


def join(ray, address: str, **kwargs) -> None:
    """``ray.init(address=...)`` in the head's mode; every failure to connect one line (a ``DnnError``)."""
    if address != "auto" and not address.startswith("ray://"):  # the Ray Client and "auto" find their own way
        try:
            mode = head_mode(address, _token_for(address))
        except ImportError:  # a Ray without the generated gRPC modules: ray.init alone, its errors still one line
            mode = None
        if mode is not None:
            use_mode(mode)
    try:
        ray.init(address=address, **kwargs)
    except Exception as err:  # Ray raises ConnectionError, RuntimeError, ValueError, AuthenticationError...
        cause = " ".join(str(err).split()) or type(err).__name__
        raise DnnError(
            f"--address {address}: Ray could not join the cluster ({cause[:300]}); the head's node address must be"
            " reachable from this machine (`ray status` on the head shows it)."
        ) from None
