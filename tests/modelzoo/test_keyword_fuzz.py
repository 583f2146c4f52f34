"""Seeded fuzz of every builder keyword: each family's representative at its tiny config, every
keyword it takes given values of every type and edge (huge, negative, NaN, empty, nested, an
object). Each case is built or refused with ``UserError`` naming the keyword (or, for a size this
machine cannot hold, the weights' bytes); any other exception, or a build that does not finish in
20 s, is a crash and fails the test with its cases. Accepted builds allocate no weights: the test
stops them after the memory check, which runs on the built graph before allocation."""

import random
import signal

import keras
import pytest

import modelzoo
import modelzoo.registry
from modelzoo import validation
from modelzoo.registry import get_entry
from modelzoo.validation import UserError
from tests.modelzoo.test_all_models import REPRESENTATIVES

SEED = 0
POOL = [None, True, False, 0, 1, 3, -1, 10**12, 2.5, -0.5, float("nan"), float("inf"), "x", "", "avg"]
POOL += [[], [1], [2, 3], [[1]], ["a"], (), (1, 2, 3), {}, {"a": 1}, object(), 1e-9, 2**31]


class Accepted(Exception):
    """The build passed every check, the memory check included."""


class Hang(Exception):
    pass


def _too_slow(signum, frame):
    raise Hang


def outcome(name: str, keyword: str, value) -> str:
    entry = get_entry(name)
    config = {**entry.tiny_config, keyword: value}
    previous = signal.signal(signal.SIGALRM, _too_slow)
    signal.alarm(20)
    try:
        modelzoo.create_model(name, **config)
        return "built"  # only when no memory check ran (a caller's stateless scope)
    except Accepted:
        return "ok"
    except UserError as err:
        named = keyword in str(err) or "GiB of memory left" in str(err)
        return "clear" if named else f"UserError not naming {keyword}: {err}"
    except Hang:
        return "no answer in 20 s"
    except Exception as err:  # a crash
        return f"{type(err).__name__}: {str(err)[:200]}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def cases(rng: random.Random):
    for name in REPRESENTATIVES:
        for keyword in get_entry(name).keywords:
            for value in rng.sample(POOL, 3):
                yield name, keyword, value


def test_fuzzed_builder_keywords_build_or_give_one_clear_error(monkeypatch):
    checked = validation.check_fits_memory

    def check_then_stop(name, overrides, model):
        checked(name, overrides, model)
        raise Accepted

    monkeypatch.setattr(modelzoo.registry, "check_fits_memory", check_then_stop)  # create_model's
    results = [(case, outcome(*case)) for case in cases(random.Random(SEED))]
    keras.backend.clear_session()  # once: per case, its garbage collection was most of the time
    crashes = [(case, kind) for case, kind in results if kind not in ("ok", "clear")]
    assert not crashes, "\n".join(f"{n}({k}={v!r}): {kind}" for (n, k, v), kind in crashes[:30])
    assert len(results) >= 1_000 and sum(kind == "clear" for _, kind in results) > len(results) / 2


@pytest.mark.parametrize("keyword, value", [("num_layers", 10**12), ("num_layers", 1001)])
def test_a_depth_beyond_any_buildable_graph_is_refused_at_once(keyword, value):
    with pytest.raises(UserError, match=rf"num_layers must be <= {validation.MAX_DEPTH}"):
        modelzoo.create_model("albert", vocabulary_size=50, **{keyword: value})
