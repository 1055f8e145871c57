"""Files and folders on disk: read what a command is given, write its outputs aside and move them
into place, one writer at a time.

`reading.py` reads JSON, configs and checks a model folder; `atomic.py` writes outputs atomically
and names what failed; `locks.py` keeps a second writer off an output and cleans up after a dead one.
"""

from .atomic import (
    TEMPORARY_PREFIXES,
    WRITE_ERRNOS,
    OutputWriteError,
    atomic_file,
    atomic_output_dir,
    check_output_dir,
    full_disk_error,
    replace_dir,
    write_failure,
    write_file,
    write_json,
    write_text,
    writing,
)
from .locks import holds_lock, lock_file, output_lock, remove_leftovers
from .reading import (
    FINAL_STAGING,
    FINAL_STAGING_GLOB,
    LARGEST_CSV_FIELD,
    check_model_folder,
    csv_reader,
    json_object_line,
    read_config,
    read_json,
)

__all__ = [
    "FINAL_STAGING",
    "FINAL_STAGING_GLOB",
    "LARGEST_CSV_FIELD",
    "TEMPORARY_PREFIXES",
    "WRITE_ERRNOS",
    "OutputWriteError",
    "atomic_file",
    "atomic_output_dir",
    "check_model_folder",
    "check_output_dir",
    "csv_reader",
    "full_disk_error",
    "holds_lock",
    "json_object_line",
    "lock_file",
    "output_lock",
    "read_config",
    "read_json",
    "remove_leftovers",
    "replace_dir",
    "write_failure",
    "write_file",
    "write_json",
    "write_text",
    "writing",
]
