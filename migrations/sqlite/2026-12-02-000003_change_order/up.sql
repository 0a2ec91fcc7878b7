-- Incremental sync reads bookings in the order of their changes. SQLite's writers take
-- turns, so a counter bumped inside each writing transaction is commit order.
ALTER TABLE bookings ADD COLUMN change_seq BIGINT NOT NULL DEFAULT 0;

CREATE TABLE change_counter (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO change_counter (id, value) VALUES (1, 0);

CREATE TRIGGER bookings_change_seq_insert AFTER INSERT ON bookings
BEGIN
    UPDATE change_counter SET value = value + 1 WHERE id = 1;
    UPDATE bookings SET change_seq = (SELECT value FROM change_counter WHERE id = 1)
        WHERE id = NEW.id;
END;

-- Not when the change is the sequence itself (the trigger's own update).
CREATE TRIGGER bookings_change_seq_update AFTER UPDATE ON bookings
WHEN NEW.change_seq = OLD.change_seq
BEGIN
    UPDATE change_counter SET value = value + 1 WHERE id = 1;
    UPDATE bookings SET change_seq = (SELECT value FROM change_counter WHERE id = 1)
        WHERE id = NEW.id;
END;

UPDATE bookings SET status = status;
CREATE INDEX bookings_change_order ON bookings (change_seq, id);
