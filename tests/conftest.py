"""Suite-wide settings: a private cache folder and a fixed thread count.

Every test run gets its own ``$T2I_STAGES_HOME`` (datasets, oracles and pretrained matchers
are cached there once per session), so tests never read or write the user's cache.
"""

from __future__ import annotations

import os
import random

import pytest
import torch


def pytest_configure(config):
    # one thread per pytest-xdist worker (``make test`` runs one per core), two otherwise
    default = "1" if os.environ.get("PYTEST_XDIST_WORKER") else "2"
    threads = os.environ.get("T2I_TEST_THREADS", default)
    torch.set_num_threads(int(threads))
    # runs pick their threads from the cores left free (t2i_stages.hardware.choose_threads);
    # pin them so that two runs compared in one test never differ in their thread count. Set,
    # not defaulted: xdist workers inherit the controller's environment, with its two threads.
    os.environ["T2I_STAGES_THREADS"] = threads


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global RNG state, whatever ran before it (and on
    whichever worker, under pytest-xdist): a randomly initialised network is the same one."""
    random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    old = os.environ.get("T2I_STAGES_HOME")
    os.environ["T2I_STAGES_HOME"] = str(tmp_path_factory.mktemp("t2i-home"))
    yield
    if old is None:
        os.environ.pop("T2I_STAGES_HOME", None)
    else:
        os.environ["T2I_STAGES_HOME"] = old
