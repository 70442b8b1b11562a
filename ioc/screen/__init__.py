"""The wall screen: a static page (ioc/static/screen) fed by /api/v1 and /ws (docs/api.md §8)."""

from ioc.screen.views import router

__all__ = ["router"]
