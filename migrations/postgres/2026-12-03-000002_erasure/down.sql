ALTER TABLE email_outbox DROP COLUMN erase_when_done;
ALTER TABLE patients DROP COLUMN erased_at;
