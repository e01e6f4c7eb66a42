-- Which webhooks an event goes to is decided by the subscriptions in force at
-- its commit, which rowhook follows through the binlog (src/subscriptions.rs).
-- The view that belongs to the checkpoint's position is saved with it, so a
-- restart routes the backlog as it was committed. JSON; nothing secret in it.
ALTER TABLE rowhook_checkpoints
    ADD COLUMN subscriptions MEDIUMTEXT NULL AFTER gtid;
