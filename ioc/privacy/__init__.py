"""Citizens' personal data (Decree 13/2023/NĐ-CP): masking for every output, the access log
of unmasked reads, the retention purge, and secrets kept out of the logs. See
docs/security.md for who sees what and why.

Other rooms use the masking functions and `log_access`; the app composes `router`,
`build_services(ctx)` and `register_cli`."""

from ioc.privacy import tables as _tables  # noqa: F401  (puts the room's tables on ioc.db.metadata)
from ioc.privacy.cli import register_cli
from ioc.privacy.loops import PrivacyPurge, build_services
from ioc.privacy.masking import (
    PERSONAL_FIELDS,
    mask_email,
    mask_free_text,
    mask_name,
    mask_phone,
    mask_record,
    mask_value,
)
from ioc.privacy.redact import install as install_log_redaction
from ioc.privacy.redact import redact as redact_secrets
from ioc.privacy.service import log_access
from ioc.privacy.views import router

__all__ = [
    "PERSONAL_FIELDS",
    "PrivacyPurge",
    "build_services",
    "install_log_redaction",
    "log_access",
    "mask_email",
    "mask_free_text",
    "mask_name",
    "mask_phone",
    "mask_record",
    "mask_value",
    "redact_secrets",
    "register_cli",
    "router",
]
