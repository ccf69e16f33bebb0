"""Imported last by the warm worker: freeze what the preloaded modules allocated.

``gc.freeze()`` moves every object that exists now out of the collector's reach. A forked task
then does not walk (and so copy, page by page) the preloaded libraries' objects each time the
collector runs, which keeps forks cheap and their memory shared.
"""

from __future__ import annotations

import gc

gc.collect()
gc.freeze()
