-- The whole data model of DESIGN.md. Times are UTC, stored as naive TIMESTAMP text
-- truncated to whole seconds so that text comparison orders them correctly.

CREATE TABLE dermatologists (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    bio TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL UNIQUE,
    active BOOLEAN NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE treatments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    category TEXT NOT NULL CHECK (category IN ('consultation', 'mesotherapy', 'laser')),
    description TEXT NOT NULL DEFAULT '',
    duration_minutes INTEGER NOT NULL CHECK (duration_minutes > 0),
    buffer_minutes INTEGER NOT NULL DEFAULT 0 CHECK (buffer_minutes >= 0),
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    currency TEXT NOT NULL,
    sessions_min INTEGER NOT NULL DEFAULT 1 CHECK (sessions_min >= 1),
    sessions_max INTEGER NOT NULL DEFAULT 1 CHECK (sessions_max >= sessions_min),
    session_interval_days INTEGER,
    requires_consultation BOOLEAN NOT NULL DEFAULT 0,
    preparation TEXT NOT NULL DEFAULT '',
    aftercare TEXT NOT NULL DEFAULT '',
    screening_questions TEXT NOT NULL DEFAULT '[]',
    active BOOLEAN NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE dermatologist_treatments (
    dermatologist_id BIGINT NOT NULL REFERENCES dermatologists (id) ON DELETE CASCADE,
    treatment_id BIGINT NOT NULL REFERENCES treatments (id) ON DELETE CASCADE,
    PRIMARY KEY (dermatologist_id, treatment_id)
);
CREATE INDEX dermatologist_treatments_treatment ON dermatologist_treatments (treatment_id);

CREATE TABLE schedule_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dermatologist_id BIGINT NOT NULL REFERENCES dermatologists (id) ON DELETE CASCADE,
    weekday INTEGER NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    start_time TIME NOT NULL,
    end_time TIME NOT NULL,
    slot_minutes INTEGER NOT NULL CHECK (slot_minutes > 0),
    valid_from DATE,
    valid_until DATE
);
CREATE INDEX schedule_rules_dermatologist ON schedule_rules (dermatologist_id);

CREATE TABLE time_off (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dermatologist_id BIGINT NOT NULL REFERENCES dermatologists (id) ON DELETE CASCADE,
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX time_off_dermatologist ON time_off (dermatologist_id, starts_at);

CREATE TABLE slots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dermatologist_id BIGINT NOT NULL REFERENCES dermatologists (id),
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'blocked')),
    source TEXT NOT NULL CHECK (source IN ('generated', 'manual')),
    created_at TIMESTAMP NOT NULL,
    UNIQUE (dermatologist_id, starts_at)
);
CREATE INDEX slots_starts_at ON slots (starts_at);

CREATE TABLE patients (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    phone TEXT NOT NULL,
    date_of_birth DATE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE courses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    treatment_id BIGINT NOT NULL REFERENCES treatments (id),
    dermatologist_id BIGINT NOT NULL REFERENCES dermatologists (id),
    sessions INTEGER NOT NULL CHECK (sessions >= 1),
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE bookings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    reference TEXT NOT NULL UNIQUE,
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    dermatologist_id BIGINT NOT NULL REFERENCES dermatologists (id),
    treatment_id BIGINT NOT NULL REFERENCES treatments (id),
    course_id BIGINT REFERENCES courses (id),
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending_review', 'confirmed', 'cancelled', 'completed', 'no_show')),
    source TEXT NOT NULL CHECK (source IN ('online', 'front_desk')),
    screening_answers TEXT NOT NULL DEFAULT '{}',
    notes TEXT,
    manage_token_hash TEXT NOT NULL UNIQUE,
    ics_sequence INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX bookings_dermatologist_start ON bookings (dermatologist_id, starts_at);
CREATE INDEX bookings_start ON bookings (starts_at);
CREATE INDEX bookings_patient ON bookings (patient_id);
CREATE INDEX bookings_course ON bookings (course_id);

-- The unique slot_id is what makes a double booking impossible.
CREATE TABLE booking_slots (
    booking_id BIGINT NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    slot_id BIGINT NOT NULL UNIQUE REFERENCES slots (id),
    PRIMARY KEY (booking_id, slot_id)
);

CREATE TABLE email_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    booking_id BIGINT REFERENCES bookings (id) ON DELETE SET NULL,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    ics TEXT,
    message_id TEXT NOT NULL UNIQUE,
    dedupe_key TEXT UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    claimed_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX email_outbox_due ON email_outbox (status, next_attempt_at);
CREATE INDEX email_outbox_booking ON email_outbox (booking_id);

CREATE TABLE staff (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'front_desk', 'dermatologist')),
    password_hash TEXT NOT NULL,
    dermatologist_id BIGINT REFERENCES dermatologists (id),
    active BOOLEAN NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE staff_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    staff_id BIGINT NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX staff_sessions_expiry ON staff_sessions (expires_at);

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response_status INTEGER,
    response_body TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TIMESTAMP NOT NULL,
    actor_kind TEXT NOT NULL CHECK (actor_kind IN ('staff', 'patient', 'system')),
    actor_staff_id BIGINT,
    entity TEXT NOT NULL,
    entity_id BIGINT NOT NULL,
    action TEXT NOT NULL,
    before_status TEXT,
    after_status TEXT,
    details TEXT
);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id, at);
