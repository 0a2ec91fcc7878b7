-- What a booking's form said about its patient, kept on the booking: an anonymous form
-- never rewrites the shared patient record, and the desk sees when the two differ.
-- phone_key is the phone's digits, what the per-phone limit on live bookings counts by.
-- manage_nonce makes each booking's manage link revocable: a new nonce, a new link.
ALTER TABLE bookings ADD COLUMN patient_name TEXT NOT NULL DEFAULT '';
ALTER TABLE bookings ADD COLUMN patient_phone TEXT NOT NULL DEFAULT '';
ALTER TABLE bookings ADD COLUMN phone_key TEXT NOT NULL DEFAULT '';
ALTER TABLE bookings ADD COLUMN manage_nonce TEXT NOT NULL DEFAULT '';
UPDATE bookings SET
    patient_name = (SELECT name FROM patients WHERE patients.id = bookings.patient_id),
    patient_phone = (SELECT phone FROM patients WHERE patients.id = bookings.patient_id),
    -- The digits of the phone: the form allows only digits and " +-.()" besides.
    phone_key = (SELECT replace(replace(replace(replace(replace(replace(phone, ' ', ''), '+', ''), '-', ''), '.', ''), '(', ''), ')', '') FROM patients WHERE patients.id = bookings.patient_id);
CREATE INDEX bookings_phone_key ON bookings (phone_key, status);
CREATE INDEX bookings_patient_status ON bookings (patient_id, status);

-- Requests counted per key (a client address) and fixed window, shared by every
-- instance on the database.
CREATE TABLE rate_counters (
    key TEXT NOT NULL,
    window_start TIMESTAMP NOT NULL,
    hits INTEGER NOT NULL,
    PRIMARY KEY (key, window_start)
);

-- Failed sign-ins per account and per address, and when the next attempt is allowed:
-- a delay that grows with each failure and resets on success, never a lockout.
CREATE TABLE login_failures (
    key TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    retry_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
