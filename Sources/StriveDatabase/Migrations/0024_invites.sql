-- Invitations (POST /invite, admin generate_link type invite): a mailed link of its own purpose.
alter table auth.one_time_tokens drop constraint one_time_tokens_purpose_check;
alter table auth.one_time_tokens add constraint one_time_tokens_purpose_check
    check (purpose in ('signup', 'recovery', 'magiclink', 'invite'));
