"""Try a trained classifier in the browser: a Gradio app over the model (needs the demo extra).

    python scripts/demo.py --model runs/spam                 # http://127.0.0.1:7860
    python scripts/demo.py --model alice/gpt2-sms-spam --host 0.0.0.0 --port 8080

`--help` lists every flag; see hf_spam/demo.py.
"""

from __future__ import annotations

import sys

from hf_spam.demo import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
