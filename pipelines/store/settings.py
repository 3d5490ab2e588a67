"""Where the stores live, from the environment (MAILROOM_DATA_DIR, _CONTROL_DB, _SECRET_KEY)."""

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipelines.store._duck import DEFAULT_LOCK_TIMEOUT
from pipelines.store._paths import mail_store_path
from pipelines.store.control import ControlStore
from pipelines.store.mail import MailStore, delete_mail_store


class StoreSettings(BaseSettings):
    """The data directory (mail stores under `mail/`), the control store file, and the secret key."""

    model_config = SettingsConfigDict(env_prefix="MAILROOM_", extra="ignore")

    data_dir: Path = Path("data")
    control_db: Path | None = None  # default: <data_dir>/control.sqlite3
    secret_key: SecretStr | None = None
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT

    @property
    def control_path(self) -> Path:
        return self.control_db or self.data_dir / "control.sqlite3"

    def mail_store_path(self, customer_id: str) -> Path:
        return mail_store_path(self.data_dir, customer_id)

    def mail_store(self, customer_id: str, *, read_only: bool = False) -> MailStore:
        """The customer's mail store: read-only for the API, read-write for sync runs."""
        return MailStore(
            self.mail_store_path(customer_id), read_only=read_only, lock_timeout=self.lock_timeout
        )

    def delete_mail_store(self, customer_id: str) -> bool:
        """Delete the customer's mail store file and what derives from it."""
        return delete_mail_store(self.mail_store_path(customer_id), lock_timeout=self.lock_timeout)

    def control_store(self) -> ControlStore:
        key = self.secret_key.get_secret_value() if self.secret_key is not None else None
        return ControlStore(self.control_path, secret_key=key)
