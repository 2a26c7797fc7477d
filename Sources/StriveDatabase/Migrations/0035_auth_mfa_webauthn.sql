-- WebAuthn factors for multi-factor authentication (GoTrue's factor_type "webauthn"): a security key or
-- platform authenticator as the second factor that raises a session to aal2.
--
-- A webauthn factor has no TOTP secret; once verified it holds its credential (the id, the COSE_Key as
-- the authenticator sent it, the counter). A challenge of such a factor carries its random bytes and
-- whether it registers the credential ('create') or asks for an assertion ('request').

alter table auth.mfa_factors drop constraint mfa_factors_factor_type_check;
alter table auth.mfa_factors add constraint mfa_factors_factor_type_check check (factor_type in ('totp', 'webauthn'));
alter table auth.mfa_factors alter column secret drop not null;
alter table auth.mfa_factors add constraint mfa_factors_totp_has_secret check (factor_type <> 'totp' or secret is not null);
alter table auth.mfa_factors
    add column web_authn_credential_id bytea unique,
    add column web_authn_public_key bytea,
    add column web_authn_sign_count bigint,
    add column web_authn_aaguid uuid,
    add constraint mfa_factors_verified_webauthn_has_credential
        check (factor_type <> 'webauthn' or status <> 'verified' or (web_authn_credential_id is not null and web_authn_public_key is not null));

alter table auth.mfa_challenges
    add column web_authn_challenge bytea check (web_authn_challenge is null or octet_length(web_authn_challenge) = 32),
    add column web_authn_type text check (web_authn_type is null or web_authn_type in ('create', 'request'));
