"""Citizens' personal data (Decree 13/2023/NĐ-CP): masking for every output (here), the
access log of unmasked reads and the retention purge (`ioc.privacy.service`, `.views`: they
need the database, so they are not imported here and masking stays importable from
anywhere). See docs/security.md for who sees what and why."""

from ioc.privacy.masking import (
    PERSONAL_FIELDS,
    mask_email,
    mask_name,
    mask_phone,
    mask_record,
    mask_value,
)

__all__ = [
    "PERSONAL_FIELDS",
    "mask_email",
    "mask_name",
    "mask_phone",
    "mask_record",
    "mask_value",
]
