"""Writing files so that an interruption never leaves half of one (torch only, no detectron2:
used by dcn_det.onnx and dcn_det.engine)."""
import os
import tempfile
from typing import Callable


def replace_atomically(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` to create a temporary file next to ``path``, flush it to disk and
    rename it to ``path``: readers (or a run resumed after a crash) see the old file or the
    new one, never a part. On failure the temporary file is removed and ``path`` untouched."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{os.path.basename(path)}-", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
