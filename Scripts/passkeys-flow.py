#!/usr/bin/env python3
"""Passkeys against `strive serve`, with a software authenticator built on python-fido2's COSE keys and
CBOR (PyPI `fido2`) and the `cryptography` package's ES256, RS256 and Ed25519 keys. Run by
Tests/StriveCLITests/PasskeyTests.swift:

    passkeys-flow.py URL ANON_KEY ORIGIN RP_ID

Prints one line per step ("ok <step>"); any failure raises and exits non-zero.
"""
import base64
import hashlib
import json
import os
import struct
import sys
import uuid

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from fido2 import cbor
from fido2.cose import ES256, RS256, EdDSA

URL, KEY, ORIGIN, RP_ID = sys.argv[1:5]
http = httpx.Client(base_url=URL + "/auth/v1", headers={"apikey": KEY}, timeout=30)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Authenticator:
    """One credential on a software authenticator, as a browser's navigator.credentials would use it."""

    def __init__(self, algorithm):
        self.algorithm = algorithm
        if algorithm == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.cose = ES256.from_cryptography_key(self.private.public_key())
        elif algorithm == "RS256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.cose = RS256.from_cryptography_key(self.private.public_key())
        else:
            self.private = ed25519.Ed25519PrivateKey.generate()
            self.cose = EdDSA.from_cryptography_key(self.private.public_key())
        self.credential_id = os.urandom(32)
        self.counter = 0
        self.user_handle = None

    def sign(self, data):
        if self.algorithm == "ES256":
            return self.private.sign(data, ec.ECDSA(hashes.SHA256()))
        if self.algorithm == "RS256":
            return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self.private.sign(data)

    @staticmethod
    def client_data(kind, challenge, origin):
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}).encode()

    def create(self, options, origin=ORIGIN, rp_id=None):
        assert {"type": "public-key", "alg": self.cose.ALGORITHM} in options["pubKeyCredParams"], options
        self.user_handle = unb64(options["user"]["id"])
        rp_hash = hashlib.sha256((rp_id or options["rp"]["id"]).encode()).digest()
        flags = 0x45  # user present, user verified, attested credential data
        auth_data = (rp_hash + bytes([flags]) + struct.pack(">I", self.counter) + bytes(16)
                     + struct.pack(">H", len(self.credential_id)) + self.credential_id + cbor.encode(self.cose))
        attestation = cbor.encode({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64(self.credential_id), "rawId": b64(self.credential_id), "type": "public-key",
            "response": {"clientDataJSON": b64(self.client_data("webauthn.create", options["challenge"], origin)),
                         "attestationObject": b64(attestation)},
            "clientExtensionResults": {}, "authenticatorAttachment": "platform",
        }

    def get(self, options, origin=ORIGIN, advance=True):
        if advance:
            self.counter += 1
        rp_hash = hashlib.sha256(options["rpId"].encode()).digest()
        auth_data = rp_hash + bytes([0x05]) + struct.pack(">I", self.counter)
        client_data = self.client_data("webauthn.get", options["challenge"], origin)
        signature = self.sign(auth_data + hashlib.sha256(client_data).digest())
        return {
            "id": b64(self.credential_id), "rawId": b64(self.credential_id), "type": "public-key",
            "response": {"clientDataJSON": b64(client_data), "authenticatorData": b64(auth_data),
                         "signature": b64(signature), "userHandle": b64(self.user_handle)},
            "clientExtensionResults": {},
        }


def expect(response, status, code=None):
    assert response.status_code == status, (response.status_code, response.text)
    if code:
        assert response.json().get("error_code") == code, response.text
    return response.json() if response.content else None


def sign_in(authenticator, **answer):
    started = expect(http.post("passkeys/authentication/options", json={}), 200)
    assert "allowCredentials" not in started["options"], "a discoverable credential names its user"
    credential = authenticator.get(started["options"], **answer)
    return http.post("passkeys/authentication/verify", json={"challenge_id": started["challenge_id"], "credential": credential})


def main():
    email = f"passkey-{uuid.uuid4().hex[:8]}@example.com"
    session = expect(http.post("signup", json={"email": email, "password": "a long enough password"}), 200)
    user = {"Authorization": f"Bearer {session['access_token']}"}
    expect(http.post("passkeys/authentication/verify", json={"challenge_id": str(uuid.uuid4()), "credential": {
        "id": "x", "response": {"clientDataJSON": "e30"}}}), 400, "webauthn_challenge_not_found")

    authenticators = {}
    for algorithm in ["ES256", "RS256", "EdDSA"]:
        started = expect(http.post("passkeys/registration/options", json={}, headers=user), 200)
        options = started["options"]
        assert options["rp"]["id"] == RP_ID and options["authenticatorSelection"]["residentKey"] == "required"
        assert unb64(options["user"]["id"]).decode() == session["user"]["id"], "the user handle is the user's id"
        assert len(options["excludeCredentials"]) == len(authenticators), "registered passkeys are excluded"
        authenticator = Authenticator(algorithm)
        created = expect(http.post("passkeys/registration/verify", headers=user, json={
            "challenge_id": started["challenge_id"], "credential": authenticator.create(options)}), 200)
        uuid.UUID(created["id"])
        authenticators[algorithm] = (authenticator, created["id"])
        print(f"ok registered {algorithm}", flush=True)

    # A registration answered from another origin, or for another relying party, is refused.
    started = expect(http.post("passkeys/registration/options", json={}, headers=user), 200)
    expect(http.post("passkeys/registration/verify", headers=user, json={
        "challenge_id": started["challenge_id"],
        "credential": Authenticator("ES256").create(started["options"], origin="https://evil.example")}),
        400, "webauthn_verification_failed")
    started = expect(http.post("passkeys/registration/options", json={}, headers=user), 200)
    expect(http.post("passkeys/registration/verify", headers=user, json={
        "challenge_id": started["challenge_id"],
        "credential": Authenticator("ES256").create(started["options"], rp_id="evil.example")}),
        400, "webauthn_verification_failed")
    print("ok foreign origin and relying party refused", flush=True)

    for algorithm, (authenticator, _) in authenticators.items():
        signed_in = expect(sign_in(authenticator), 200)
        assert signed_in["user"]["id"] == session["user"]["id"], signed_in
        claims = json.loads(unb64(signed_in["access_token"].split(".")[1]))
        assert [entry["method"] for entry in claims["amr"]] == ["passkey"], claims
        me = expect(http.get("user", headers={"Authorization": f"Bearer {signed_in['access_token']}"}), 200)
        assert me["email"] == email
        print(f"ok signed in with {algorithm}", flush=True)

    es256 = authenticators["ES256"][0]
    started = expect(http.post("passkeys/authentication/options", json={}), 200)
    credential = es256.get(started["options"])
    expect(http.post("passkeys/authentication/verify", json={"challenge_id": started["challenge_id"], "credential": credential}), 200)
    expect(http.post("passkeys/authentication/verify", json={"challenge_id": started["challenge_id"], "credential": credential}),
           400, "webauthn_challenge_not_found")
    print("ok a challenge is answered once", flush=True)

    expect(sign_in(es256, advance=False), 400, "webauthn_verification_failed")
    print("ok a counter that does not move forward is refused", flush=True)
    expect(sign_in(es256, origin="https://evil.example"), 400, "webauthn_verification_failed")
    stranger = Authenticator("ES256")
    stranger.user_handle = session["user"]["id"].encode()
    expect(sign_in(stranger), 400, "webauthn_verification_failed")
    started = expect(http.post("passkeys/authentication/options", json={}), 200)
    forged = es256.get(started["options"])
    forged["response"]["signature"] = b64(b"\x30\x06\x02\x01\x01\x02\x01\x01")
    expect(http.post("passkeys/authentication/verify", json={"challenge_id": started["challenge_id"], "credential": forged}),
           400, "webauthn_verification_failed")
    print("ok foreign origin, unknown credential and forged signature refused", flush=True)

    listed = expect(http.get("passkeys", headers=user), 200)
    assert len(listed) == 3 and all(item.get("last_used_at") for item in listed), listed
    renamed = expect(http.patch(f"passkeys/{authenticators['RS256'][1]}", json={"friendly_name": "Laptop"}, headers=user), 200)
    assert renamed["friendly_name"] == "Laptop"
    expect(http.patch(f"passkeys/{uuid.uuid4()}", json={"friendly_name": "x"}, headers=user), 404)
    expect(http.delete(f"passkeys/{authenticators['EdDSA'][1]}", headers=user), 204)
    expect(sign_in(authenticators["EdDSA"][0]), 400, "webauthn_verification_failed")
    assert len(expect(http.get("passkeys", headers=user), 200)) == 2
    print("ok passkeys listed, renamed and deleted", flush=True)

    # A security key as the second factor: enrolled, registered by its first challenge, then signing.
    email = f"mfa-{uuid.uuid4().hex[:8]}@example.com"
    password = "a long enough password"
    first = expect(http.post("signup", json={"email": email, "password": password}), 200)
    bearer = {"Authorization": f"Bearer {first['access_token']}"}
    factor = expect(http.post("factors", json={"factor_type": "webauthn", "friendly_name": "Key"}, headers=bearer), 200)
    assert factor["type"] == "webauthn", factor
    # supabase-js still sends rpId and rpOrigins; the project's relying party decides.
    hints = {"webauthn": {"rpId": "evil.example", "rpOrigins": ["https://evil.example"]}}
    challenge = expect(http.post(f"factors/{factor['id']}/challenge", json=hints, headers=bearer), 200)
    assert challenge["webauthn"]["type"] == "create", challenge
    key = Authenticator("ES256")
    created = key.create(challenge["webauthn"]["credential_options"]["publicKey"])
    raised = expect(http.post(f"factors/{factor['id']}/verify", headers=bearer, json={
        "challenge_id": challenge["id"], "webauthn": {"type": "create", "credential_response": created, **hints["webauthn"]}}), 200)
    claims = json.loads(unb64(raised["access_token"].split(".")[1]))
    assert claims["aal"] == "aal2" and claims["amr"][0]["method"] == "mfa/webauthn", claims
    print("ok webauthn factor registered at aal2", flush=True)

    again = expect(http.post("token?grant_type=password", json={"email": email, "password": password}), 200)
    bearer = {"Authorization": f"Bearer {again['access_token']}"}
    challenge = expect(http.post(f"factors/{factor['id']}/challenge", json={}, headers=bearer), 200)
    assert challenge["webauthn"]["type"] == "request", challenge
    options = challenge["webauthn"]["credential_options"]["publicKey"]
    assert options["allowCredentials"][0]["id"] == b64(key.credential_id), options
    signed = key.get(options)
    body = {"challenge_id": challenge["id"], "webauthn": {"type": "request", "credential_response": signed}}
    raised = expect(http.post(f"factors/{factor['id']}/verify", headers=bearer, json=body), 200)
    assert json.loads(unb64(raised["access_token"].split(".")[1]))["aal"] == "aal2"
    expect(http.post(f"factors/{factor['id']}/verify", headers=bearer, json=body), 422, "mfa_challenge_expired")
    challenge = expect(http.post(f"factors/{factor['id']}/challenge", json={}, headers=bearer), 200)
    stranger = Authenticator("ES256")
    stranger.credential_id, stranger.user_handle = key.credential_id, key.user_handle
    expect(http.post(f"factors/{factor['id']}/verify", headers=bearer, json={
        "challenge_id": challenge["id"],
        "webauthn": {"type": "request", "credential_response": stranger.get(challenge["webauthn"]["credential_options"]["publicKey"])}}),
        422, "mfa_verification_failed")
    factors = expect(http.get("user", headers=bearer), 200)["factors"]
    assert [(f["factor_type"], f["status"]) for f in factors] == [("webauthn", "verified")], factors
    print("ok webauthn factor signs at aal2 and refuses another key", flush=True)


main()
