-- The mail store, version 1: one DuckDB file per customer.
-- No PRIMARY KEY or UNIQUE constraints: DuckDB's ART indexes make every page commit and checkpoint several
-- times slower, and the one writer keeps keys unique itself (anti-joins in MailStore.apply_page). The Dagster
-- asset check "ids unique" verifies it.

CREATE SEQUENCE run_id_seq START 1;

-- Every file id ever handed out, forever: emails (attachment_id = '') and their attachments.
-- Rows here are never deleted, so an id is never reused and survives tombstones, removals and resyncs.
-- New ids are max + 1, 2, ... in page order (deterministic, unlike nextval over a join; one writer).
CREATE TABLE file_ids (
    file_id BIGINT NOT NULL,
    message_id VARCHAR NOT NULL,
    attachment_id VARCHAR NOT NULL,
    assigned_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE emails (
    file_id BIGINT NOT NULL,
    message_id VARCHAR NOT NULL,            -- Graph's immutable id
    internet_message_id VARCHAR,
    conversation_id VARCHAR,
    data_source_id BIGINT,                  -- the connection (mailbox) in the control store
    folder_id VARCHAR,
    folder_path VARCHAR,
    subject VARCHAR,
    from_name VARCHAR,
    from_address VARCHAR,
    sender_name VARCHAR,
    sender_address VARCHAR,
    to_recipients STRUCT(name VARCHAR, address VARCHAR)[],
    cc_recipients STRUCT(name VARCHAR, address VARCHAR)[],
    bcc_recipients STRUCT(name VARCHAR, address VARCHAR)[],
    reply_to STRUCT(name VARCHAR, address VARCHAR)[],
    received_at TIMESTAMPTZ,
    sent_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ,
    modified_at TIMESTAMPTZ,
    categories VARCHAR[],
    importance VARCHAR,
    is_read BOOLEAN,
    flag_status VARCHAR,
    has_attachments BOOLEAN,
    web_link VARCHAR,
    change_key VARCHAR,
    body_content_type VARCHAR,              -- 'html' or 'text', as Graph sent the body
    body_html VARCHAR,
    body_text VARCHAR,
    unique_body_text VARCHAR,
    body_preview VARCHAR,
    size_bytes BIGINT,                      -- bytes of the body as stored, for Carbon's file_size
    content_hash VARCHAR NOT NULL,          -- over every synced field: an unchanged message is not rewritten
    attachments_hash VARCHAR,
    sync_status VARCHAR NOT NULL,           -- Carbon's ExternalFileSyncStatuses (READY, SYNC_ERROR, ...)
    sync_error VARCHAR,
    request_id VARCHAR,                     -- the Carbon request that last wrote the row
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_synced_at TIMESTAMPTZ NOT NULL,
    removed_at TIMESTAMPTZ,                 -- gone from the mailbox (or from the synced set): content removed
    file_contents_deleted BOOLEAN NOT NULL DEFAULT false  -- deleted through Mailroom, record kept
);

CREATE TABLE attachments (
    file_id BIGINT NOT NULL,
    message_id VARCHAR NOT NULL,
    attachment_id VARCHAR NOT NULL,
    name VARCHAR,
    content_type VARCHAR,
    size BIGINT,
    is_inline BOOLEAN,
    kind VARCHAR,                           -- 'file', 'item' or 'reference' (Graph's @odata.type)
    format VARCHAR,                         -- 'eml', 'msg', 'ics' when recognised
    content_id VARCHAR,
    last_modified_at TIMESTAMPTZ,
    content BLOB,
    content_state VARCHAR NOT NULL,         -- 'stored', 'not_requested', 'too_large', 'inline_skipped', ...
    content_sha256 VARCHAR,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_synced_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE folders (
    folder_id VARCHAR NOT NULL,
    data_source_id BIGINT,
    display_name VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    parent_id VARCHAR,
    well_known_name VARCHAR,
    total_count BIGINT,
    unread_count BIGINT,
    child_folder_count BIGINT,
    updated_at TIMESTAMPTZ NOT NULL
);

-- One row per (folder, filter fingerprint): where the round stands. next_link while a round is under way,
-- delta_link once it finished; sweep while a restart must remove what the relisting did not see.
CREATE TABLE folder_sync_state (
    folder_id VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL,
    status VARCHAR NOT NULL,                -- 'in_round' or 'idle'
    next_link VARCHAR,
    delta_link VARCHAR,
    sweep BOOLEAN NOT NULL,
    pages BIGINT NOT NULL,
    round_started_at TIMESTAMPTZ NOT NULL,
    round_finished_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Messages seen during a sweeping round; the unmarked rows of the folder are removed when it ends.
CREATE TABLE sweep_marks (
    folder_id VARCHAR NOT NULL,
    message_id VARCHAR NOT NULL
);

-- Deleted through Mailroom: later syncs leave these out until a resync lifts them.
CREATE TABLE tombstones (
    message_id VARCHAR NOT NULL,
    attachment_id VARCHAR NOT NULL,         -- '' for the email itself
    file_id BIGINT NOT NULL,
    record_kept BOOLEAN NOT NULL,
    request_id VARCHAR,
    deleted_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE sync_runs (
    run_id BIGINT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,                -- 'running', 'succeeded', 'failed'
    trigger VARCHAR,
    request_id VARCHAR,
    orchestrator_run_id VARCHAR,            -- the Dagster run id, when Dagster started it
    plan VARCHAR,                           -- the filter plan's explain()
    folders VARCHAR[],
    seen BIGINT NOT NULL DEFAULT 0,
    matched BIGINT NOT NULL DEFAULT 0,
    fetched BIGINT NOT NULL DEFAULT 0,
    inserted BIGINT NOT NULL DEFAULT 0,
    updated BIGINT NOT NULL DEFAULT 0,
    moved BIGINT NOT NULL DEFAULT 0,
    unchanged BIGINT NOT NULL DEFAULT 0,
    deleted BIGINT NOT NULL DEFAULT 0,
    skipped VARCHAR NOT NULL DEFAULT '{}',  -- JSON object: reason -> count
    requests BIGINT NOT NULL DEFAULT 0,
    throttled_waits BIGINT NOT NULL DEFAULT 0,
    throttled_seconds DOUBLE NOT NULL DEFAULT 0,
    details VARCHAR NOT NULL DEFAULT '{}',  -- JSON object: the body strategy and why, and other notes
    error VARCHAR
);

-- Emails and attachments as Carbon's files (/user_files_v2): one shape for listing, filtering and ordering.
CREATE VIEW files AS
SELECT
    e.file_id, 'email' AS kind, NULL::BIGINT AS parent_file_id, e.message_id, NULL::VARCHAR AS attachment_id,
    e.subject AS name, 'message/rfc822' AS content_type, e.web_link AS external_url, e.sync_status,
    e.sync_error, e.size_bytes AS file_size, e.request_id, e.data_source_id, e.folder_id, e.folder_path,
    e.received_at, e.sent_at AS source_created_at, e.first_seen_at AS created_at,
    e.last_synced_at AS updated_at, e.last_synced_at AS last_sync, e.removed_at IS NOT NULL AS removed,
    e.file_contents_deleted
FROM emails e
UNION ALL
SELECT
    a.file_id, 'attachment', e.file_id, a.message_id, a.attachment_id, a.name, a.content_type, e.web_link,
    e.sync_status, e.sync_error, a.size, e.request_id, e.data_source_id, e.folder_id, e.folder_path,
    e.received_at, e.sent_at, a.first_seen_at, a.last_synced_at, a.last_synced_at,
    e.removed_at IS NOT NULL, a.content_state = 'deleted'
FROM attachments a JOIN emails e ON e.message_id = a.message_id;
