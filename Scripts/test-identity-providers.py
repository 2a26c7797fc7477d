#!/usr/bin/env python3
"""Two real identity providers for Strive's sign-in tests, on 127.0.0.1:

* --oidc-port: an OpenID Connect provider (oidc-provider-mock from PyPI: discovery, JWKS, authorization
  code flow with a consent form where a user is entered or access denied, userinfo). Users' claims are
  set with `PUT /users/<sub>` (JSON claims).
* --github-port: a plain OAuth 2.0 provider shaped like GitHub (not OpenID Connect): authorize, token,
  `GET /user` and `GET /user/emails`, built on authlib's authorization server with PKCE. Users are set
  with `PUT /users/<login>` (`{"id": 7, "name": "…", "emails": [{"email", "primary", "verified"}]}`).
  Its client is `github-client` / `github-secret`.

Prints "ready" once both listen; exits on SIGTERM, when its standard input closes or when its parent is
gone, so a crashed test run leaves no server behind.
"""
import argparse
import os
import secrets
import signal
import sys
import threading
import time

import flask
import oidc_provider_mock
import werkzeug.serving
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge

CLIENT_ID = "github-client"
CLIENT_SECRET = "github-secret"


class Client:
    client_id = CLIENT_ID
    client_secret = CLIENT_SECRET

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        return scope

    def check_redirect_uri(self, redirect_uri):
        return True

    def check_client_secret(self, client_secret):
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        # GitHub takes the secret in the body.
        return method in ("client_secret_post", "client_secret_basic")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


class Code:
    def __init__(self, code, login, redirect_uri, scope, challenge, method):
        self.code, self.login, self.redirect_uri, self.scope = code, login, redirect_uri, scope
        self.code_challenge, self.code_challenge_method = challenge, method
        self.created = time.time()

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return None

    def get_auth_time(self):
        return int(self.created)

    def is_expired(self):
        return time.time() - self.created > 600


class Token:
    def __init__(self, login, scope):
        self.login, self.scope = login, scope

    def check_client(self, client):
        return True

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return 3600

    def is_expired(self):
        return False

    def is_revoked(self):
        return False


USERS = {}
CODES = {}
TOKENS = {}


class User:
    def __init__(self, login):
        self.login = login

    def get_user_id(self):
        return self.login


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_post", "client_secret_basic"]

    def save_authorization_code(self, code, request):
        CODES[code] = Code(
            code, request.user.login, request.payload.redirect_uri, request.payload.scope,
            request.payload.data.get("code_challenge"), request.payload.data.get("code_challenge_method"))

    def query_authorization_code(self, code, client):
        return CODES.get(code)

    def delete_authorization_code(self, authorization_code):
        CODES.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code):
        return User(authorization_code.login)


def save_token(token, request):
    TOKENS[token["access_token"]] = Token(request.user.login, token.get("scope", ""))


class Validator(BearerTokenValidator):
    def authenticate_token(self, token_string):
        return TOKENS.get(token_string)


def github_app() -> flask.Flask:
    app = flask.Flask("github-shaped")
    server = AuthorizationServer(app, query_client=lambda client_id: Client() if client_id == CLIENT_ID else None,
                                 save_token=save_token)
    server.register_grant(CodeGrant, [CodeChallenge(required=False)])
    protect = ResourceProtector()
    protect.register_token_validator(Validator())
    app.config["OAUTH2_ERROR_URIS"] = []

    @app.route("/login/oauth/authorize", methods=["GET", "POST"])
    def authorize():
        if flask.request.method == "GET":
            return "<form method=post><input name=login><button name=action value=allow>Authorize</button>" \
                   "<button name=action value=deny>Cancel</button></form>"
        login = flask.request.form.get("login")
        if flask.request.form.get("action") == "deny" or login not in USERS:
            return server.create_authorization_response(grant_user=None)
        return server.create_authorization_response(grant_user=User(login))

    @app.post("/login/oauth/access_token")
    def token():
        return server.create_token_response()

    @app.get("/user")
    @protect()
    def user():
        from authlib.integrations.flask_oauth2 import current_token
        profile = USERS[current_token.login]
        return {"id": profile["id"], "login": current_token.login, "name": profile.get("name"),
                "avatar_url": f"https://avatars.example/{profile['id']}", "email": None}

    @app.get("/user/emails")
    @protect()
    def emails():
        from authlib.integrations.flask_oauth2 import current_token
        return flask.jsonify(USERS[current_token.login].get("emails", []))

    @app.put("/users/<login>")
    def set_user(login):
        USERS[login] = flask.request.get_json()
        return "", 204

    return app


def exit_when_orphaned() -> None:
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def main() -> None:
    # A Swift test process ignores or blocks SIGTERM (ServiceLifecycle handles it); children inherit both.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
    threading.Thread(target=exit_when_orphaned, daemon=True).start()
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    parser = argparse.ArgumentParser()
    parser.add_argument("--oidc-port", type=int, required=True)
    parser.add_argument("--github-port", type=int, required=True)
    options = parser.parse_args()
    servers = [
        werkzeug.serving.make_server("127.0.0.1", options.oidc_port, oidc_provider_mock.app(), threaded=True),
        werkzeug.serving.make_server("127.0.0.1", options.github_port, github_app(), threaded=True),
    ]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        for server in servers:
            server.shutdown()


if __name__ == "__main__":
    main()
