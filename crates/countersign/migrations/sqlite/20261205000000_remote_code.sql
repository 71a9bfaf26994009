-- The short code of a request's remote-approval link `/r/<code>`. Requests
-- stored before this migration have none. SQLite's unique index allows any
-- number of NULLs.
ALTER TABLE approvals ADD COLUMN remote_code TEXT;

CREATE UNIQUE INDEX approvals_remote_code ON approvals (remote_code);
