"""Reading the CIFAR batch files, which ARE Python pickles, without executing arbitrary code.

torchvision's CIFAR format stores each batch as a pickled dict of numpy arrays, lists and
strings. `pickle.load` would call any importable function the file names; this unpickler only
resolves the handful of numpy/codec functions that such a dict needs and refuses everything else.
"""

from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from prunebench.errors import PrunebenchError

_core = getattr(np, "_core", None) or np.core  # numpy 2 moved numpy.core to numpy._core

# (module, name) -> object, for every global a CIFAR batch file may reference: numpy arrays
# pickled by Python 2 (_reconstruct + dtype, the original files), by Python 3 with protocol 2
# (bytes via _codecs.encode) and with protocol 5 (_frombuffer).
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _core.multiarray._reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _core.numeric._frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _core.numeric._frombuffer,
    ("_codecs", "encode"): codecs.encode,
}


class _DataOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load '{module}.{name}': only numpy arrays and plain data are allowed"
            ) from None


def load_data_pickle(path: Path) -> Any:
    """Unpickle a data-only file (dicts, lists, str/bytes, numbers, numpy arrays).

    Strings are decoded as latin-1, as torchvision does for these Python 2 files.
    """
    try:
        with open(path, "rb") as handle:
            return _DataOnlyUnpickler(io.BufferedReader(handle), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise PrunebenchError(f"'{path}' is not a readable CIFAR batch file: {exc}") from None
