#!/usr/bin/env python3
"""Sign-in with external providers driven by the real supabase-py client, with httpx following each
redirect as a browser would. Run by Tests/StriveCLITests/SupabasePyExternalSignInTests.swift against
`strive serve` configured with the test identity providers (Scripts/test-identity-providers.py):

    supabase-py-external-sign-in.py URL ANON_KEY OIDC_ISSUER GITHUB_BASE

Prints one line per step ("ok <step>", "timing <milliseconds>": TIMING_ROUNDS callbacks, default 30); any
failure raises and exits non-zero.
"""
import hashlib
import os
import sys
import time
import urllib.parse
import uuid

import httpx
from supabase import create_client
from supabase.lib.client_options import SyncClientOptions

URL, KEY, OIDC, GITHUB = sys.argv[1:5]
APP = "http://app.test/signed-in"
browser = httpx.Client(follow_redirects=False, timeout=30)


def client(flow="implicit"):
    return create_client(URL, KEY, options=SyncClientOptions(flow_type=flow, auto_refresh_token=False, persist_session=False))


def travel(start, consent, at_provider=False):
    """The browser's trip from `start` (Strive's /authorize URL, or with `at_provider` the provider's own)
    to the app; the user answers the provider's form with `consent`. Returns the app URL and the callback's
    duration in milliseconds."""
    if not at_provider:
        to_provider = browser.get(start)
        assert to_provider.status_code == 302, (to_provider.status_code, to_provider.text)
        start = to_provider.headers["location"]
    to_callback = browser.post(start, data=consent)
    assert to_callback.status_code in (302, 303), (to_callback.status_code, to_callback.text)
    callback = to_callback.headers["location"]
    # The callback URL carries Strive's public URL; the test server listens where URL says.
    path = callback[callback.index("/auth/v1/callback"):]
    began = time.perf_counter()
    to_app = browser.get(URL + path)
    elapsed = (time.perf_counter() - began) * 1000
    assert to_app.status_code == 302, (to_app.status_code, to_app.text)
    return to_app.headers["location"], elapsed


def parameters(url, part):
    split = urllib.parse.urlsplit(url)
    return dict(urllib.parse.parse_qsl(split.fragment if part == "#" else split.query))


def oidc_user(subject, **claims):
    assert browser.put(f"{OIDC}/users/{urllib.parse.quote(subject, safe='')}", json=claims).status_code == 204


def main():
    # sign_in_with_oauth with PKCE, the code exchanged by the client that made the verifier.
    subject = f"py-{uuid.uuid4()}"
    email = f"py-{uuid.uuid4().hex[:8]}@example.com"
    oidc_user(subject, email=email, email_verified=True, name="Py")
    pkce = client("pkce")
    start = pkce.auth.sign_in_with_oauth({"provider": "keycloak", "options": {"redirect_to": APP}})
    assert "code_challenge=" in start.url, start.url
    landing, _ = travel(start.url, {"sub": subject})
    assert landing.startswith(APP + "?code="), landing
    session = pkce.auth.exchange_code_for_session({"auth_code": parameters(landing, "?")["code"]}).session
    assert session.user.email == email and session.provider_token, session
    assert [identity.provider for identity in session.user.identities] == ["keycloak"]
    print("ok sign_in_with_oauth pkce exchanged", flush=True)

    # The same provider's ID token, as a native app gets it, with a hashed nonce.
    raw = f"nonce-{uuid.uuid4()}"
    redirect = "http://127.0.0.1:9/native"
    consented = browser.post(
        f"{OIDC}/oauth2/authorize?" + urllib.parse.urlencode({
            "client_id": "strive-app", "redirect_uri": redirect, "response_type": "code", "scope": "openid email",
            "state": "s", "nonce": hashlib.sha256(raw.encode()).hexdigest()}),
        data={"sub": subject})
    code = parameters(consented.headers["location"], "?")["code"]
    tokens = browser.post(f"{OIDC}/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect, "client_id": "strive-app",
        "client_secret": "s"}).json()
    native = client().auth.sign_in_with_id_token({"provider": "keycloak", "token": tokens["id_token"], "nonce": raw})
    assert native.user.id == session.user.id, (native.user.id, session.user.id)
    print("ok sign_in_with_id_token", flush=True)

    # Linking GitHub to the signed-in user, then unlinking it.
    login = f"py{uuid.uuid4().hex[:8]}"
    assert browser.put(f"{GITHUB}/users/{login}", json={
        "id": int(uuid.uuid4().int % 10**9), "name": "Py", "emails": [{"email": email, "primary": True, "verified": True}],
    }).status_code == 204
    user = client()
    user.auth.set_session(session.access_token, session.refresh_token)
    linking = user.auth.link_identity({"provider": "github", "options": {"redirect_to": APP}})
    landing, _ = travel(linking.url, {"login": login, "action": "allow"}, at_provider=True)
    fragment = parameters(landing, "#")
    assert "access_token" in fragment, landing
    user.auth.set_session(fragment["access_token"], fragment["refresh_token"])
    identities = user.auth.get_user_identities().identities
    assert sorted(identity.provider for identity in identities) == ["github", "keycloak"], identities
    print("ok link_identity added github", flush=True)
    github = next(identity for identity in identities if identity.provider == "github")
    user.auth.unlink_identity(github)
    assert [identity.provider for identity in user.auth.get_user_identities().identities] == ["keycloak"]
    print("ok unlink_identity removed github", flush=True)

    # Callback to redirect, timed over repeated implicit sign-ins of one user.
    timings = []
    for _ in range(int(os.environ.get("TIMING_ROUNDS", "30"))):
        landing, elapsed = travel(client().auth.sign_in_with_oauth({"provider": "keycloak", "options": {"redirect_to": APP}}).url,
                                  {"sub": subject})
        assert "access_token=" in landing, landing
        timings.append(elapsed)
    for elapsed in timings:
        print(f"timing {elapsed:.2f}", flush=True)
    print("ok callback timed", flush=True)


main()
