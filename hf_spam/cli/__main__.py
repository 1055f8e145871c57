"""`python -m hf_spam.cli <command> [flags]`, the same as `hf-spam`."""

import sys

from . import main

sys.exit(main())
