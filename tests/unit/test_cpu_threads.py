"""EDITBOT_THREADS: the editor's CPU threads, set where the editor is built."""

import torch

from bot.bootstrap import build_editor
from core.config import Settings


def test_threads_setting_sets_torch_threads_and_zero_keeps_torch_default(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv("EDITBOT_MODEL", "tiny")
    monkeypatch.setenv("EDITBOT_DEVICE", "cpu")
    try:
        torch.set_num_threads(2)
        monkeypatch.setenv("EDITBOT_THREADS", "0")
        build_editor(Settings())
        assert torch.get_num_threads() == 2
        monkeypatch.setenv("EDITBOT_THREADS", "1")
        build_editor(Settings())
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
