"""LoRAs from the Generate panel: the rows, what reaches the model thread, and the takes."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from test_generate_fakes import (
    SR,
    Env,
    FakeFactory,
    FakePipeline,
    catalog,
    make_env,
    model_info,
    pad_bool_refcounts,
)

from sa3_studio.app.generation import apply_loras, loras_text
from sa3_studio.errors import GenerationError, WeightsError
from sa3_studio.ui.generate_panel import GeneratePanel
from sa3_studio.ui.takes_panel import TakesPanel

WAIT_MS = 10_000
MUSIC = model_info("small-music", "/m/small-music")


@dataclass
class FakeLora:
    handle: int
    path: Path
    strength: float


@dataclass
class LoraPipeline(FakePipeline):
    """The fake pipeline with the engine's LoRA methods; files named "bad*" are refused."""

    applied: list[FakeLora] = field(default_factory=list)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    next_handle: int = 0

    @property
    def loras(self) -> tuple[FakeLora, ...]:
        return tuple(self.applied)

    def add_lora(self, path: str, strength: float = 1.0) -> int:
        self.calls.append(("add", Path(path).name, strength))
        if Path(path).name.startswith("bad"):
            raise WeightsError(f"The LoRA {path} does not fit this model.")
        self.next_handle += 1
        self.applied.append(FakeLora(self.next_handle, Path(path), strength))
        return self.next_handle

    def remove_lora(self, handle: int) -> None:
        self.calls.append(("remove", handle))
        self.applied = [e for e in self.applied if e.handle != handle]

    def set_lora_strength(self, handle: int | None, strength: float) -> None:
        self.calls.append(("strength", handle, strength))
        for e in self.applied:
            if handle is None or e.handle == handle:
                e.strength = strength


@pytest.fixture(autouse=True)
def _pad_bools() -> None:
    pad_bool_refcounts()


def test_apply_loras_keeps_the_model_in_step_with_the_panel() -> None:
    pipe = LoraPipeline()
    apply_loras(pipe, [("/l/drums.safetensors", 0.8), ("/l/keys.ckpt", 0.5)])
    assert [(e.path.name, e.strength) for e in pipe.applied] == [
        ("drums.safetensors", 0.8),
        ("keys.ckpt", 0.5),
    ]
    # The same files in the same order: strengths only, nothing re-read.
    pipe.calls.clear()
    apply_loras(pipe, [("/l/drums.safetensors", 0.3), ("/l/keys.ckpt", 0.5)])
    assert [c[0] for c in pipe.calls] == ["strength", "strength"]
    assert pipe.applied[0].strength == 0.3
    # Another order (LoRAs do not all commute): everything is applied again, in order.
    apply_loras(pipe, [("/l/keys.ckpt", 1.0), ("/l/drums.safetensors", 0.3)])
    assert [e.path.name for e in pipe.applied] == ["keys.ckpt", "drums.safetensors"]
    # A file the model refuses leaves none applied, and the error goes on to the user.
    with pytest.raises(WeightsError, match="does not fit"):
        apply_loras(pipe, [("/l/drums.safetensors", 1.0), ("/l/bad.safetensors", 1.0)])
    assert pipe.applied == []
    apply_loras(pipe, [])
    assert pipe.applied == []
    # A model backend without LoRA support says so only when LoRAs are wanted.
    plain = FakePipeline()
    apply_loras(plain, [])
    with pytest.raises(GenerationError, match="cannot apply LoRAs"):
        apply_loras(plain, [("/l/drums.safetensors", 1.0)])
    assert loras_text([("/l/drums.safetensors", 0.8), ("/l/keys.ckpt", 1.0)]) == "drums 0.8, keys 1"


@pytest.fixture
def env() -> Iterator[Env]:
    e = make_env(FakeFactory(LoraPipeline()))
    yield e
    e.close()


def make_panel(qtbot, env: Env) -> GeneratePanel:
    panel = GeneratePanel(env.controller, catalog([MUSIC]), rng=random.Random(5))
    qtbot.addWidget(panel)
    panel.resize(340, 900)
    return panel


def test_lora_rows_reach_the_options(qtbot, env):
    panel = make_panel(qtbot, env)
    assert panel.options().loras == ()
    drums = panel.add_lora("/l/drums.safetensors")
    assert drums is not None
    assert drums.name.text() == "drums"
    assert drums.name.toolTip() == "/l/drums.safetensors"
    assert panel.add_lora("/l/drums.safetensors") is None  # not twice
    keys = panel.add_lora("/l/keys.ckpt", 0.5)
    assert keys is not None
    drums.strength.setValue(0.75)
    assert panel.options().loras == (("/l/drums.safetensors", 0.75), ("/l/keys.ckpt", 0.5))
    drums.remove.click()
    assert panel.options().loras == (("/l/keys.ckpt", 0.5),)
    assert [row.path for row in panel.lora_rows] == ["/l/keys.ckpt"]


def test_takes_are_made_with_the_loras_and_say_so(qtbot, env):
    panel = make_panel(qtbot, env)
    panel.add_lora("/l/drums.safetensors", 0.8)
    panel.prompt_edit.setPlainText("brushed drums")
    env.session.set_selection([(2 * SR, 3 * SR)])
    panel.update_preview()
    with qtbot.waitSignal(env.controller.takes_added, timeout=WAIT_MS):
        assert panel.generate() is not None
    pipe = env.pipeline
    assert isinstance(pipe, LoraPipeline)
    assert [(e.path.name, e.strength) for e in pipe.applied] == [("drums.safetensors", 0.8)]
    takes = list(env.document.project.takes)
    assert takes
    assert all(t.provenance.loras_text == "drums 0.8" for t in takes)
    takes_panel = TakesPanel(env.controller)
    qtbot.addWidget(takes_panel)
    takes_panel.refresh()
    texts = [
        takes_panel.tree.topLevelItem(i).child(j).text(4)
        for i in range(takes_panel.tree.topLevelItemCount())
        for j in range(takes_panel.tree.topLevelItem(i).childCount())
    ]
    assert texts
    assert all(t.endswith("+ drums 0.8") for t in texts)
