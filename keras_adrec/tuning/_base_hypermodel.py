"""What the ranking and sequential HyperModels share."""

import keras
import keras_tuner as kt

from keras_adrec.models.presets import Preset
from keras_adrec.models.presets import as_preset
from keras_adrec.training.build import compile_model
from keras_adrec.tuning.hyperparameters import ranges_from_config
from keras_adrec.tuning.search_space import AdRecSearchSpace
from keras_adrec.tuning.validation_auc import fit_for_trial


class BaseAdRecHyperModel(kt.HyperModel):
    """Search space, seeding, compiling and fitting of a trial.

    Subclasses implement `make_model(config)` (an unbuilt model from a
    `keras_adrec.models.presets.Preset`) and list their own constructor
    arguments in `get_config`.
    """

    def __init__(
        self,
        preset,
        interaction="adrec",
        overrides=None,
        fixed=None,
        ranges=None,
        seed=0,
        patience=2,
        run_eagerly=False,
        name=None,
        tunable=True,
    ):
        super().__init__(name=name, tunable=tunable)
        if int(patience) < 1:
            raise ValueError(
                f"`patience` must be positive. Received: patience={patience}"
            )
        self.preset = preset
        self.overrides = dict(overrides or {})
        fields = as_preset(preset, **self.overrides)
        self.interaction = interaction
        self.seed = int(seed)
        self.patience = int(patience)
        self.run_eagerly = bool(run_eagerly)
        self.search_space = AdRecSearchSpace(fields, fixed=fixed, ranges=ranges)

    @property
    def fields(self):
        """The preset with overrides, before any hyperparameter."""
        return self.search_space.fields

    def declare_hyperparameters(self, hp):
        self.search_space.declare(hp)

    def trial_fields(self, hp):
        """The preset of a trial: `hp`'s values applied."""
        return self.search_space.declare(hp).replace(
            interaction=self.interaction
        )

    def make_model(self, fields):
        raise NotImplementedError

    def build(self, hp):
        fields = self.trial_fields(hp)
        keras.utils.set_random_seed(self.seed)
        model = self.make_model(fields)
        return compile_model(model, fields, run_eagerly=self.run_eagerly)

    def fit(self, hp, model, x, y=None, validation_data=None, **kwargs):
        kwargs.setdefault("batch_size", self.search_space.fields.batch_size)
        kwargs.setdefault("patience", self.patience)
        return fit_for_trial(
            model, x, y, validation_data=validation_data, **kwargs
        )

    def get_config(self):
        space = self.search_space.get_config()
        return {
            "preset": self.preset.to_dict()
            if isinstance(self.preset, Preset)
            else self.preset,
            "interaction": self.interaction,
            "overrides": dict(self.overrides),
            "fixed": space["fixed"],
            "ranges": space["ranges"],
            "seed": self.seed,
            "patience": self.patience,
            "run_eagerly": self.run_eagerly,
            "name": self.name,
            "tunable": self.tunable,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["ranges"] = ranges_from_config(config.get("ranges"))
        return cls(**config)
