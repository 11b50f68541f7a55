"""numba set up at first use of a compiled-kernel module, never at import.

:func:`configure` chooses numba's threading layer (``THREADING_LAYER``, unless the user set
NUMBA_THREADING_LAYER or numba's threads have started already) and turns on the on-disk cache of
every compiled function of the module (``LANDAU_NUMBA_CACHE=0`` in the environment keeps it off).
It reads the environment and never writes it. Kernel modules declare their functions with
``cache=False``: enabling the cache here, not at decoration, means a missing cache directory is a
warning at first use instead of an error at import.
"""
from __future__ import annotations

import os
from types import ModuleType

import numba

#: numba's own pthread pool: its OpenMP layer, next to the OpenMP runtime torch bundles, cost
#: ~10 ms per kernel call here (measured at n = 50: 12 ms vs 0.1 ms). workqueue must not be
#: entered by two Python threads at once: the kernels keep the GIL.
THREADING_LAYER = "workqueue"


def dispatchers(module: ModuleType) -> list:
    """The module's compiled functions (kernels and the inlined helpers)."""
    return [v for v in vars(module).values() if isinstance(v, numba.core.dispatcher.Dispatcher)]


def configure(module: ModuleType) -> str | None:
    """Prepare ``module``'s kernels for their first call. Returns None, or why the cache could not
    be enabled (the kernels are then compiled in memory at every start). Idempotent."""
    from numba.core.caching import NullCache
    from numba.np.ufunc import parallel

    if "NUMBA_THREADING_LAYER" not in os.environ and not getattr(parallel, "_is_initialized", False):
        numba.config.THREADING_LAYER = THREADING_LAYER
    if os.environ.get("LANDAU_NUMBA_CACHE", "1") == "0":
        return None
    try:
        for kernel in dispatchers(module):
            kernel.enable_caching()
    except RuntimeError as err:          # numba: "cannot cache function ...: no locator available"
        for kernel in dispatchers(module):
            kernel._cache = NullCache()
        return str(err)
    return None
