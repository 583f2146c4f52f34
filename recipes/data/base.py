"""What every source returns, and the choices every source shares.

``Data`` holds a set's splits (``Split``: features and integer labels, or image file paths read
batch by batch, or ``records.Records`` streamed from files), what a model needs to know of them,
and where they live (``choose_medium``: in memory or streamed, and why, printed at the start of a
run and written to ``summary.json``). The memory budget defaults to a quarter of this machine's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
import time
from typing import ClassVar

import numpy as np

from modelzoo.validation import UserError


class DataError(UserError):
    """A data set that cannot be loaded: missing, empty, or without the label it needs."""


@dataclasses.dataclass
class Split:
    """One split: features (N, ...) and integer labels (N,). With ``files``, ``x`` holds image
    file paths, read and decoded batch by batch (a stream: the images are never all in memory)."""

    x: np.ndarray
    y: np.ndarray
    files: bool = False
    streamed: ClassVar[bool] = False  # read from record files: ``records.Records``

    def take(self, rows) -> Split:
        return dataclasses.replace(self, x=self.x[rows], y=np.asarray(self.y)[rows])

    def __len__(self) -> int:
        return len(self.y)


IN_MEMORY = {"medium": "memory", "why": "this source is always read into memory"}


@dataclasses.dataclass
class Data:
    """A loaded data set: splits in memory, and what a model needs to know about them."""

    name: str
    kind: str  # "image", "tabular" or "text"
    train: Split
    val: Split
    test: Split
    num_classes: int
    class_names: list[str]
    flip_ok: bool = False  # a horizontal flip keeps the label (not for digits)
    encoded_shape: tuple | None = None  # images kept encoded or streamed: (h, w, c), None where sizes vary
    vocabulary: list | None = None  # text, once tokenized: the WordPiece vocabulary
    skipped: list | None = None  # image files left out because they do not decode (bad_images: skip)
    # held in memory or streamed, and why (``choose_medium``): printed at the start, in summary.json
    medium: dict = dataclasses.field(default_factory=lambda: dict(IN_MEMORY))

    @property
    def feature_shape(self) -> tuple:
        return self.encoded_shape or tuple(self.train.x.shape[1:])


def stratified_split(x, y, val_fraction, test_fraction, seed, test=None):
    """Stratified, seeded train/val(/test) split."""
    from sklearn.model_selection import train_test_split

    if test is None:
        x, xt, y, yt = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
        test = Split(xt, yt)
    xtr, xv, ytr, yv = train_test_split(x, y, test_size=val_fraction, random_state=seed, stratify=y)
    return Split(xtr, ytr), Split(xv, yv), test


def standardize(train, val, test):
    """Scale features by the training split's mean and spread (never the test split's)."""
    mean, std = train.x.mean(axis=0), train.x.std(axis=0) + 1e-7
    return tuple(Split(((s.x - mean) / std).astype("float32"), s.y) for s in (train, val, test))


def memory_budget(gigabytes: float | None = None) -> int:
    """Bytes a data set may take in memory: ``gigabytes``, or a quarter of this machine's memory."""
    if gigabytes is not None:
        return int(gigabytes * 2**30)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4


def choose_medium(streaming, size: int, memory_budget_gb, what: str) -> dict:
    """Hold a set of ``size`` bytes (``what`` says how they were estimated) in memory or stream
    it, by ``streaming`` (true, false or auto: stream when larger than the budget); the choice
    and its reason, as the run reports them."""
    budget = memory_budget(memory_budget_gb)
    gib = {"size_gib": round(size / 2**30, 4), "budget_gib": round(budget / 2**30, 4)}
    if streaming in (True, False):
        medium = "streamed" if streaming else "memory"
        return {"medium": medium, "why": f"streaming: {str(streaming).lower()}", **gib}
    stream = size > budget
    verdict = "over" if stream else "within"
    why = (
        f"streaming: auto; {what} {gib['size_gib']:g} GiB, {verdict} the budget of {gib['budget_gib']:g} GiB"
    )
    return {"medium": "streamed" if stream else "memory", "why": why, **gib}


def medium_line(medium: dict) -> str:
    """The run's first line about its data: where it is held and why."""
    where = "streamed from its files" if medium["medium"] == "streamed" else "held in memory"
    return f"data: {where} ({medium['why']})"


def check_fits_in_memory(name, size_bytes):
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if size_bytes > memory // 2:
        raise DataError(
            f"TFDS data set {name!r} is {size_bytes / 2**30:.0f} GiB, more than half of this machine's "
            f"{memory / 2**30:.0f} GiB, and streaming is false; set streaming: auto (or true) to stream its files."
        )


class Progress:
    """Progress of work that takes a while (listing a million files, writing TFRecords): on a
    terminal a bar redrawn in place, otherwise a line every ``EVERY`` seconds; nothing at all for
    work that is quick (the first output comes after ``EVERY`` seconds either way). Use it in a
    ``with`` block, so that a bar ends its line."""

    EVERY = 5.0

    def __init__(self, what: str, total: int, unit: str, stream=None):
        self.what, self.total, self.unit = what, total, unit
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.start = self.last = time.monotonic()
        self.drawn = False

    def update(self, done: int, detail: str = "") -> None:
        now = time.monotonic()
        if now - self.start < self.EVERY:
            return
        text = f"{self.what}: {done:,}/{self.total:,} {self.unit}" + (f", {detail}" if detail else "")
        if self.tty and (now - self.last >= 0.2 or done >= self.total or not self.drawn):
            bar = "#" * int(30 * done / max(1, self.total))
            self.stream.write(f"\r[{bar:<30}] {text}")
            self.stream.flush()
            self.drawn, self.last = True, now
        elif not self.tty and now - self.last >= self.EVERY:
            print(text, file=self.stream, flush=True)
            self.last = now

    @contextlib.contextmanager
    def ticking(self, status):
        """Keep the line alive through one long call that reports little itself: ``status()``
        gives (done, detail), shown with the seconds the call has taken, from a thread, until the
        call returns."""
        stop, begun = threading.Event(), time.monotonic()

        def beat():
            while not stop.wait(0.5):
                done, detail = status()
                self.update(done, f"{detail}{', ' if detail else ''}{time.monotonic() - begun:.0f} s")

        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
