"""The annotator's form: every input and button as private-ish attributes of one `Controls`.

Only builds Qt widgets and lays them out; `annotator.AnnotatorWidget` connects them to actions.
Keeping the form here keeps the container file short and lets tests set a value on a child
widget and call the handler directly. Imports qtpy (widget side only).
"""

from __future__ import annotations

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_fob._widgets.backends import FOB_DEFAULT
from napari_fob._widgets.shortcuts import SHORTCUTS, button_key, display, tooltip
from napari_fob.prompting.official_compat import CHECKPOINT_NAMES
from napari_fob.segmenters.registry import SEGMENTERS
from napari_fob.segmenters.weights import SAM2_MODEL_TYPES, SAM_MODEL_TYPES
from napari_fob.session.walks import DEFAULT_THRESHOLD, MODES

PROMPT_CHOICES = ("FoB", "mask-ring baseline", "registration baseline")
#: The generator name of each PROMPT_CHOICES entry (combo index -> `make_generator` name).
PROMPT_NAMES = ("fob", "mask-ring", "registration")
SEGMENTER_CHOICES = SEGMENTERS  # the registry's names, in its order
SAM_MODELS = SAM_MODEL_TYPES + SAM2_MODEL_TYPES  # SAM's, then SAM 2.1's (segmenter sam2)


def hbox(*widgets: QWidget) -> QWidget:
    """The widgets side by side in one row without margins."""
    box = QWidget()
    lay = QHBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        lay.addWidget(w)
    return box


class Controls:
    """All inputs of the annotator, built into `layout` (a QVBoxLayout of the dock widget)."""

    def __init__(self, layout: QVBoxLayout) -> None:
        # --- data ----------------------------------------------------------------------
        data = QGroupBox("Data")
        form = QFormLayout(data)
        self.image = QComboBox()
        self.image.setToolTip("The image layer to annotate ((Z, Y, X); slices along axis 0)")
        form.addRow("Image", self.image)
        self.label = QSpinBox()
        self.label.setRange(1, 255)
        self.label.setToolTip("Label value of the structure (also the support brush value)")
        self.name = QLineEdit()
        self.name.setPlaceholderText("structure name, e.g. liver")
        form.addRow("Structure", hbox(self.label, self.name))
        self.low = QDoubleSpinBox()
        self.high = QDoubleSpinBox()
        for box in (self.low, self.high):
            box.setRange(-1e6, 1e6)
            box.setDecimals(1)
        self.window_from_layer = QCheckBox("from layer")
        self.window_from_layer.setChecked(True)
        self.window_from_layer.setToolTip(
            "Use the image layer's contrast limits as the intensity window"
        )
        form.addRow("Window", hbox(self.low, self.high, self.window_from_layer))
        layout.addWidget(data)

        # --- range and mode ------------------------------------------------------------
        rng = QGroupBox("Slices")
        form = QFormLayout(rng)
        self.z_from = QSpinBox()
        self.z_to = QSpinBox()
        self.auto_extent = QCheckBox("auto extent")
        self.auto_extent.setToolTip(
            "Walk out from the support until the structure's evidence drops below the threshold"
        )
        form.addRow("From / to", hbox(self.z_from, self.z_to, self.auto_extent))
        self.mode = QComboBox()
        self.mode.addItems(list(MODES))
        self.mode.setToolTip(
            "fixed: every slice prompted from the painted support(s); chain: outward slice by "
            "slice, each from the nearest committed mask (commits as it goes)"
        )
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setSingleStep(0.01)
        self.threshold.setValue(DEFAULT_THRESHOLD)
        self.threshold.setToolTip("Slices below this confidence are flagged (and end auto extent)")
        form.addRow("Mode / threshold", hbox(self.mode, self.threshold))
        self.overwrite = QCheckBox("overwrite other structures")
        self.other_bg = QCheckBox("other structures as background")
        self.other_bg.setChecked(True)
        form.addRow(hbox(self.overwrite, self.other_bg))
        self.propagate = QCheckBox("propagate corrections")
        self.propagate.setChecked(False)  # off: measured not to pay (docs/benchmarks.md)
        self.propagate.setToolTip(
            "Committing a slice whose points you corrected re-predicts the predicted slices "
            "next to it from its mask (undo: one step). Off by default: in the simulated-"
            "annotator benchmark it did not pay"
        )
        form.addRow(self.propagate)
        layout.addWidget(rng)

        # --- models ----------------------------------------------------------------------
        models = QGroupBox("Models")
        form = QFormLayout(models)
        self.prompts = QComboBox()
        self.prompts.addItems(PROMPT_CHOICES)
        self.fob_checkpoint = QLineEdit(FOB_DEFAULT)
        # the authors' checkpoints by name once converted (`fob weights convert`), or any path
        names = [FOB_DEFAULT, "compact", "real-mri", *CHECKPOINT_NAMES]
        # the completer is parented: Python must not collect it
        self.fob_checkpoint.setCompleter(QCompleter(names, self.fob_checkpoint))
        self.fob_checkpoint.setToolTip(
            "FoB checkpoint: 'default' (the packaged models: 'compact' within a scan, 'real-mri' "
            "for supports from another scan), 'compact' or 'real-mri' (trained on brain MRI) "
            "everywhere, a converted checkpoint of the paper's authors (fob-abd-ct, fob-abd-mri: "
            "see `fob weights list`) or a .pt path"
        )
        form.addRow("Prompts", hbox(self.prompts, self.fob_checkpoint))
        self.segmenter = QComboBox()
        self.segmenter.addItems(SEGMENTER_CHOICES)
        self.segmenter.setToolTip(
            "auto: SAM, then SAM 2.1, whichever checkpoint is found first, else the random "
            "walker (said below); sam2: SAM 2.1 with a hiera_* model"
        )
        self.sam_model = QComboBox()
        self.sam_model.addItems(SAM_MODELS)
        form.addRow("Segmenter", hbox(self.segmenter, self.sam_model))
        self.sam_checkpoint = QLineEdit()
        self.sam_checkpoint.setPlaceholderText(
            "SAM checkpoint path (empty: search the usual places)"
        )
        form.addRow("SAM weights", self.sam_checkpoint)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setObjectName("fob_backend_status")
        form.addRow(self.status)
        layout.addWidget(models)

        # --- actions -------------------------------------------------------------------
        actions = QGroupBox("Actions")
        grid = QGridLayout(actions)
        keys = {name: (label, button_key(key, extra)) for name, label, key, extra in SHORTCUTS}
        self.buttons: dict[str, QPushButton] = {}
        names = [
            ("predict", None),
            ("commit_slice", None),
            ("commit_range", None),
            ("clear", "Clear slice prompts"),
            ("undo", None),
            ("redo", None),
            ("save", "Save session…"),
            ("load", "Load session…"),
            ("export", "Export labels…"),
            ("cancel", "Cancel"),
        ]
        for i, (name, text) in enumerate(names):
            if text is None:
                label, key = keys[name]
                button = QPushButton(f"{label} ({display(key)})")
                button.setToolTip(tooltip(name))
            else:
                button = QPushButton(text)
            button.setObjectName(f"fob_{name}")
            self.buttons[name] = button
            grid.addWidget(button, i // 2, i % 2)
        self.buttons["cancel"].setEnabled(False)
        self.buttons["cancel"].setToolTip("Stop the running prediction or commit at the next slice")
        layout.addWidget(actions)

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setObjectName("fob_message")
        layout.addWidget(self.message)
