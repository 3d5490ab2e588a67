"""Mailroom's Dagster code location: customer partitions, resources, assets, checks, jobs, schedules, sensors.

`pipelines.definitions.defs` assembles them; the names here are what other code (the CLI, tests) may use.
"""

from pipelines.defs._errors import BadRequest, DefsError, LaunchError
from pipelines.defs._tags import run_tags
from pipelines.defs.assets import email_search_index, outlook_emails
from pipelines.defs.checks import outlook_emails_fresh, outlook_emails_have_bodies, outlook_emails_ids_unique
from pipelines.defs.config import DeleteCustomerConfig, DeleteEmailsConfig, ResyncConfig, SyncConfig
from pipelines.defs.jobs import (
    check_outlook_freshness_job,
    delete_customer_job,
    delete_emails_job,
    resync_emails_job,
    sync_outlook_job,
)
from pipelines.defs.partitions import (
    add_customer_partition,
    customer_partitions,
    customers,
    remove_customer_partition,
)
from pipelines.defs.resources import MailroomStores, OutlookGraph, resources_from_environment
from pipelines.defs.schedules import check_outlook_freshness_schedule, outlook_auto_sync_schedule
from pipelines.defs.sensors import api_requests_sensor

__all__ = [
    "BadRequest",
    "DefsError",
    "DeleteCustomerConfig",
    "DeleteEmailsConfig",
    "LaunchError",
    "MailroomStores",
    "OutlookGraph",
    "ResyncConfig",
    "SyncConfig",
    "add_customer_partition",
    "api_requests_sensor",
    "check_outlook_freshness_job",
    "check_outlook_freshness_schedule",
    "customer_partitions",
    "customers",
    "delete_customer_job",
    "delete_emails_job",
    "email_search_index",
    "outlook_auto_sync_schedule",
    "outlook_emails",
    "outlook_emails_fresh",
    "outlook_emails_have_bodies",
    "outlook_emails_ids_unique",
    "remove_customer_partition",
    "resources_from_environment",
    "resync_emails_job",
    "run_tags",
    "sync_outlook_job",
]
