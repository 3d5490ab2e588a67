-- The mail store, version 2: each round records the filter it selects by.
-- A round's fingerprint is a hash, so nothing outside the round could tell what the store is meant to hold for
-- the folder. A resync of single emails needs to: a refetched message that left the synced folders or no longer
-- matches the filter must leave the store, as the next round would have it. NULL: a round begun before this.
ALTER TABLE folder_sync_state ADD COLUMN filter_text VARCHAR;
