"""Tokens, the secret store, rate limiters and the limits table, without a server."""

import json
import os
import stat
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surgedesk.adapters.grpc.limits import Admission, Limits, RateLimiter
from surgedesk.adapters.identity import secret_store
from surgedesk.adapters.identity.tokens import LEEWAY_S, ROLES, TokenVerifier, _unb64, mint
from surgedesk.engine.errors import InvalidArgument, Overloaded, Unauthenticated

SECRET = b"unit-test-secret-0123456789abcdefghij"


@given(role=st.sampled_from(ROLES), subject=st.text(min_size=1, max_size=128).filter(
    str.isprintable), now=st.floats(0, 4e9), ttl=st.floats(1, 86400))
def test_a_minted_token_verifies_to_its_claims_until_it_expires(role, subject, now, ttl):
    token = mint(SECRET, role, subject, now, ttl)
    claims = TokenVerifier(SECRET).verify(token, now)
    assert (claims.role, claims.subject) == (role, subject)
    with pytest.raises(Unauthenticated, match="expired"):
        TokenVerifier(SECRET).verify(token, int(now + ttl) + LEEWAY_S + 1)


def test_it_is_a_standard_hs256_jwt():
    header, payload, _ = mint(SECRET, "agent", "ann", 1000.0, 60).split(".")
    assert json.loads(_unb64(header)) == {"alg": "HS256", "typ": "JWT"}
    assert json.loads(_unb64(payload)) == {"sub": "ann", "role": "agent", "iat": 1000,
                                           "exp": 1060, "iss": "surgedesk"}


@given(position=st.integers(0, 200), flip=st.integers(1, 255))
def test_any_changed_byte_is_refused(position, flip):
    token = mint(SECRET, "customer", "c1", 1000.0, 60)
    i = position % len(token)
    changed = token[:i] + chr((ord(token[i]) + flip) % 128) + token[i + 1:]
    if changed == token:
        return
    try:
        claims = TokenVerifier(SECRET).verify(changed, 1000.0)
    except Unauthenticated:
        return
    # base64 padding bits can absorb a change without changing the bytes signed
    assert (claims.role, claims.subject) == ("customer", "c1")


def test_other_secrets_alg_none_and_garbage_are_refused():
    verifier = TokenVerifier(SECRET)
    other = mint(b"another-secret-0123456789abcdefghijkl", "admin", "ops", 1000.0, 60)
    _, payload, _ = mint(SECRET, "admin", "ops", 1000.0, 60).split(".")
    for bad in [other, f"eyJhbGciOiJub25lIn0.{payload}.", "", "a.b.c", "x" * 5000, "é.é.é",
                "a.b", f"{other}.x"]:
        with pytest.raises(Unauthenticated):
            verifier.verify(bad, 1000.0)


def test_minting_checks_its_inputs():
    for role, subject, ttl in [("root", "x", 60), ("agent", "", 60), ("agent", "x" * 129, 60),
                               ("agent", "a\nb", 60), ("agent", "x", 0)]:
        with pytest.raises(InvalidArgument):
            mint(SECRET, role, subject, 0.0, ttl)
    with pytest.raises(InvalidArgument, match="secret"):
        mint(b"short", "agent", "x", 0.0, 60)


def test_the_secret_is_made_once_private_and_shared_by_serve_and_token(tmp_path, monkeypatch):
    monkeypatch.delenv(secret_store.ENV_VAR, raising=False)
    first = secret_store.load_secret(tmp_path / "data")
    assert secret_store.load_secret(tmp_path / "data") == first and len(first) >= 32
    mode = stat.S_IMODE(os.stat(tmp_path / "data" / secret_store.FILE_NAME).st_mode)
    assert mode == 0o600
    (tmp_path / "given").write_text("s" * 40 + "\n")
    assert secret_store.load_secret(tmp_path / "data", str(tmp_path / "given")) == b"s" * 40
    monkeypatch.setenv(secret_store.ENV_VAR, "e" * 32)
    assert secret_store.load_secret(tmp_path / "data", str(tmp_path / "given")) == b"e" * 32
    monkeypatch.setenv(secret_store.ENV_VAR, "short")
    with pytest.raises(InvalidArgument, match=secret_store.ENV_VAR):
        secret_store.load_secret(tmp_path / "data")
    monkeypatch.delenv(secret_store.ENV_VAR)
    with pytest.raises(InvalidArgument, match="secret-file"):
        secret_store.load_secret(tmp_path / "data", str(tmp_path / "missing"))


