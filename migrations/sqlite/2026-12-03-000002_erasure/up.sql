-- Erasure (GDPR Article 17): the patient row stays, as a tombstone, so bookings and
-- statistics keep their shape; erased_at says its personal data is gone.
ALTER TABLE patients ADD COLUMN erased_at TIMESTAMP;
-- A message to or about an erased patient that was still waiting when they were erased:
-- its text is emptied as soon as it is sent or has failed for good.
ALTER TABLE email_outbox ADD COLUMN erase_when_done BOOLEAN NOT NULL DEFAULT 0;
