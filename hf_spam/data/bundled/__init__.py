"""Data shipped inside the package: the SMS Spam Collection and GPT-2's two BPE files.

With them the default data set (`--dataset sms_spam`) and GPT-2's tokenizer need no network;
only GPT-2's weights come from the Hub. README.md beside this file gives each file's licence,
citation, source and sha256 (LICENSE-gpt2: OpenAI's licence of the BPE files).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from ...errors import DataError
from ..downloads import file_sha256

BUNDLED_DIR = Path(__file__).resolve().parent
SMS_SPAM_FILENAME = "SMSSpamCollection"
#: GPT-2's BPE under OpenAI's names (transformers calls them vocab.json and merges.txt).
GPT2_VOCAB_FILENAME = "encoder.json"
GPT2_MERGES_FILENAME = "vocab.bpe"
#: The published sha256 of each file (README.md); a copy that differs is refused.
BUNDLED_SHA256 = {
    SMS_SPAM_FILENAME: "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d",
    GPT2_VOCAB_FILENAME: "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    GPT2_MERGES_FILENAME: "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}
SMS_SPAM_SHA256 = BUNDLED_SHA256[SMS_SPAM_FILENAME]


@cache
def bundled_file(name: str) -> Path:
    """The path of the bundled file `name`, its sha256 checked once per process (2 MB in all).

    A missing or altered file raises `DataError` naming it, before anything trains on it.
    """
    if name not in BUNDLED_SHA256:
        raise KeyError(f"{name!r} is not a bundled file ({', '.join(BUNDLED_SHA256)})")
    path = BUNDLED_DIR / name
    if not path.is_file():
        raise DataError(f"{path}: bundled file missing; reinstall hf_spam")
    digest, expected = file_sha256(path), BUNDLED_SHA256[name]
    if digest != expected:
        raise DataError(
            f"{path}: sha256 {digest}, expected {expected}: the bundled {name} is damaged; "
            "reinstall hf_spam"
        )
    return path


__all__ = [
    "BUNDLED_DIR",
    "BUNDLED_SHA256",
    "GPT2_MERGES_FILENAME",
    "GPT2_VOCAB_FILENAME",
    "SMS_SPAM_FILENAME",
    "SMS_SPAM_SHA256",
    "bundled_file",
]
