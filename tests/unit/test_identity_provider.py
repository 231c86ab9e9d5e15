"""Tokens of an identity provider (RS256 / ES256 against its JWKS), without a server: verified by
``kid``, ``iss`` and ``aud`` checked, keys rotated with no restart, no algorithm confusion."""

import base64
import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization

from surgedesk.adapters.identity.jwks import KeySet
from surgedesk.adapters.identity.tokens import IdentityConfig, TokenVerifier, mint
from surgedesk.engine.errors import InvalidArgument, Recovering, Unauthenticated
from tests.identity_provider import AUDIENCE, ISSUER, Provider, SigningKey

SECRET = b"unit-test-secret-0123456789abcdefghij"


@pytest.fixture
def provider(tmp_path):
    p = Provider(tmp_path, SigningKey("k1", "ES256"), SigningKey("r1", "RS256"))
    yield p
    p.close()


def verifier_for(source, **config):
    identity = IdentityConfig(jwks=source, issuer=ISSUER, audience=AUDIENCE, **config)
    return TokenVerifier(SECRET, identity, keys=KeySet(source, min_refresh_s=0.0))


def test_provider_tokens_verify_by_kid_and_the_deployments_own_still_do(provider):
    es, rs = (SigningKey("k1", "ES256"), SigningKey("r1", "RS256"))
    provider.publish(es, rs)
    verifier = verifier_for(str(provider.path))
    now = time.time()
    assert verifier.verify(es.token("agent", "ann"), now).subject == "ann"
    assert verifier.verify(rs.token("admin", "ops"), now).role == "admin"
    assert verifier.verify(mint(SECRET, "customer", "c1", now, 60), now).subject == "c1"


def test_issuer_audience_role_expiry_and_unknown_keys_are_checked(provider):
    key = SigningKey("k1")
    provider.publish(key)
    verifier = verifier_for(str(provider.path))
    now = time.time()
    for token, problem in [
        (key.token("agent", "ann", issuer="https://evil.example"), "issuer"),
        (key.token("agent", "ann", audience="another-app"), "aud"),
        (key.token("root", "ann"), "role"),
        (key.token("agent", "ann", ttl_s=-120), "expired"),
        (key.token("agent", "ann", nbf=int(now) + 600), "not valid yet"),
        (SigningKey("k9").token("agent", "ann"), "does not publish"),
        (SigningKey("k1").token("agent", "ann"), "signature"),  # same kid, other key
    ]:
        with pytest.raises(Unauthenticated, match=problem):
            verifier.verify(token, now)


def test_a_role_may_come_from_another_claim(provider):
    key = SigningKey("k1")
    provider.publish(key)
    verifier = verifier_for(str(provider.path), role_claim="surgedesk_role")
    token = key.token("customer", "c1", surgedesk_role="agent")
    assert verifier.verify(token, time.time()).role == "agent"


def test_no_algorithm_confusion_and_secret_tokens_can_be_switched_off(provider):
    key = SigningKey("r1", "RS256")
    provider.publish(key)
    verifier = verifier_for(str(provider.path))
    now = time.time()
    # the public key used as an HMAC secret: the classic confusion attack
    pem = key.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    header = base64.urlsafe_b64encode(json.dumps(
        {"alg": "HS256", "kid": "r1"}).encode()).rstrip(b"=").decode()
    body = key.token("admin", "ops").split(".")[1]
    signature = base64.urlsafe_b64encode(hmac.new(pem, f"{header}.{body}".encode(),
                                                  hashlib.sha256).digest()).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated):
        verifier.verify(f"{header}.{body}.{signature}", now)
    none = base64.urlsafe_b64encode(b'{"alg":"none","kid":"r1"}').rstrip(b"=").decode()
    with pytest.raises(Unauthenticated, match="must be signed with"):
        verifier.verify(f"{none}.{body}.", now)
    strict = verifier_for(str(provider.path), secret_tokens=False)
    assert strict.verify(key.token("admin", "ops"), now).role == "admin"
    with pytest.raises(Unauthenticated, match="must be signed with RS256 or ES256"):
        strict.verify(mint(SECRET, "admin", "ops", now, 60), now)


def test_a_rotated_file_is_read_again_without_a_restart(provider):
    old, new = SigningKey("2026-01"), SigningKey("2026-02")
    provider.publish(old)
    verifier = verifier_for(str(provider.path))
    now = time.time()
    before = old.token("agent", "ann")
    assert verifier.verify(before, now).subject == "ann"
    provider.publish(new)  # the provider rotates: the old key withdrawn
    assert verifier.verify(new.token("agent", "bob"), now).subject == "bob"
    with pytest.raises(Unauthenticated, match="does not publish"):
        verifier.verify(before, now)  # remembered once, checked again after the change


def test_a_url_is_fetched_off_the_event_loop_and_a_rotation_is_picked_up(provider):
    old, new = SigningKey("a"), SigningKey("b")
    provider.publish(old)
    verifier = verifier_for(provider.url)
    now = time.time()
    assert verifier.verify(old.token("agent", "ann"), now).subject == "ann"
    provider.publish(old, new)
    token = new.token("agent", "bob")
    deadline = time.monotonic() + 5
    while True:  # the first call starts the fetch and is told to retry
        try:
            assert verifier.verify(token, now).subject == "bob"
            break
        except Recovering as exc:
            assert exc.retry_after_s > 0 and time.monotonic() < deadline
            time.sleep(0.05)


def test_a_provider_away_keeps_the_keys_it_had(provider):
    key = SigningKey("k1")
    provider.publish(key)
    keys = KeySet(provider.url, refresh_s=0.0, min_refresh_s=0.0)
    provider.close()
    verifier = TokenVerifier(SECRET, IdentityConfig(jwks=provider.url, issuer=ISSUER,
                                                    audience=AUDIENCE), keys=keys)
    token = key.token("agent", "ann")
    assert verifier.verify(token, time.time()).subject == "ann"
    deadline = time.monotonic() + 10
    while keys.failures == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        keys.key("k1")
    assert keys.failures >= 1 and keys.key("k1") is not None


def test_the_identity_table_is_checked():
    assert IdentityConfig.from_mapping({"jwks": "x.json", "algorithms": ["ES256"]}) == (
        IdentityConfig(jwks="x.json", algorithms=("ES256",)))
    for table, key in [({"jwk": "x"}, "identity.jwk"), ({"algorithms": ["HS256"]},
                                                         "identity.algorithms"),
                       ({"refresh_s": 0}, "identity.refresh_s"),
                       ({"secret_tokens": False}, "identity.secret_tokens"),
                       ({"issuer": 3}, "identity.issuer")]:
        with pytest.raises(InvalidArgument) as err:
            IdentityConfig.from_mapping(table)
        assert err.value.field == key


def test_a_jwks_without_usable_keys_is_refused_at_start(tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}))  # no kid
    with pytest.raises(InvalidArgument, match="no key with a 'kid'"):
        KeySet(str(path))
    path.write_text("{not json")
    with pytest.raises(InvalidArgument, match="not a usable JWKS"):
        KeySet(str(path))
    with pytest.raises(InvalidArgument, match="cannot read"):
        KeySet(str(tmp_path / "missing.json"))
