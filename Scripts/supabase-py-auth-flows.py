#!/usr/bin/env python3
"""Strive's auth flows driven by the real supabase-py client, reading each link and code from the mail a
real SMTP server received. Run by Tests/StriveCLITests/SupabasePyAuthTests.swift against `strive serve`:

    supabase-py-auth-flows.py URL ANON_KEY MAIL_FOLDER

Prints one line per step ("ok <step>"); any failure raises and exits non-zero.
"""
import asyncio
import base64
import email
import hashlib
import hmac
import os
import re
import struct
import sys
import time
import urllib.request
import uuid

from supabase import create_client
from supabase.lib.client_options import SyncClientOptions

URL, KEY, FOLDER = sys.argv[1], sys.argv[2], sys.argv[3]
PASSWORD = "a long enough password"


def mail_to(address, number=1, timeout=15):
    """The text part of the number-th mail to address."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = []
        for name in sorted(os.listdir(FOLDER)):
            if not name.endswith(".eml"):
                continue
            with open(os.path.join(FOLDER, name), "rb") as handle:
                message = email.message_from_bytes(handle.read())
            if message["X-Envelope-To"] == address:
                found.append(message)
        if len(found) >= number:
            for part in found[number - 1].walk():
                if part.get_content_type() == "text/plain":
                    return part.get_payload(decode=True).decode()
        time.sleep(0.05)
    raise AssertionError(f"no mail {number} to {address}")


def code_in(text):
    return re.search(r": (\d{6})\b", text).group(1)


def token_in(text):
    return re.search(r"token=([A-Za-z0-9_-]+)", text).group(1)


def link_in(text):
    return re.search(r"(https?://\S+)", text).group(1)


def totp(secret, at=None):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    counter = struct.pack(">Q", int((at or time.time()) // 30))
    digest = hmac.new(key, counter, hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def client(flow="implicit"):
    return create_client(URL, KEY, options=SyncClientOptions(flow_type=flow, auto_refresh_token=False, persist_session=False))


def address(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, request, fp, code, message, headers, new_url):
        return None


def location_of(link):
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(link)
    except urllib.error.HTTPError as error:
        return error.headers["Location"]
    raise AssertionError("the link did not redirect")


def main():
    # Sign-up with confirmation: no session until the mailed code is entered.
    ada = client()
    who = address("ada")
    signed_up = ada.auth.sign_up({"email": who, "password": PASSWORD})
    assert signed_up.session is None and signed_up.user.email == who, signed_up
    verified = ada.auth.verify_otp({"email": who, "token": code_in(mail_to(who)), "type": "email"})
    assert verified.session and verified.user.email_confirmed_at, verified
    print("ok sign-up confirmed with the mailed code")

    # Password recovery with the link's token_hash, then a new password.
    ada.auth.reset_password_for_email(who, {"redirect_to": "http://app.test/reset"})
    recovered = ada.auth.verify_otp({"token_hash": token_in(mail_to(who, 2)), "type": "recovery"})
    assert recovered.session, recovered
    ada.auth.update_user({"password": "a brand new password"})
    again = client().auth.sign_in_with_password({"email": who, "password": "a brand new password"})
    assert again.session, again
    print("ok recovery set a new password")

    # Reauthentication: a mailed nonce stands in for the current password.
    ada.auth.reauthenticate()
    ada.auth.update_user({"password": "a third password", "nonce": code_in(mail_to(who, 3))})
    assert client().auth.sign_in_with_password({"email": who, "password": "a third password"}).session
    print("ok reauthentication nonce changed the password")

    # Secure email change: the new address and the current one both confirm.
    moved = address("ada-moved")
    asked = ada.auth.update_user({"email": moved})
    assert asked.user.email == who and asked.user.new_email == moved, asked
    half = ada.auth.verify_otp({"email": moved, "token": code_in(mail_to(moved)), "type": "email_change"})
    assert half.session is None, half
    done = ada.auth.verify_otp({"email": who, "token": code_in(mail_to(who, 4)), "type": "email_change"})
    assert done.session and done.user.email == moved, done
    print("ok email change confirmed by both addresses")

    # Magic link (OTP) for a new address, followed as a browser would.
    grace = address("grace")
    client().auth.sign_in_with_otp({"email": grace})
    fragment = location_of(link_in(mail_to(grace))).split("#", 1)[1]
    assert "access_token=" in fragment and "type=magiclink" in fragment, fragment
    print("ok magic link signed in")

    # PKCE: the client keeps the verifier; the browser brings back ?code=.
    pkce = client("pkce")
    linus = address("linus")
    pkce.auth.sign_in_with_otp({"email": linus, "options": {"email_redirect_to": "http://app.test/callback"}})
    location = location_of(link_in(mail_to(linus)))
    code = re.search(r"[?&]code=([^&#]+)", location).group(1)
    exchanged = pkce.auth.exchange_code_for_session({"auth_code": code})
    assert exchanged.session and exchanged.user.email == linus, exchanged
    print("ok pkce code exchanged")

    # MFA: enroll, challenge and verify with a code computed here; the session becomes aal2.
    factor = ada.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "phone"})
    assert factor.totp.qr_code.startswith("data:image/svg+xml"), factor
    challenge = ada.auth.mfa.challenge({"factor_id": factor.id})
    raised = ada.auth.mfa.verify({"factor_id": factor.id, "challenge_id": challenge.id, "code": totp(factor.totp.secret)})
    levels = ada.auth.mfa.get_authenticator_assurance_level()
    assert levels.current_level == "aal2", levels
    print("ok mfa raised the session to aal2")

    # Unknown and known addresses get the same answer from recovery.
    client().auth.reset_password_for_email(address("nobody"))
    print("ok recovery says nothing about unknown addresses")


main()
