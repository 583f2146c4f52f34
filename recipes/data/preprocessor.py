"""The preprocessor a run saves: everything between a raw example and its model's input.

A run writes it once into its folder (``preprocessor.json``, and ``vocab.txt`` for text), and
every tool that feeds the model reads it back instead of rebuilding it from the config: the
input size and channels, the evaluation crop and resize, the normalisation, the labels' names,
and for text the WordPiece vocabulary, sequence length and [CLS]/[SEP] framing (keras-hub's
preprocessors and timm's ``pretrained_cfg`` keep the same facts beside the weights).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from recipes.data.base import Data, DataError
from recipes.data.folder import IMAGE_EXTENSIONS, decode
from recipes.data.preprocess import Preprocess, features, prepare
from recipes.data.text import BERT_INPUTS, bert_inputs, read_vocabulary, text_encoder

FILE = "preprocessor.json"
VOCABULARY = "vocab.txt"
TUPLES = ("image_size", "scale_range", "mean", "std", "bert_inputs")  # Preprocess's tuples (JSON lists)


def model_input_shape(data: Data, pre: Preprocess) -> tuple:
    """What the model takes of ``data`` prepared by ``pre``: images at ``pre``'s size, else the
    data's own feature shape (token ids, table rows)."""
    if data.kind == "image":
        return (*pre.image_size, data.feature_shape[-1])
    return tuple(data.feature_shape)


@dataclasses.dataclass(frozen=True)
class Preprocessor:
    """What a run does to an example: ``image`` is the pipeline's per-example work (evaluation
    uses its centre crop and normalisation, never its augmentation)."""

    kind: str  # "image", "tabular" or "text"
    input_shape: tuple  # the model's input: (h, w, c), (features,) or (sequence_length,)
    class_names: tuple
    image: Preprocess = Preprocess()
    vocabulary: tuple | None = None  # text: saved as vocab.txt beside the JSON

    @classmethod
    def of(cls, data: Data, pre: Preprocess) -> Preprocessor:
        vocabulary = tuple(data.vocabulary) if data.vocabulary else None
        return cls(data.kind, model_input_shape(data, pre), tuple(data.class_names), pre, vocabulary)

    def save(self, run_dir) -> None:
        fields = dataclasses.asdict(self)
        fields.pop("vocabulary")
        (Path(run_dir) / FILE).write_text(json.dumps(fields, indent=1) + "\n")
        if self.vocabulary:
            (Path(run_dir) / VOCABULARY).write_text("\n".join(self.vocabulary) + "\n")

    @classmethod
    def load(cls, run_dir) -> Preprocessor:
        fields = json.loads((Path(run_dir) / FILE).read_text())
        image = fields.pop("image")
        if isinstance(image.get("bert_inputs"), bool):  # a run folder written before the input names
            image["bert_inputs"] = BERT_INPUTS if image["bert_inputs"] else ()
        image = {k: tuple(v) if k in TUPLES and v is not None else v for k, v in image.items()}
        vocab = Path(run_dir) / VOCABULARY
        vocabulary = tuple(read_vocabulary(vocab)) if vocab.is_file() else None
        return cls(
            fields["kind"],
            tuple(fields["input_shape"]),
            tuple(fields["class_names"]),
            Preprocess(**image),
            vocabulary,
        )

    def evaluation(self) -> Preprocess:
        """The per-example work of evaluation: no random crop, no flip."""
        return dataclasses.replace(self.image, crop=False, flip=False)

    def example(self, x: np.ndarray) -> np.ndarray:
        """One decoded image (h, w, c in [0, 1]) or feature vector as the model takes it."""
        x = np.asarray(x, "float32")
        if self.kind == "image":
            x = x[..., None] if x.ndim == 2 else x
            pre = self.evaluation()
            x = features(prepare(x, pre, evaluation=True), pre).numpy()
        if tuple(x.shape) != self.input_shape:
            raise DataError(f"an example of shape {tuple(x.shape)}; the model takes {self.input_shape}.")
        return x

    def file(self, path) -> np.ndarray:
        """An image file or a ``.npy`` example, prepared as the run evaluates its test split."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"no such file: {str(path)!r}")
        if path.suffix.lower() == ".npy":
            return self.example(np.load(path, allow_pickle=False))
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            return self.example(decode(str(path)))
        raise DataError(f"{str(path)!r}: expected an image ({', '.join(IMAGE_EXTENSIONS)}) or a .npy file.")

    def texts(self, texts) -> np.ndarray | dict:
        """A batch of texts as the model's input: the run's vocabulary, length and framing."""
        if self.kind != "text":
            raise DataError(f"texts need a text model; this run was trained on {self.kind} data.")
        bert = self.image.bert_inputs  # BERT: [CLS] ... [SEP] framing, and its dict of inputs
        ids = text_encoder(list(self.vocabulary), self.input_shape[0], cls_sep=bool(bert))(list(texts))
        if bert:
            return {k: np.asarray(v) for k, v in bert_inputs(ids, bert).items()}
        return ids
