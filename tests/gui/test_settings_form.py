"""A form built from a config class: the editors its settings call for, read back as the config."""

from dataclasses import dataclass

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.settings import setting
from diffusion_studio.gui.settings_form import SettingsForm


@dataclass(frozen=True)
class Example:
    count: int = setting(3, "Count", "how many", ge=1, le=9)
    rate: float = setting(0.5, "Rate", "a fraction", gt=0, lt=1, decimals=2, step=0.05)
    kind: str = setting("a", "Kind", "which one", choices={"a": "First", "b": "Second"}, choice_help={"b": "the other"})
    on: bool = setting(True, "Switched on", "a flag")
    levels: tuple[int, ...] = setting((1, 2), "Levels", "numbers")
    where: tuple[int, ...] | None = setting(None, "Where", "optional numbers")


@pytest.fixture
def form(qtbot):
    form = SettingsForm(Example)
    qtbot.addWidget(form)
    return form


def test_each_setting_gets_the_editor_its_metadata_asks_for(form):
    widgets = {name: editor.widget for name, editor in form.editors.items()}
    assert [type(w) for w in widgets.values()] == [QSpinBox, QDoubleSpinBox, QComboBox, QCheckBox, QLineEdit, QLineEdit]
    assert (widgets["count"].minimum(), widgets["count"].maximum()) == (1, 9)
    assert (widgets["rate"].minimum(), widgets["rate"].maximum()) == (0.01, 0.99)  # strict limits: one step inside
    assert widgets["rate"].singleStep() == 0.05 and widgets["count"].toolTip() == "how many"
    assert [widgets["kind"].itemText(i) for i in range(2)] == ["First", "Second"]
    assert widgets["kind"].itemData(1, Qt.ItemDataRole.ToolTipRole) == "the other"
    assert widgets["on"].text() == "Switched on" and form.labels["count"].text() == "Count"


def test_values_read_back_as_the_config(form):
    form.set_values(Example())
    assert Example(**form.values()) == Example()
    changed = Example(count=7, rate=0.25, kind="b", on=False, levels=(1, 2, 4), where=(8,))
    form.set_values(changed)
    assert Example(**form.values()) == changed
    form.set_values({"count": 2})  # a mapping sets only what it names
    assert Example(**form.values()) == Example(count=2, rate=0.25, kind="b", on=False, levels=(1, 2, 4), where=(8,))


def test_unreadable_text_is_refused_by_name(form):
    form["levels"].widget.setText("1, two")
    with pytest.raises(SettingError) as info:
        form.values()
    assert info.value.setting == "levels"
    with pytest.raises(SettingError):
        form.set_values({"kind": "c"})


def test_edited_fires_on_a_users_change_only(form, qtbot):
    seen = []
    form.edited.connect(seen.append)
    form.set_values(Example(count=5))
    assert seen == []
    form["count"].widget.setValue(6)
    qtbot.keyClicks(form["levels"].widget, ",8")
    qtbot.keyClick(form["levels"].widget, Qt.Key.Key_Return)
    assert seen == ["count", "levels"] and form.values()["levels"] == (1, 2, 8)


def test_a_form_starts_at_the_configs_defaults(qtbot):
    """A sampler whose option defaults to something other than a spin box's 0 (Euler ancestral's η = 1)
    shows that default, so the first run is the sampler as documented, not plain Euler."""
    from diffusion_studio.core.samplers import SAMPLERS

    for name, cls in SAMPLERS.items():
        form = SettingsForm(cls.Options)
        qtbot.addWidget(form)
        assert cls.Options(**form.values()) == cls.Options(), name
    assert SettingsForm(SAMPLERS["euler-a"].Options).values() == {"eta": 1.0}
