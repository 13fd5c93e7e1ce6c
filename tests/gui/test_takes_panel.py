"""The Takes panel: listing, audition in place, A/B, stepping, accept, discard, re-roll, copy."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from gui_helpers import generate_takes
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow
from test_generate_fakes import SR, Env, make_env, model_info, pad_bool_refcounts, seed_frequency

from sa3_studio.audio.player import Source
from sa3_studio.document.region_edits import add_region
from sa3_studio.ui.takes_panel import TakesPanel, timeline_overlays

WAIT_MS = 10_000


@pytest.fixture(autouse=True)
def _pad_bools() -> None:
    pad_bool_refcounts()


@pytest.fixture
def env(qtbot) -> Iterator[Env]:
    """A 20 s song with two regions and two takes each (seeds 100, 101)."""
    e = make_env(model=model_info())
    p = e.document.project
    p, r1 = add_region(p, "track-1", 4 * SR, 6 * SR)
    p, r2 = add_region(p, "track-1", 12 * SR, 13 * SR, prompt="snare fill")
    generate_takes(qtbot, e, p, [r1, r2], takes=2)
    yield e
    e.close()


def region_ids(env: Env) -> list[str]:
    return [r.id for r in sorted(env.document.project.regions, key=lambda r: r.start)]


def make_panel(qtbot, env: Env) -> TakesPanel:
    panel = TakesPanel(env.controller)
    qtbot.addWidget(panel)
    panel.resize(900, 300)
    return panel


def test_every_take_shows_seed_prompt_model_time_and_seam(qtbot, env):
    panel = make_panel(qtbot, env)
    tree = panel.tree
    assert tree.topLevelItemCount() == 2
    first, second = tree.topLevelItem(0), tree.topLevelItem(1)
    assert first.text(0).startswith("Region 1  0:04–0:06")
    assert "“snare fill”" in second.text(0)
    assert first.text(0).endswith("—   2 takes")
    takes = [first.child(i) for i in range(2)] + [second.child(i) for i in range(2)]
    assert [t.text(0) for t in takes] == ["Take 1", "Take 2", "Take 1", "Take 2"]
    assert [t.text(2) for t in takes] == ["100", "101", "100", "101"]
    assert [t.text(3) for t in takes] == ["drums", "drums", "snare fill", "snare fill"]
    assert {t.text(4) for t in takes} == {"small-music"}
    assert all(t.text(5).endswith(" s") for t in takes)
    assert all(t.text(1) == "pending" for t in takes)
    # A pure sine spliced into a chord is a bad seam: flagged in red with a warning sign.
    for t in takes:
        assert t.text(6).startswith("⚠ ")
        assert t.foreground(6).color().name() == "#f0736a"
        assert "above 4 is flagged" in t.toolTip(6)
        assert t.text(7).endswith(" dB")
    assert panel.title.text() == "Takes · 0:04–0:06"


def test_pending_takes_are_overlays_on_their_regions(qtbot, env):
    overlays = env.controller.overlays()
    _r1, _r2 = region_ids(env)
    assert [(o.start, o.end) for o in overlays] == [(4 * SR, 6 * SR), (12 * SR, 13 * SR)]
    assert all(o.label.startswith("Take 1 · seed 100") for o in overlays)
    assert overlays[0].source.frames == 2 * SR
    mins, maxs = overlays[0].source.envelope(0, 2 * SR, 10)
    assert mins.shape == (2, 10)
    assert float(maxs.max()) == pytest.approx(0.3, abs=0.01)
    items = timeline_overlays(overlays)
    assert items[0].label.endswith("⚠ seam")
    assert items[0].key == overlays[0].key


def test_space_plays_the_take_in_place_even_where_the_window_uses_space(qtbot, env):
    window = QMainWindow()
    qtbot.addWidget(window)
    played: list[int] = []
    play = QAction("Play", window)
    play.setShortcut(QKeySequence("Space"))
    play.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    play.triggered.connect(lambda: played.append(1))
    window.addAction(play)
    panel = TakesPanel(env.controller)
    window.setCentralWidget(panel)
    window.show()
    qtbot.waitExposed(window)
    panel.tree.setFocus()
    take_id = panel.current_take_id()
    qtbot.keyClick(panel.tree, Qt.Key.Key_Space)
    assert played == []
    assert env.controller.auditioning == take_id
    assert env.transport.is_playing
    player = env.transport.player
    assert player.has_take
    assert player.source is Source.TAKE
    # Playback starts two seconds before the region (pre-roll).
    assert player.position == 2 * SR
    assert panel.play_button.text() == "■ Stop"
    assert any(o.active for o in env.controller.overlays())
    assert panel.tree.currentItem().text(1) == "▶ playing"
    # Space again stops.
    qtbot.keyClick(panel.tree, Qt.Key.Key_Space)
    assert env.controller.auditioning == ""
    assert not env.transport.is_playing


def test_a_switches_between_original_and_take_while_playing(qtbot, env):
    panel = make_panel(qtbot, env)
    panel.tree.setFocus()
    panel.audition()
    assert env.transport.player.source is Source.TAKE
    with qtbot.waitSignal(env.controller.ab_changed, timeout=WAIT_MS) as ab:
        qtbot.keyClick(panel.tree, Qt.Key.Key_A)
    assert ab.args == [False]
    assert env.transport.player.source is Source.ORIGINAL
    assert not panel.ab_button.isChecked()
    qtbot.keyClick(panel.tree, Qt.Key.Key_A)
    assert env.transport.player.source is Source.TAKE
    assert panel.ab_button.isChecked()


def test_brackets_step_through_takes_and_the_audition_follows(qtbot, env):
    panel = make_panel(qtbot, env)
    r1, _ = region_ids(env)
    takes = env.document.project.takes_for(r1)
    assert panel.current_take_id() == takes[0].id
    panel.audition()
    qtbot.keyClick(panel.tree, Qt.Key.Key_BracketRight)
    assert panel.current_take_id() == takes[1].id
    assert env.controller.current_take(r1) == takes[1].id
    assert env.controller.auditioning == takes[1].id
    # The player now holds take 2's audio (its seed's pitch).
    np.testing.assert_array_equal(
        env.controller.overlays()[0].source.samples(0, 10)[0], takes[1].audio.samples[0, :10]
    )
    qtbot.keyClick(panel.tree, Qt.Key.Key_BracketLeft)
    assert panel.current_take_id() == takes[0].id
    assert env.controller.auditioning == takes[0].id


def test_return_accepts_an_undoable_splice_that_leaves_the_rest_untouched(qtbot, env):
    panel = make_panel(qtbot, env)
    r1, _ = region_ids(env)
    before = env.document.project.tracks[0].read(0, env.document.project.frames)
    take = env.document.project.takes_for(r1)[1]
    panel.select_take(take.id)
    qtbot.keyClick(panel.tree, Qt.Key.Key_Return)
    p = env.document.project
    assert p.region(r1).accepted_take_id == take.id
    assert env.document.undo_text() == "Undo Accept take 2 at 0:04–0:06"
    after = p.tracks[0].read(0, p.frames)
    np.testing.assert_array_equal(after[:, : 4 * SR], before[:, : 4 * SR])
    np.testing.assert_array_equal(after[:, 6 * SR :], before[:, 6 * SR :])
    fade = round(0.025 * SR)
    np.testing.assert_array_equal(
        after[:, 4 * SR + fade : 6 * SR - fade], take.audio.samples[:, fade:-fade]
    )
    item = panel.tree.currentItem()
    assert item.text(1) == "✓ accepted"
    assert not panel.accept_button.isEnabled()
    assert all(o.key != take.id for o in env.controller.overlays())
    env.document.undo()
    np.testing.assert_array_equal(env.document.project.tracks[0].read(0, p.frames), before)
    assert env.document.project.region(r1).accepted_take_id is None
    assert len(env.document.project.takes) == 4  # the takes survive the undo


def test_accept_with_loudness_match_applies_the_measured_gain(qtbot, env):
    panel = make_panel(qtbot, env)
    r1, _ = region_ids(env)
    take = env.document.project.takes_for(r1)[0]
    gain_db = take.provenance.loudness.gain_db
    assert gain_db != 0.0
    panel.match_loudness.setChecked(True)
    panel.accept()
    middle = env.document.project.tracks[0].read(5 * SR, 5 * SR + 100)
    expected = take.audio.samples[:, SR : SR + 100].astype(np.float64) * 10 ** (gain_db / 20)
    np.testing.assert_allclose(middle, expected, rtol=1e-6, atol=1e-7)


def test_delete_discards_a_take_undoably(qtbot, env):
    panel = make_panel(qtbot, env)
    r1, _ = region_ids(env)
    take = env.document.project.takes_for(r1)[0]
    panel.select_take(take.id)
    panel.tree.setFocus()
    qtbot.keyClick(panel.tree, Qt.Key.Key_Delete)
    assert take.id not in {t.id for t in env.document.project.takes}
    assert env.document.undo_text() == "Undo Discard Take 1"
    assert take.id not in panel.take_ids()
    env.document.undo()
    assert take.id in panel.take_ids()


def test_r_rerolls_with_the_same_settings_and_a_new_seed(qtbot, env):
    panel = make_panel(qtbot, env)
    _, r2 = region_ids(env)
    take = env.document.project.takes_for(r2)[1]
    panel.select_take(take.id)
    with qtbot.waitSignal(env.controller.takes_added, timeout=WAIT_MS) as added:
        qtbot.keyClick(panel.tree, Qt.Key.Key_R)
        assert panel.tree.topLevelItem(1).text(0).endswith("2 takes · generating…")
    (new_id,) = added.args[1]
    new = env.document.project.take(new_id)
    assert new.region_id == r2
    assert new.number == 3
    assert new.parent_take_id == take.id
    assert new.prompt == take.prompt
    assert new.settings.steps == take.settings.steps
    assert new.seed != take.seed
    # The new take really is the fake's output for its seed.
    t = (np.arange(10) + 12 * SR - new.provenance.window_start) / SR
    expected = 0.3 * np.sin(2 * np.pi * seed_frequency(new.seed) * t)
    np.testing.assert_allclose(new.audio.samples[0, :10], expected, atol=1e-4)


def test_copy_settings_sends_the_takes_settings_to_the_panel(qtbot, env):
    panel = make_panel(qtbot, env)
    _, r2 = region_ids(env)
    take = env.document.project.takes_for(r2)[1]
    panel.select_take(take.id)
    with qtbot.waitSignal(panel.copy_settings, timeout=WAIT_MS) as copied:
        panel.copy_button.click()
    options = copied.args[0]
    assert (options.prompt, options.seed, options.prefix) == ("snare fill", 101, "Music")


def test_the_region_prompt_is_edited_here(qtbot, env):
    panel = make_panel(qtbot, env)
    r1, _ = region_ids(env)
    panel.select_take(env.document.project.takes_for(r1)[0].id)
    panel.region_prompt.setText("kick and hats")
    panel.region_prompt.editingFinished.emit()
    assert env.document.project.region(r1).prompt == "kick and hats"
    assert env.document.undo_text() == "Undo Edit Prompt"


def test_only_selected_regions_are_listed_or_all_with_takes(qtbot, env):
    panel = make_panel(qtbot, env)
    _r1, r2 = region_ids(env)
    env.session.set_selected_regions([r2])
    assert panel.tree.topLevelItemCount() == 1
    assert panel.current_region_id() == r2
    env.session.set_selected_regions([])
    assert panel.tree.topLevelItemCount() == 2
