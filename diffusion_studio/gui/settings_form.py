"""A form that builds itself from a config dataclass: one labelled editor per setting.

Each field's ``core.settings.Setting`` gives the row's label, the tooltip, the editor's range,
step and decimals, and a combo box's items; so the form, the CLI's flags and the validation
read the same description. Numbers commit on Enter, focus loss or an arrow click (no keyboard
tracking), so a half-typed value is never applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.settings import SettingField, setting_fields

LARGEST_INT = 2**31 - 1
LARGEST_FLOAT = 1e9
"""A spin box's top where the setting has no upper limit."""


class SettingEditor:
    """One setting's widget, read and written as the config's value."""

    def __init__(self, field: SettingField, widget: QWidget) -> None:
        self.field = field
        self.widget = widget
        widget.setToolTip(field.setting.help)

    def value(self) -> Any:
        raise NotImplementedError

    def set_value(self, value: Any) -> None:
        raise NotImplementedError

    def connect(self, slot) -> None:
        """Call ``slot()`` when the user commits a new value."""
        raise NotImplementedError


class NumberEditor(SettingEditor):
    """A spin box for an int or a float; its range is the setting's limits (gt/lt: one step inside)."""

    def __init__(self, field: SettingField) -> None:
        s = field.setting
        integer = field.kind is int
        box = QSpinBox() if integer else QDoubleSpinBox()
        if not integer:
            box.setDecimals(s.decimals if s.decimals is not None else 3)
        tick = 1 if integer else 10.0 ** -box.decimals()
        low = s.ge if s.ge is not None else (s.gt + tick if s.gt is not None else -(LARGEST_INT if integer else LARGEST_FLOAT))
        high = s.le if s.le is not None else (s.lt - tick if s.lt is not None else (LARGEST_INT if integer else LARGEST_FLOAT))
        box.setRange(int(low) if integer else low, int(high) if integer else high)
        if s.step is not None:
            box.setSingleStep(int(s.step) if integer else s.step)
        box.setKeyboardTracking(False)
        super().__init__(field, box)

    def value(self) -> int | float:
        return self.widget.value()

    def set_value(self, value: int | float | None) -> None:
        """Show ``value``; None (an optional setting's "automatic") keeps what is shown."""
        if value is not None:
            self.widget.setValue(value)

    def set_maximum(self, maximum: int | float) -> None:
        self.widget.setMaximum(maximum)

    def connect(self, slot) -> None:
        self.widget.valueChanged.connect(lambda _: slot())


class ChoiceEditor(SettingEditor):
    """A combo box of the setting's choices (value → label, with each choice's help as its tooltip)."""

    def __init__(self, field: SettingField) -> None:
        super().__init__(field, QComboBox())
        self.set_choices(field.setting.choices)

    def set_choices(self, choices: Mapping[str, str]) -> None:
        """Offer these values (e.g. only the devices this machine has), keeping the current one if it stays."""
        current = self.widget.currentData()
        helps = self.field.setting.choice_help or {}
        with QSignalBlocker(self.widget):
            self.widget.clear()
            for value, label in choices.items():
                self.widget.addItem(label, value)
                if value in helps:
                    self.widget.setItemData(self.widget.count() - 1, helps[value], Qt.ItemDataRole.ToolTipRole)
            self.widget.setCurrentIndex(max(self.widget.findData(current), 0))

    def value(self) -> str:
        return self.widget.currentData()

    def set_value(self, value: str) -> None:
        index = self.widget.findData(value)
        if index < 0:
            raise SettingError(self.field.name, f"'{value}' is not one of the choices here")
        self.widget.setCurrentIndex(index)

    def connect(self, slot) -> None:
        self.widget.currentIndexChanged.connect(lambda _: slot())


class FlagEditor(SettingEditor):
    """A check box that carries the setting's label."""

    def __init__(self, field: SettingField) -> None:
        super().__init__(field, QCheckBox(field.setting.label))

    def value(self) -> bool:
        return self.widget.isChecked()

    def set_value(self, value: bool | None) -> None:
        self.widget.setChecked(bool(value))

    def connect(self, slot) -> None:
        self.widget.toggled.connect(lambda _: slot())


