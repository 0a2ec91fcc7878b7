-- A dermatologist's calendar subscription: the hash of the secret in its URL
-- (/calendar/{token}.ics). One feed a dermatologist; a new one replaces it, and deleting
-- the row revokes it.
CREATE TABLE calendar_feeds (
    dermatologist_id BIGINT PRIMARY KEY REFERENCES dermatologists (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);
