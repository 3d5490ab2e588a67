"""The one Dagster entry point: `defs` (workspace.yaml, `-m pipelines.definitions` and the tests load it)."""

import warnings

import dagster as dg

from pipelines import defs as mailroom

# Dagster 1.13.27 copies every sensor through an internal constructor that always passes `owners`, and so
# warns that the (unused) beta parameter is in beta whenever the definitions resolve. Nothing of ours sets it.
warnings.filterwarnings(
    "ignore", message="Parameter `owners` of initializer `SensorDefinition.__init__`", category=dg.BetaWarning
)

defs = dg.Definitions(
    assets=[mailroom.outlook_emails, mailroom.email_search_index],
    asset_checks=[
        mailroom.outlook_emails_ids_unique,
        mailroom.outlook_emails_have_bodies,
        mailroom.outlook_emails_fresh,
    ],
    jobs=[
        mailroom.sync_outlook_job,
        mailroom.resync_emails_job,
        mailroom.delete_emails_job,
        mailroom.delete_customer_job,
        mailroom.check_outlook_freshness_job,
    ],
    schedules=[mailroom.outlook_auto_sync_schedule, mailroom.check_outlook_freshness_schedule],
    sensors=[mailroom.api_requests_sensor],
    resources=mailroom.resources_from_environment(),
)
