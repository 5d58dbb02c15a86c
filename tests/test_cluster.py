"""dnn sweep --address: the token found where Ray looks for it, the driver run in the head's mode, and each failure
to connect one line (the address typed, the cause, the fix) with exit 2. Against fakes here; against a real head
started with Ray's default settings in tests/test_sweep_processes.py."""

import pytest

pytest.importorskip("ray")

from dnncli.errors import DnnError
from dnncli.experiment.sweep import cluster
from dnncli.experiment.sweep.cluster import Answer, find_token, head_mode

ADDRESS = "10.1.2.3:6379"


@pytest.fixture
def meta():
    import platform

    import ray

    return {"ray_version": ray.__version__, "python_version": platform.python_version()}


def test_the_token_is_found_where_ray_looks_in_rays_order(tmp_path):
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("from-the-default-file\n")
    (tmp_path / "named").write_text("from-the-named-file")
    assert find_token({}, home=tmp_path).value == "from-the-default-file"
    assert find_token({}, home=tmp_path).source == str(tmp_path / ".ray" / "auth_token")
    named = {"RAY_AUTH_TOKEN_PATH": str(tmp_path / "named")}
    assert find_token(named, home=tmp_path).value == "from-the-named-file"
    both = named | {"RAY_AUTH_TOKEN": "from-the-environment"}
    assert find_token(both, home=tmp_path).value == "from-the-environment"
    assert find_token({}, home=tmp_path / "nobody") is None
    with pytest.raises(DnnError, match=r"RAY_AUTH_TOKEN_PATH=.*cannot be read"):
        find_token({"RAY_AUTH_TOKEN_PATH": str(tmp_path / "missing")}, home=tmp_path)


def test_the_token_agrees_with_rays_own_loader(tmp_path, monkeypatch):
    raylet = pytest.importorskip("ray._raylet")
    if not hasattr(raylet, "AuthenticationTokenLoader"):
        pytest.skip("this Ray has no token authentication")
    (tmp_path / "t").write_text("abc123")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "t"))
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    loader = raylet.AuthenticationTokenLoader.instance()
    loader.reset_cache()
    try:
        assert loader.get_raw_token(ignore_auth_mode=True) == find_token().value == "abc123"
    finally:
        monkeypatch.undo()
        loader.reset_cache()


def fake_head(token: str | None, metadata: dict):
    """A head that answers as Ray's GCS does: refused without its token (when it has one)."""

    def ask(address, sent):
        if token is not None and sent != token:
            return Answer("refused", detail="UNAUTHENTICATED: InvalidAuthToken")
        return Answer("ok", metadata)

    return ask


def one_line(err: DnnError) -> str:
    text = str(err)
    assert "\n" not in text and text.startswith(f"--address {ADDRESS}: ")
    return text


def test_the_driver_runs_in_the_heads_mode(meta):
    token = cluster.Token("secret", "~/.ray/auth_token")
    assert head_mode(ADDRESS, token, ask=fake_head("secret", meta)) == "token"
    assert head_mode(ADDRESS, token, ask=fake_head(None, meta)) == "disabled"  # a token is no reason to send it
    assert head_mode(ADDRESS, None, ask=fake_head(None, meta)) == "disabled"


def test_a_missing_or_wrong_token_is_one_line_with_the_fix(meta):
    with pytest.raises(DnnError) as err:
        head_mode(ADDRESS, None, ask=fake_head("secret", meta))
    line = one_line(err.value)
    assert "token authentication, and no token was found here" in line and "ray get-auth-token" in line
    with pytest.raises(DnnError) as err:
        head_mode(ADDRESS, cluster.Token("stale", "RAY_AUTH_TOKEN"), ask=fake_head("secret", meta))
    line = one_line(err.value)
    assert "refused the token from RAY_AUTH_TOKEN" in line and "stale" not in line  # the token itself never shown


@pytest.mark.parametrize(
    "answer, said",
    [
        (Answer("unreachable", detail="UNAVAILABLE: ipv4:10.1.2.3:6379: Connection refused"), "nothing is listening"),
        (Answer("unreachable", detail="UNAVAILABLE: DNS: Domain name not found"), "cannot be reached"),
        (Answer("silent", detail="DEADLINE_EXCEEDED: Deadline Exceeded"), "no answer in 5 s"),
        (Answer("other", detail="UNIMPLEMENTED: "), "is it a Ray head?"),
    ],
)
def test_nothing_listening_or_no_answer_is_one_line(answer, said):
    with pytest.raises(DnnError) as err:
        head_mode(ADDRESS, None, ask=lambda address, token: answer)
    assert said in one_line(err.value)


def test_another_ray_or_python_on_the_head_is_one_line(meta):
    with pytest.raises(DnnError) as err:
        head_mode(ADDRESS, None, ask=fake_head(None, meta | {"ray_version": "2.0.0"}))
    line = one_line(err.value)
    assert "the head runs Ray 2.0.0" in line and "pip install 'ray[tune]==2.0.0'" in line
    with pytest.raises(DnnError) as err:
        head_mode(ADDRESS, None, ask=fake_head(None, meta | {"python_version": "3.1.0"}))
    assert "Python 3.1.0 here" in one_line(err.value)


def test_an_address_that_is_not_host_and_port_is_refused_before_any_call():
    with pytest.raises(DnnError, match="give the head's HOST:PORT"):
        head_mode("localhost", None, ask=None)
