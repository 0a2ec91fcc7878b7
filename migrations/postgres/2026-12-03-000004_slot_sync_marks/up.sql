-- What each dermatologist's last complete slot sync made true: in its range, the generated
-- slots are exactly the schedule's. The fingerprint hashes the range and the slots the
-- schedule wanted; when today's schedule hashes the same, nothing has removed or moved a
-- generated slot since (only a sync does), and the sync's read of every slot is skipped.
CREATE TABLE slot_sync_marks (
    dermatologist_id BIGINT PRIMARY KEY REFERENCES dermatologists (id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL,
    synced_at TIMESTAMP NOT NULL
);
