-- Signed webhooks (Standard Webhooks): endpoints admins register, the events booking
-- changes write in their own transaction, and one delivery of each event to each
-- endpoint that subscribed to its type.
CREATE TABLE webhook_endpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    -- The event types it receives, space-separated ('booking.created booking.cancelled').
    event_types TEXT NOT NULL,
    -- The signing secret, sealed (AES-256-GCM) with webhooks.encryption_key, which is
    -- never stored here: a copy of the database cannot sign.
    secret_sealed TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT 1,
    -- Set when a delivery used its last attempt; cleared by the next delivered one.
    failing_since TIMESTAMP,
    created_by BIGINT NOT NULL REFERENCES staff (id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE webhook_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The webhook-id header: the same on every attempt, for receivers to deduplicate.
    message_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    -- What the event is about ('booking:17', 'patient:4'); one endpoint receives the
    -- events of one subject in order.
    subject TEXT NOT NULL,
    -- The JSON body, ids and what changed, never screening answers.
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id BIGINT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id BIGINT NOT NULL REFERENCES webhook_events (id),
    subject TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'delivered', 'failed', 'skipped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    claimed_until TIMESTAMP,
    last_status_code INTEGER,
    last_error TEXT,
    delivered_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
-- The earlier deliveries of the same subject to the same endpoint, which a delivery waits for.
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, subject, id);
