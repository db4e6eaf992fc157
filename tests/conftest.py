"""Suite-wide settings: a private cache folder and a fixed thread count.

Every test run gets its own ``$T2I_STAGES_HOME`` (datasets, oracles and pretrained matchers
are cached there once per session), so tests never read or write the user's cache.
"""

from __future__ import annotations

import os

import pytest
import torch


def pytest_configure(config):
    threads = os.environ.get("T2I_TEST_THREADS", "2")
    torch.set_num_threads(int(threads))
    # runs pick their threads from the cores left free (t2i_stages.hardware.choose_threads);
    # pin them so that two runs compared in one test never differ in their thread count
    os.environ.setdefault("T2I_STAGES_THREADS", threads)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    old = os.environ.get("T2I_STAGES_HOME")
    os.environ["T2I_STAGES_HOME"] = str(tmp_path_factory.mktemp("t2i-home"))
    yield
    if old is None:
        os.environ.pop("T2I_STAGES_HOME", None)
    else:
        os.environ["T2I_STAGES_HOME"] = old
