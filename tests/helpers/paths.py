"""Where the tests find the project and the offline data; importing it makes the tests offline.

Imported first by `helpers` (and so by conftest.py), before anything imports huggingface_hub,
which reads HF_HUB_OFFLINE once when it is imported.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("HF_SPAM_SHARED_DATA", ROOT.parent / "shared" / "data"))
SMS_FILE = Path(os.environ.get("HF_SPAM_SMS_FILE", SHARED_DATA / "SMSSpamCollection"))
GPT2_BPE = Path(os.environ.get("HF_SPAM_GPT2_BPE_DIR", SHARED_DATA / "gpt2-bpe"))
# tiktoken's cache names each file by the sha1 of its download URL.
TIKTOKEN_GPT2_FILES = {
    "encoder.json": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
    "vocab.bpe": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
}


def offline_tiktoken_cache() -> None:
    """Point tiktoken at a cache built from the shared GPT-2 BPE files, so it never downloads.

    The shared `tiktoken-cache/` folder cannot be relied on (its links arrive as plain files), so
    the cache is laid out here from `gpt2-bpe/` unless TIKTOKEN_CACHE_DIR is already set.
    """
    if "TIKTOKEN_CACHE_DIR" in os.environ or not GPT2_BPE.is_dir():
        return
    cache = Path(tempfile.gettempdir()) / "hf_spam-tiktoken-cache"
    cache.mkdir(exist_ok=True)
    for name, url in TIKTOKEN_GPT2_FILES.items():
        link = cache / hashlib.sha1(url.encode()).hexdigest()
        if not link.exists():
            link.symlink_to(GPT2_BPE / name)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)


offline_tiktoken_cache()
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
