"""The cyclic garbage collector, tuned for a long-running server process.

CPython frees almost every object by reference counting, the moment its last reference goes;
the cyclic collector exists for the rest (objects that refer to each other). It runs a *young*
collection each time the count of container objects allocated minus those freed passes a
threshold (700 by default), and every tenth and hundredth of those an older and a *full* one,
which visits every tracked object in the process. A server allocates thousands of containers
per request second (request state, headers, rows, audit captures) that refcounting frees anyway,
so with the defaults the collector ran hundreds of times a second and took about 2% of a
worker's CPU under small-object load (measured with ``perf``, steady DELETEs with the audit
trail on; 0.8% with it off), most of it visiting objects that were about to be freed or that
live as long as the process: modules, functions, the application's services.

:func:`tune_collector` is called once per server process, when the application is built:

- ``gc.freeze()`` moves every object alive at that point to a permanent generation that no
  collection visits again (the application's code and services live until the process ends);
- the young generation's threshold is raised to :data:`YOUNG_THRESHOLD`, so young collections
  run about ten times less often. What they find is garbage kept in cycles (an exception and
  its traceback, a request's closures), freed a few dozen requests later instead of a few.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "tune_collector"]

YOUNG_THRESHOLD = 7000
"""Net container allocations between young collections (CPython's default is 700)."""


def tune_collector() -> None:
    """Freeze what exists now and collect young objects less often (see the module doc)."""
    gc.collect()  # what start-up left as cyclic garbage is freed, not frozen
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
