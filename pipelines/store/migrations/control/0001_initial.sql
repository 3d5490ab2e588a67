-- The control store, version 1 (SQLite in WAL mode): what the API records and Dagster acts on.
-- Times are ISO-8601 UTC text written by the store (so they sort and compare as text).
-- Secrets never rest in the clear: API keys and access tokens as SHA-256 hashes; webhook signing keys and
-- OAuth flows encrypted with MAILROOM_SECRET_KEY; token caches arrive sealed by pipelines.graph.

CREATE TABLE organizations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

-- Carbon's organization users: one per customer id an organization supplies.
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL,
    auto_sync_sources TEXT NOT NULL DEFAULT '[]',   -- JSON: a list of DataSourceType, or "ALL"
    auto_sync_interval_minutes INTEGER,             -- NULL: the default (24 h)
    default_folder TEXT,
    default_filter TEXT,
    max_files INTEGER,
    max_files_per_upload INTEGER,
    max_characters INTEGER,
    max_characters_per_file INTEGER,
    max_characters_per_upload INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT,
    UNIQUE (organization_id, customer_id)
);

-- Carbon's data sources: Outlook mailboxes a customer connected.
CREATE TABLE connections (
    id INTEGER PRIMARY KEY,
    customer_pk INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    source TEXT NOT NULL DEFAULT 'OUTLOOK',
    mailbox TEXT NOT NULL,
    auth_kind TEXT NOT NULL CHECK (auth_kind IN ('delegated', 'app')),
    tenant TEXT,
    token_cache BLOB,                               -- sealed (encrypted) by pipelines.graph; opaque here
    sync_status TEXT NOT NULL DEFAULT 'READY',
    sync_error TEXT,
    revoked INTEGER NOT NULL DEFAULT 0,
    last_sync_action TEXT NOT NULL DEFAULT 'ADD',
    enable_auto_sync INTEGER,
    last_synced_at TEXT,
    files_synced_at TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    tags TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (customer_pk, source, mailbox)
);

-- What the API asked for; the Dagster sensor claims them and runs them (run key: req-<id>).
CREATE TABLE requests (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL,
    customer_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('update_users', 'sync', 'resync', 'delete_files', 'delete_users')),
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'submitted', 'succeeded', 'failed')),
    reason TEXT,
    run_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    submitted_at TEXT,
    finished_at TEXT
);
CREATE INDEX requests_by_status ON requests (status, id);
CREATE INDEX requests_by_customer ON requests (organization_id, customer_id, id);

CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    signing_key BLOB NOT NULL,                      -- encrypted: Carbon signs with the key, so it must come back
    status TEXT NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'FLAGGED')),
    status_reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- The outbox and log of webhook deliveries: pending until delivered, or failed after the last retry.
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY,
    webhook_id INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    customer_id TEXT,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_status_code INTEGER,
    last_error TEXT,
    created_at TEXT NOT NULL,
    delivered_at TEXT
);
CREATE INDEX deliveries_due ON webhook_deliveries (status, next_attempt_at);

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,                           -- the first characters, to tell keys apart in listings
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);

-- Short-lived customer tokens (`authorization: Token …`).
CREATE TABLE access_tokens (
    id INTEGER PRIMARY KEY,
    customer_pk INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    access_hash TEXT NOT NULL UNIQUE,
    refresh_hash TEXT NOT NULL UNIQUE,
    expires_at TEXT NOT NULL,
    refresh_expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

-- The connect flow between /integrations/oauth_url and the callback; single use, short-lived.
CREATE TABLE oauth_states (
    state_hash TEXT PRIMARY KEY,
    customer_pk INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    flow BLOB NOT NULL,                             -- encrypted: MSAL's flow holds the PKCE code verifier
    payload TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    consumed_at TEXT
);

INSERT INTO organizations (id, name, created_at) VALUES (1, 'default', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
