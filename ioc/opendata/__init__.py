"""Open data (docs/api.md, open data): the KPIs per unit and calendar month as CSV and JSON
for the province's open-data portal — aggregates only, no record and no person."""

from ioc.opendata.views import router

__all__ = ["router"]
