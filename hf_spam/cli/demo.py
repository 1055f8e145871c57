"""`hf-spam demo`: a Gradio app for a trained model folder or Hub repo.

    hf-spam demo --model runs/spam
    hf-spam demo --model alice/gpt2-sms-spam --host 0.0.0.0 --port 8080   # --share: public link

The model is loaded (and every problem reported as one line) before any server starts.
"""

from __future__ import annotations

from ..errors import UsageError
from ..inference.load import InferenceArguments
from .arguments import parser_for


def run(argv: list[str]) -> int:
    from ..demo.app import DemoArguments, check_host, launch, prepare_app

    parser = parser_for("demo", (DemoArguments, InferenceArguments), __doc__.split("\n")[0])
    args, inference_args = parser.parse(argv)
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: expected a port number between 1 and 65535")
    check_host(args.host)
    launch(prepare_app(args, inference_args), args)
    return 0
