-- The mail store, version 3: the full-text index records when it was built.
-- When the full-text index was last built (one row at most; none before the first build). An index is stale
-- when an email was written after it: every write of an email row sets last_synced_at, and the build stamps
-- now(), which DuckDB holds at the start of the transaction, so writes in the build's own transaction (a
-- delete rebuilds the index as it deletes) count as indexed.
CREATE TABLE search_index_builds (
    built_at TIMESTAMPTZ NOT NULL
);
