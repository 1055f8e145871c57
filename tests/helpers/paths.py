"""Where the tests find the project and its data; importing it makes the tests offline.

Imported first by `helpers` (and so by conftest.py), before anything imports huggingface_hub,
which reads HF_HUB_OFFLINE once when it is imported.

The data the tests read is the package's own (`hf_spam/data/bundled/`), so a fresh clone on a
machine without network runs every test. `../shared/data` beside the checkout, when there, is
only a second copy that the tests compare with the bundled one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Read without importing hf_spam (that would import huggingface_hub before the lines below).
BUNDLED = ROOT / "hf_spam" / "data" / "bundled"
SMS_FILE = BUNDLED / "SMSSpamCollection"
#: GPT-2's BPE files under OpenAI's names, `encoder.json` and `vocab.bpe`.
GPT2_BPE = BUNDLED
SHARED_DATA = Path(os.environ.get("HF_SPAM_SHARED_DATA", ROOT.parent / "shared" / "data"))
#: The shared copies of the bundled files, where the shared folder has them.
SHARED_COPIES = {
    "SMSSpamCollection": SHARED_DATA / "SMSSpamCollection",
    "encoder.json": SHARED_DATA / "gpt2-bpe" / "encoder.json",
    "vocab.bpe": SHARED_DATA / "gpt2-bpe" / "vocab.bpe",
}
# tiktoken's cache names each file by the sha1 of its download URL.
TIKTOKEN_GPT2_FILES = {
    "encoder.json": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
    "vocab.bpe": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
}


def tiktoken_cache(folder: Path) -> Path:
    """`folder` laid out as tiktoken's cache of GPT-2's files, copied from the bundled ones.

    tiktoken checks each cached file against its own sha256 of the download, so the encoding it
    builds from here is its own, independent of hf_spam's reading of the same files.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name, url in TIKTOKEN_GPT2_FILES.items():
        cached = folder / hashlib.sha1(url.encode()).hexdigest()
        if not cached.exists():
            shutil.copyfile(GPT2_BPE / name, cached)
    return folder


@contextlib.contextmanager
def tiktoken_cache_dir(folder: Path) -> Iterator[Path]:
    """TIKTOKEN_CACHE_DIR set to a GPT-2 cache in `folder` inside the block, as it was after."""
    before = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(tiktoken_cache(folder))
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = before


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
