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
DROP TABLE availability_week_marks;

CREATE TABLE availability_marks (
    dermatologist_id BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);

CREATE TRIGGER availability_slot_insert AFTER INSERT ON slots BEGIN
    INSERT INTO availability_marks (dermatologist_id, version) VALUES (NEW.dermatologist_id, 1)
        ON CONFLICT (dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_slot_update AFTER UPDATE ON slots BEGIN
    INSERT INTO availability_marks (dermatologist_id, version)
        VALUES (NEW.dermatologist_id, 1), (OLD.dermatologist_id, 1)
        ON CONFLICT (dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_slot_delete AFTER DELETE ON slots BEGIN
    INSERT INTO availability_marks (dermatologist_id, version) VALUES (OLD.dermatologist_id, 1)
        ON CONFLICT (dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_claim_insert AFTER INSERT ON booking_slots BEGIN
    INSERT INTO availability_marks (dermatologist_id, version)
        SELECT dermatologist_id, 1 FROM slots WHERE id = NEW.slot_id
        ON CONFLICT (dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_claim_update AFTER UPDATE ON booking_slots BEGIN
    INSERT INTO availability_marks (dermatologist_id, version)
        SELECT dermatologist_id, 1 FROM slots WHERE id IN (NEW.slot_id, OLD.slot_id)
        ON CONFLICT (dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_claim_delete AFTER DELETE ON booking_slots BEGIN
    INSERT INTO availability_marks (dermatologist_id, version)
        SELECT dermatologist_id, 1 FROM slots WHERE id = OLD.slot_id
        ON CONFLICT (dermatologist_id) DO UPDATE SET version = version + 1;
END;

CREATE TRIGGER availability_treatments_insert AFTER INSERT ON treatments BEGIN
    INSERT INTO availability_marks (dermatologist_id, version) VALUES (0, 1)
        ON CONFLICT (dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_treatments_update AFTER UPDATE ON treatments BEGIN
    INSERT INTO availability_marks (dermatologist_id, version) VALUES (0, 1)
        ON CONFLICT (dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_treatments_delete AFTER DELETE ON treatments BEGIN
    INSERT INTO availability_marks (dermatologist_id, version) VALUES (0, 1)
        ON CONFLICT (dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_dermatologists_insert AFTER INSERT ON dermatologists BEGIN
    INSERT INTO availability_marks (dermatologist_id, version) VALUES (0, 1)
        ON CONFLICT (dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_dermatologists_update AFTER UPDATE ON dermatologists BEGIN
    INSERT INTO availability_marks (dermatologist_id, version) VALUES (0, 1)
        ON CONFLICT (dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_dermatologists_delete AFTER DELETE ON dermatologists BEGIN
    INSERT INTO availability_marks (dermatologist_id, version) VALUES (0, 1)
        ON CONFLICT (dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_performers_insert AFTER INSERT ON dermatologist_treatments BEGIN
    INSERT INTO availability_marks (dermatologist_id, version) VALUES (0, 1)
        ON CONFLICT (dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_performers_update AFTER UPDATE ON dermatologist_treatments BEGIN
    INSERT INTO availability_marks (dermatologist_id, version) VALUES (0, 1)
        ON CONFLICT (dermatologist_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER availability_performers_delete AFTER DELETE ON dermatologist_treatments BEGIN
    INSERT INTO availability_marks (dermatologist_id, version) VALUES (0, 1)
        ON CONFLICT (dermatologist_id) DO UPDATE SET version = version + 1;
END;