def test_surgedesk_token_mints_for_the_data_dirs_secret(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != secret_store.ENV_VAR}
    out = subprocess.run([sys.executable, "-m", "surgedesk", "token", "--role", "agent",
                          "--subject", "ann", "--data-dir", str(tmp_path), "--ttl-s", "600"],
                         capture_output=True, text=True, env=env, check=True).stdout.strip()
    secret = secret_store.load_secret(tmp_path)
    import time
    claims = TokenVerifier(secret).verify(out, time.time())
    assert (claims.role, claims.subject) == ("agent", "ann")
    assert 590 < claims.expires_s - time.time() <= 600
    bad = subprocess.run([sys.executable, "-m", "surgedesk", "token", "--role", "agent",
                          "--subject", "", "--data-dir", str(tmp_path)],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "invalid subject" in bad.stderr


def test_a_bucket_allows_its_burst_then_its_rate():
    limiter = RateLimiter(rate_per_s=2, burst=3)
    assert [limiter.wait_s("k", 0.0) for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]
    assert limiter.wait_s("k", 0.5) == 0.0  # one token back after half a second
    assert limiter.wait_s("other", 0.5) == 0.0
    assert RateLimiter(0, 0).wait_s("k", 0.0) == 0.0  # 0: no limit


@given(calls=st.lists(st.tuples(st.sampled_from("abc"), st.floats(0, 0.2)), max_size=200))
def test_no_key_ever_gets_more_than_burst_plus_rate_times_time(calls):
    limiter, now, passed = RateLimiter(rate_per_s=10, burst=5), 0.0, {}
    for key, step in calls:
        now += step
        if limiter.wait_s(key, now) == 0.0:
            passed[key] = passed.get(key, 0) + 1
            assert passed[key] <= 5 + 10 * now + 1e-9


def test_buckets_are_bounded():
    limiter = RateLimiter(rate_per_s=1, burst=1, max_keys=100)
    for i in range(10_000):
        limiter.wait_s(f"customer-{i}", float(i))
    assert len(limiter) == 100


def test_admission_sheds_past_its_bounds_and_frees_slots():
    gate = Admission(max_inflight=1, max_streams=1)
    with gate.unary():
        with pytest.raises(Overloaded), gate.unary():
            pass
        with gate.stream(), pytest.raises(Overloaded), gate.stream():
            pass
    with gate.unary(), gate.stream():
        pass
    assert (gate.inflight, gate.streams, gate.shed) == (0, 0, 2)


def test_a_draining_admission_refuses_new_calls_and_tells_when_those_in_flight_are_done():
    import asyncio

    from surgedesk.engine.errors import Draining

    async def run() -> None:
        gate = Admission(max_inflight=10, max_streams=10)
        slot = gate.unary()
        slot.__enter__()  # a call in flight
        gate.drain()
        with pytest.raises(Draining), gate.unary():
            pass
        with pytest.raises(Draining), gate.stream():
            pass
        idle = asyncio.ensure_future(gate.idle())
        await asyncio.sleep(0.01)
        assert not idle.done()
        slot.__exit__(None, None, None)  # it finishes
        await asyncio.wait_for(idle, 1.0)
        assert gate.inflight == 0 and gate.shed == 0  # refusals while draining are not shedding

    asyncio.run(run())


def test_limits_come_from_the_desk_file_and_bad_values_name_the_key():
    assert Limits.from_mapping({"per_customer_per_s": 2.5, "max_inflight": 10}) == Limits(
        per_customer_per_s=2.5, max_inflight=10)
    for table, key in [({"per_customer": 1}, "limits.per_customer"),
                       ({"max_inflight": 1.5}, "limits.max_inflight"),
                       ({"per_token_per_s": -1}, "limits.per_token_per_s"),
                       ({"per_token_burst": "many"}, "limits.per_token_burst"),
                       ({"max_streams": True}, "limits.max_streams")]:
        with pytest.raises(InvalidArgument) as err:
            Limits.from_mapping(table)
        assert err.value.field == key


def test_serve_keeps_the_actors_in_process_unless_a_ray_cluster_is_named():
    from surgedesk.adapters.serve import chosen_hosting

    assert chosen_hosting("auto", None) == "in-process"
    assert chosen_hosting("auto", "") == "in-process"
    assert chosen_hosting("auto", "head-node:6379") == "ray"
    assert chosen_hosting("ray", None) == "ray"
    assert chosen_hosting("in-process", "head-node:6379") == "in-process"
