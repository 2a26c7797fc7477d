-- Secure email change and reauthentication.
--
-- A user's new address waits in auth.users.email_change until it is confirmed: with secure email change
-- (the default) by a link or code mailed to the current address and one mailed to the new one, each an
-- auth.one_time_tokens row of its own purpose; the change applies when the second is used. A token that
-- still exists is a side not yet confirmed, so no counter can go out of step with the tokens.
-- reauthentication: a 6-digit code mailed to the signed-in user, the nonce that proves it is them before
-- a password change.

alter table auth.users
    add column email_change text,
    add column email_change_sent_at timestamptz,
    add constraint users_email_change_normalised check (email_change is null or email_change = lower(btrim(email_change)));

alter table auth.one_time_tokens drop constraint one_time_tokens_purpose_check;
alter table auth.one_time_tokens add constraint one_time_tokens_purpose_check
    check (purpose in ('signup', 'recovery', 'magiclink', 'invite', 'email_change_current', 'email_change_new', 'reauthentication'));
