"""Operations: export and import of a deployment's configuration (`ioc export` / `ioc import`)."""

from ioc.ops.cli import register_cli
from ioc.ops.service import export_to, import_from
from ioc.ops.transfer import KINDS, Bundle, BundleError, Kind, dump, load, read_bundle, write_bundle

__all__ = [
    "KINDS",
    "Bundle",
    "BundleError",
    "Kind",
    "dump",
    "export_to",
    "import_from",
    "load",
    "read_bundle",
    "register_cli",
    "write_bundle",
]
