-- The mail store, version 4: files carry the tags of the syncs that listed them (Carbon's `tags`).
-- Two columns of the email row, both NULL while it has none, so a store without tags pays nothing: `tags`, the
-- canonical JSON object shown as UserFile.tags, and `tag_pairs`, one JSON [key, value] string per value, which
-- a tags filter tests with list_has_any (no join). An email's attachments show and match its tags.
ALTER TABLE emails ADD COLUMN tags VARCHAR;
ALTER TABLE emails ADD COLUMN tag_pairs VARCHAR[];

CREATE OR REPLACE VIEW files AS
SELECT
    e.file_id, 'email' AS kind, NULL::BIGINT AS parent_file_id, e.message_id, NULL::VARCHAR AS attachment_id,
    e.subject AS name, 'message/rfc822' AS content_type, e.web_link AS external_url, e.sync_status,
    e.sync_error, e.size_bytes AS file_size, e.request_id, e.data_source_id, e.folder_id, e.folder_path,
    e.received_at, e.sent_at AS source_created_at, e.first_seen_at AS created_at,
    e.last_synced_at AS updated_at, e.last_synced_at AS last_sync, e.removed_at IS NOT NULL AS removed,
    e.file_contents_deleted, e.tags, e.tag_pairs
FROM emails e
UNION ALL
SELECT
    a.file_id, 'attachment', e.file_id, a.message_id, a.attachment_id, a.name, a.content_type, e.web_link,
    e.sync_status, e.sync_error, a.size, e.request_id, e.data_source_id, e.folder_id, e.folder_path,
    e.received_at, e.sent_at, a.first_seen_at, a.last_synced_at, a.last_synced_at,
    e.removed_at IS NOT NULL, a.content_state = 'deleted', e.tags, e.tag_pairs
FROM attachments a JOIN emails e ON e.message_id = a.message_id;
