"""Django admin for rooms: the live console of each room, trouble lists, and the overview.

Django's admin discovery imports this package; each module registers its own:
console.py (rooms and chat), quality.py (call-quality reports and the trouble
lists), overview.py (the overview page, routed by config/urls.py), charts.py
(the overview's chart geometry).
"""

from rooms.admin import console, quality
from rooms.admin.overview import overview_view

__all__ = ["console", "overview_view", "quality"]
