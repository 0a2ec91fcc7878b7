-- Availability marks per dermatologist and week, not per dermatologist: a booking then
-- makes each instance's index read that dermatologist's free slots of one week again,
-- not of the whole horizon. A week is the slot's start in whole weeks since 1970-01-01
-- (UTC, the stored time), which the application computes the same way. Row (week 0,
-- dermatologist 0) stands for the catalogue. The primary key leads with the week, so the
-- index reads only the weeks still ahead. The table has a new name so that an instance of
-- an earlier version, which reads one mark per dermatologist from `availability_marks`,
-- fails its searches rather than misses changes silently: replace those instances once
-- this has migrated.
DROP TRIGGER availability_slot_insert;
DROP TRIGGER availability_slot_update;
DROP TRIGGER availability_slot_delete;
DROP TRIGGER availability_claim_insert;
DROP TRIGGER availability_claim_update;
DROP TRIGGER availability_claim_delete;
DROP TRIGGER availability_treatments_insert;
DROP TRIGGER availability_treatments_update;
DROP TRIGGER availability_treatments_delete;
DROP TRIGGER availability_dermatologists_insert;
DROP TRIGGER availability_dermatologists_update;
DROP TRIGGER availability_dermatologists_delete;
DROP TRIGGER availability_performers_insert;
DROP TRIGGER availability_performers_update;
DROP TRIGGER availability_performers_delete;
DROP TABLE availability_marks;

CREATE TABLE availability_week_marks (
    week BIGINT NOT NULL,
    dermatologist_id BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (week, dermatologist_id)
);

CREATE TRIGGER availability_slot_insert AFTER INSERT ON slots BEGIN
    INSERT INTO availability_week_marks (week, dermatologist_id, version)
        VALUES (CAST(strftime('%s', NEW.starts_at) AS INTEGER) / 604800, NEW.dermatologist_id, 1)
        ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_slot_update AFTER UPDATE ON slots BEGIN
    INSERT INTO availability_week_marks (week, dermatologist_id, version)
        VALUES (CAST(strftime('%s', NEW.starts_at) AS INTEGER) / 604800, NEW.dermatologist_id, 1),
               (CAST(strftime('%s', OLD.starts_at) AS INTEGER) / 604800, OLD.dermatologist_id, 1)
        ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_slot_delete AFTER DELETE ON slots BEGIN
    INSERT INTO availability_week_marks (week, dermatologist_id, version)
        VALUES (CAST(strftime('%s', OLD.starts_at) AS INTEGER) / 604800, OLD.dermatologist_id, 1)
        ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_claim_insert AFTER INSERT ON booking_slots BEGIN
    INSERT INTO availability_week_marks (week, dermatologist_id, version)
        SELECT CAST(strftime('%s', starts_at) AS INTEGER) / 604800, dermatologist_id, 1 FROM slots WHERE id = NEW.slot_id
        ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_claim_update AFTER UPDATE ON booking_slots BEGIN
    INSERT INTO availability_week_marks (week, dermatologist_id, version)
        SELECT CAST(strftime('%s', starts_at) AS INTEGER) / 604800, dermatologist_id, 1 FROM slots WHERE id IN (NEW.slot_id, OLD.slot_id)
        ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_claim_delete AFTER DELETE ON booking_slots BEGIN
    INSERT INTO availability_week_marks (week, dermatologist_id, version)
        SELECT CAST(strftime('%s', starts_at) AS INTEGER) / 604800, dermatologist_id, 1 FROM slots WHERE id = OLD.slot_id
        ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = version + 1;
END;

CREATE TRIGGER availability_treatments_insert AFTER INSERT ON treatments BEGIN
    INSERT INTO availability_week_marks (week, dermatologist_id, version) VALUES (0, 0, 1)
        ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_treatments_update AFTER UPDATE ON treatments BEGIN
    INSERT INTO availability_week_marks (week, dermatologist_id, version) VALUES (0, 0, 1)
        ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_treatments_delete AFTER DELETE ON treatments BEGIN
    INSERT INTO availability_week_marks (week, dermatologist_id, version) VALUES (0, 0, 1)
        ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_dermatologists_insert AFTER INSERT ON dermatologists BEGIN
    INSERT INTO availability_week_marks (week, dermatologist_id, version) VALUES (0, 0, 1)
        ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_dermatologists_update AFTER UPDATE ON dermatologists BEGIN
    INSERT INTO availability_week_marks (week, dermatologist_id, version) VALUES (0, 0, 1)
        ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_dermatologists_delete AFTER DELETE ON dermatologists BEGIN
    INSERT INTO availability_week_marks (week, dermatologist_id, version) VALUES (0, 0, 1)
        ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_performers_insert AFTER INSERT ON dermatologist_treatments BEGIN
    INSERT INTO availability_week_marks (week, dermatologist_id, version) VALUES (0, 0, 1)
        ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_performers_update AFTER UPDATE ON dermatologist_treatments BEGIN
    INSERT INTO availability_week_marks (week, dermatologist_id, version) VALUES (0, 0, 1)
        ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_performers_delete AFTER DELETE ON dermatologist_treatments BEGIN
    INSERT INTO availability_week_marks (week, dermatologist_id, version) VALUES (0, 0, 1)
        ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = version + 1;
END;
