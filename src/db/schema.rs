//! The one schema both migration trees must produce (see migrations/sqlite and
//! migrations/postgres). Only column types that diesel's MultiConnection shares are used.

diesel::table! {
    dermatologists (id) {
        id -> BigInt,
        name -> Text,
        title -> Text,
        bio -> Text,
        email -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    treatments (id) {
        id -> BigInt,
        slug -> Text,
        name -> Text,
        category -> Text,
        description -> Text,
        duration_minutes -> Integer,
        buffer_minutes -> Integer,
        price_cents -> BigInt,
        currency -> Text,
        sessions_min -> Integer,
        sessions_max -> Integer,
        session_interval_days -> Nullable<Integer>,
        requires_consultation -> Bool,
        preparation -> Text,
        aftercare -> Text,
        screening_questions -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    dermatologist_treatments (dermatologist_id, treatment_id) {
        dermatologist_id -> BigInt,
        treatment_id -> BigInt,
    }
}

diesel::table! {
    schedule_rules (id) {
        id -> BigInt,
        dermatologist_id -> BigInt,
        weekday -> Integer,
        start_time -> Time,
        end_time -> Time,
        slot_minutes -> Integer,
        valid_from -> Nullable<Date>,
        valid_until -> Nullable<Date>,
    }
}

diesel::table! {
    time_off (id) {
        id -> BigInt,
        dermatologist_id -> BigInt,
        starts_at -> Timestamp,
        ends_at -> Timestamp,
        reason -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    slots (id) {
        id -> BigInt,
        dermatologist_id -> BigInt,
        starts_at -> Timestamp,
        ends_at -> Timestamp,
        status -> Text,
        source -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    patients (id) {
        id -> BigInt,
        name -> Text,
        email -> Text,
        phone -> Text,
        date_of_birth -> Nullable<Date>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        erased_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    courses (id) {
        id -> BigInt,
        patient_id -> BigInt,
        treatment_id -> BigInt,
        dermatologist_id -> BigInt,
        sessions -> Integer,
        created_at -> Timestamp,
    }
}

diesel::table! {
    bookings (id) {
        id -> BigInt,
        reference -> Text,
        patient_id -> BigInt,
        dermatologist_id -> BigInt,
        treatment_id -> BigInt,
        course_id -> Nullable<BigInt>,
        starts_at -> Timestamp,
        ends_at -> Timestamp,
        status -> Text,
        source -> Text,
        screening_answers -> Text,
        notes -> Nullable<Text>,
        manage_token_hash -> Text,
        ics_sequence -> Integer,
        version -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        patient_name -> Text,
        patient_phone -> Text,
        phone_key -> Text,
        manage_nonce -> Text,
        health_data_consent_at -> Nullable<Timestamp>,
        change_seq -> BigInt,
    }
}

diesel::table! {
    rate_counters (key, window_start) {
        key -> Text,
        window_start -> Timestamp,
        hits -> Integer,
    }
}

diesel::table! {
    login_failures (key) {
        key -> Text,
        failures -> Integer,
        retry_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    booking_slots (booking_id, slot_id) {
        booking_id -> BigInt,
        slot_id -> BigInt,
    }
}

diesel::table! {
    email_outbox (id) {
        id -> BigInt,
        booking_id -> Nullable<BigInt>,
        kind -> Text,
        recipient -> Text,
        subject -> Text,
        body_text -> Text,
        body_html -> Text,
        ics -> Nullable<Text>,
        message_id -> Text,
        dedupe_key -> Nullable<Text>,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        erase_when_done -> Bool,
    }
}

diesel::table! {
    staff (id) {
        id -> BigInt,
        email -> Text,
        name -> Text,
        role -> Text,
        password_hash -> Text,
        dermatologist_id -> Nullable<BigInt>,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    staff_sessions (id) {
        id -> BigInt,
        staff_id -> BigInt,
        token_hash -> Text,
        expires_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (scope, idempotency_key) {
        scope -> Text,
        idempotency_key -> Text,
        request_hash -> Text,
        response_status -> Nullable<Integer>,
        response_body -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        at -> Timestamp,
        actor_kind -> Text,
        actor_staff_id -> Nullable<BigInt>,
        actor_api_key_id -> Nullable<BigInt>,
        entity -> Text,
        entity_id -> BigInt,
        action -> Text,
        before_status -> Nullable<Text>,
        after_status -> Nullable<Text>,
        details -> Nullable<Text>,
    }
}

diesel::joinable!(dermatologist_treatments -> dermatologists (dermatologist_id));
diesel::joinable!(dermatologist_treatments -> treatments (treatment_id));
diesel::joinable!(schedule_rules -> dermatologists (dermatologist_id));
diesel::joinable!(time_off -> dermatologists (dermatologist_id));
diesel::joinable!(slots -> dermatologists (dermatologist_id));
diesel::joinable!(bookings -> patients (patient_id));
diesel::joinable!(bookings -> dermatologists (dermatologist_id));
diesel::joinable!(bookings -> treatments (treatment_id));
diesel::joinable!(booking_slots -> bookings (booking_id));
diesel::joinable!(booking_slots -> slots (slot_id));
diesel::joinable!(staff_sessions -> staff (staff_id));

diesel::allow_tables_to_appear_in_same_query!(
    dermatologists,
    treatments,
    dermatologist_treatments,
    schedule_rules,
    time_off,
    slots,
    patients,
    courses,
    bookings,
    booking_slots,
    email_outbox,
    staff,
    staff_sessions,
    idempotency_keys,
    audit_log,
);

diesel::table! {
    availability_week_marks (week, dermatologist_id) {
        week -> BigInt,
        dermatologist_id -> BigInt,
        version -> BigInt,
    }
}

diesel::table! {
    calendar_feeds (dermatologist_id) {
        dermatologist_id -> BigInt,
        token_hash -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    api_keys (id) {
        id -> BigInt,
        name -> Text,
        scope -> Text,
        key_hash -> Text,
        prefix -> Text,
        created_by -> BigInt,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(api_keys, staff);

diesel::table! {
    webhook_endpoints (id) {
        id -> BigInt,
        url -> Text,
        description -> Text,
        event_types -> Text,
        secret_sealed -> Text,
        active -> Bool,
        failing_since -> Nullable<Timestamp>,
        created_by -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_events (id) {
        id -> BigInt,
        message_id -> Text,
        event_type -> Text,
        subject -> Text,
        payload -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        endpoint_id -> BigInt,
        event_id -> BigInt,
        subject -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        last_status_code -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));
diesel::joinable!(webhook_deliveries -> webhook_events (event_id));
diesel::allow_tables_to_appear_in_same_query!(
    webhook_endpoints,
    webhook_events,
    webhook_deliveries
);

diesel::table! {
    slot_sync_marks (dermatologist_id) {
        dermatologist_id -> BigInt,
        fingerprint -> Text,
        synced_at -> Timestamp,
    }
}