class TextEditor(SettingEditor):
    """A line edit for text, or for whole numbers separated by commas (a tuple setting).

    An optional setting left empty is None (the placeholder says "automatic").
    """

    def __init__(self, field: SettingField) -> None:
        super().__init__(field, QLineEdit())
        if field.optional:
            self.widget.setPlaceholderText("automatic")

    def value(self) -> str | tuple[int, ...] | None:
        text = self.widget.text().strip()
        if not text and self.field.optional:
            return None
        if self.field.kind is not tuple:
            return text
        try:
            return tuple(int(part) for part in text.replace(" ", "").split(",") if part)
        except ValueError:
            raise SettingError(self.field.name, f"expected whole numbers separated by commas, got '{text}'") from None

    def set_value(self, value: str | tuple[int, ...] | None) -> None:
        if value is None:
            self.widget.clear()
        else:
            self.widget.setText(",".join(map(str, value)) if isinstance(value, tuple) else str(value))

    def connect(self, slot) -> None:
        self.widget.editingFinished.connect(slot)


def editor_for(field: SettingField) -> SettingEditor:
    """The editor a setting's type and metadata call for."""
    if field.setting.choices is not None:
        return ChoiceEditor(field)
    if field.kind is bool:
        return FlagEditor(field)
    if field.kind in (int, float):
        return NumberEditor(field)
    return TextEditor(field)


class SettingsForm(QWidget):
    """Editors for some settings of a config class, in a form (label: editor rows) or in one row.

    The editors start at the config's defaults. ``values()`` reads them as keyword arguments of
    the config; ``set_values`` fills them from a config without emitting ``edited``, which fires with the setting's name when
    the user commits a change.
    """

    edited = Signal(str)

    def __init__(self, config: type, names: Iterable[str] | None = None, *, inline: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        available = {f.name: f for f in setting_fields(config)}
        chosen = list(available) if names is None else list(names)
        unknown = [name for name in chosen if name not in available]
        if unknown:
            raise ValueError(f"{config.__name__} has no settings {', '.join(unknown)}")
        self.editors: dict[str, SettingEditor] = {name: editor_for(available[name]) for name in chosen}
        self.labels: dict[str, QLabel] = {}
        self.layout_ = layout = QHBoxLayout(self) if inline else QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for name, editor in self.editors.items():
            label = QLabel("" if isinstance(editor, FlagEditor) else editor.field.setting.label)
            label.setToolTip(editor.field.setting.help)
            self.labels[name] = label
            if inline:
                if label.text():
                    layout.addWidget(label)
                layout.addWidget(editor.widget)
            else:
                layout.addRow(label, editor.widget)
            editor.connect(lambda name=name: self.edited.emit(name))
        self.set_values({name: e.field.default for name, e in self.editors.items() if e.field.default is not None})

    def add_row(self, label: str, field: QWidget | QHBoxLayout, at: int = -1) -> None:
        """A row of the panel's own among the settings (a form, not an inline one), last or at row ``at``."""
        shown = QLabel(label)
        self.labels[f"row {len(self.labels)}"] = shown
        self.layout_.insertRow(at, shown, field)

    def __getitem__(self, name: str) -> SettingEditor:
        return self.editors[name]

    def values(self) -> dict[str, Any]:
        """The settings on the form (SettingError, naming the setting, for text that cannot be read)."""
        return {name: editor.value() for name, editor in self.editors.items()}

    def set_values(self, values: object) -> None:
        """Show a config's values for the settings on this form, or a mapping's for the names it holds."""
        if isinstance(values, Mapping):
            given = {name: value for name, value in values.items() if name in self.editors}
        else:
            given = {name: getattr(values, name) for name in self.editors}
        for name, value in given.items():
            with QSignalBlocker(self.editors[name].widget):
                self.editors[name].set_value(value)

    def set_enabled(self, names: Iterable[str], enabled: bool) -> None:
        for name in names:
            self.labels[name].setEnabled(enabled)
            self.editors[name].widget.setEnabled(enabled)


def align_labels(*forms: SettingsForm) -> None:
    """Give the forms one label column width, so forms stacked in a panel line up."""
    labels = [label for form in forms for label in form.labels.values()]
    width = max(label.sizeHint().width() for label in labels)
    for label in labels:
        label.setMinimumWidth(width)
