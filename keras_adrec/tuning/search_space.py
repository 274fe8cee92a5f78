"""The Ad-Rec search space of the paper's hyper-parameter study.

Appendix D.6 and Table 6 of the paper vary the number of masked transformer
layers (1, 2, 4), the number of heads (1 to 16; `H = D` diverges), the
dropout ratio (0.01 to 0.3), the activation (ReLU, GeLU) and the feed-forward
width; appendix D.4 (Table 4) compares per-head geometric masks with one
fixed threshold for all heads and with no mask. `AdRecSearchSpace` declares
those choices as KerasTuner hyperparameters named like the constructor
arguments they set (`keras_adrec.layers.AdRecInteraction`'s and the
optimizer's `learning_rate`), with the preset's values as defaults.

The mask schedule is one hyperparameter, `mask_thresholds`, whose values
are strings: see `keras_adrec.tuning.mask_schedule`.
"""

import json

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.models.presets import as_preset
from keras_adrec.tuning.hyperparameters import ACTIVATIONS
from keras_adrec.tuning.hyperparameters import DROPOUT_RANGE
from keras_adrec.tuning.hyperparameters import FFN_DIMS
from keras_adrec.tuning.hyperparameters import HYPERPARAMETERS
from keras_adrec.tuning.hyperparameters import LEARNING_RATE_FACTORS
from keras_adrec.tuning.hyperparameters import MASK_RULES
from keras_adrec.tuning.hyperparameters import MASK_WARMUP_STEPS
from keras_adrec.tuning.hyperparameters import MIN_KEYS
from keras_adrec.tuning.hyperparameters import NUM_LAYERS
from keras_adrec.tuning.hyperparameters import NUMERIC
from keras_adrec.tuning.hyperparameters import check_hyperparameter
from keras_adrec.tuning.hyperparameters import ranges_from_config
from keras_adrec.tuning.hyperparameters import ranges_to_config
from keras_adrec.tuning.mask_schedule import FIXED_THRESHOLDS
from keras_adrec.tuning.mask_schedule import GEOMETRIC_BASES
from keras_adrec.tuning.mask_schedule import fits_heads
from keras_adrec.tuning.mask_schedule import mask_schedule_spec
from keras_adrec.tuning.mask_schedule import resolve_mask_schedule


def divisors(dim):
    """Head counts that divide `dim`, excluding `dim` itself (paper D.6.2)."""
    return [h for h in range(1, dim) if dim % h == 0]


@keras_adrec_export
class AdRecSearchSpace:
    """Ad-Rec hyperparameters of the paper's study, with preset defaults.

    Each hyperparameter is named like the argument it sets and defaults to
    the preset's value:

    | name | searched values |
    |---|---|
    | `num_layers` | 1, 2, 4 |
    | `num_heads` | divisors of `embedding_dim` except itself (H = D diverges) |
    | `ffn_dim` | 64, 128, 256, 512 |
    | `dropout` | 0.01 to 0.3, log scale |
    | `mask_thresholds` | `geometric`, `geometric:5`, `fixed:T`, `none` |
    | `mask_rule` | `paper`, `straight_through`, `relative` |
    | `min_keys` | 1, 2, 4 (the relative rule's floor of kept keys) |
    | `mask_warmup_steps` | 0, 32, 256 (threshold warm-up) |
    | `activation` | `relu`, `gelu` |
    | `norm_first` | `True`, `False` |
    | `learning_rate` | preset's / 10 to preset's x 3, log scale |

    `fixed:T` takes Table 4's thresholds T = 0.1, 0.05, 0.01, 0.005,
    0.001; a preset's explicit per-head list joins the choices (as
    `"per_head"` when `num_heads` is searched too: see the module
    docstring). A preset value outside these sets joins them. `fixed` pins a
    hyperparameter (`keras_tuner.HyperParameters.Fixed`); `ranges` narrows
    one: a 2-tuple `(lo, hi)` bounds a numeric one (a float range, or the
    default choices within it), a list gives the exact choices.

    Args:
        fields: a `keras_adrec.models.presets.Preset`
            (`keras_adrec.models.get_preset`) or its serialized dict: the
            defaults.
        fixed: dict `name -> value` of hyperparameters to pin.
        ranges: dict `name -> (lo, hi)` or `name -> [choices]`.

    Example:

    ```python
    space = tuning.AdRecSearchSpace(
        keras_adrec.models.get_preset("rm1"),
        fixed={"num_heads": 2},
        ranges={"dropout": (0.01, 0.1), "mask_thresholds": ["geometric",
                                                           "none"]})
    hp = keras_tuner.HyperParameters()
    space.declare(hp)  # -> the preset with this trial's values
    ```

    References:
        Adnan et al., "Ad-Rec", NeurIPS 2023 ML for Systems, appendix D.4
        (Table 4) and D.6 (Table 6).
    """

    def __init__(self, fields, fixed=None, ranges=None):
        self.fields = as_preset(fields)
        self.fixed = dict(fixed or {})
        self.ranges = dict(ranges or {})
        for label, given in (("fixed", self.fixed), ("ranges", self.ranges)):
            unknown = sorted(set(given) - set(HYPERPARAMETERS))
            if unknown:
                raise ValueError(
                    f"Unknown hyperparameter(s) in `{label}`: "
                    f"{', '.join(unknown)}. Known: "
                    f"{', '.join(HYPERPARAMETERS)}."
                )
        both = sorted(set(self.fixed) & set(self.ranges))
        if both:
            raise ValueError(
                f"Hyperparameter(s) {', '.join(both)} are both fixed and "
                "ranged; give each in one of `fixed` or `ranges`."
            )
        self.embedding_dim = self.fields.embedding_dim
        self._choices = {name: self._resolve(name) for name in HYPERPARAMETERS}
        self.per_head_lists = {}
        self._group_per_head_lists()

    # Values and defaults ------------------------------------------------

    def defaults(self):
        """The preset's value of every hyperparameter, as declared."""
        config = self.fields
        return {
            "num_layers": config.num_layers,
            "num_heads": config.num_heads,
            "ffn_dim": config.ffn_dim,
            "dropout": config.dropout,
            "mask_thresholds": mask_schedule_spec(config.mask_thresholds),
            "mask_rule": config.mask_rule,
            "min_keys": config.min_keys,
            "mask_warmup_steps": config.mask_warmup_steps,
            "activation": config.activation,
            "norm_first": config.norm_first,
            "learning_rate": config.learning_rate,
        }

    def _default_choices(self, name, default):
        if name == "num_layers":
            return _with(NUM_LAYERS, default)
        if name == "num_heads":
            return _with(divisors(self.embedding_dim), default)
        if name == "ffn_dim":
            return _with(FFN_DIMS, default)
        if name == "mask_thresholds":
            schedules = ["geometric"]
            schedules += [f"geometric:{b:g}" for b in GEOMETRIC_BASES[1:]]
            schedules += [f"fixed:{t:g}" for t in FIXED_THRESHOLDS]
            schedules.append("none")
            return _with(schedules, default)
        if name == "activation":
            return _with(ACTIVATIONS, default)
        if name == "mask_rule":
            return _with(MASK_RULES, default)
        if name == "min_keys":
            return _with(MIN_KEYS, default)
        if name == "mask_warmup_steps":
            return _with(MASK_WARMUP_STEPS, default)
        if name == "norm_first":
            return [True, False]
        if name == "dropout":
            lo, hi = DROPOUT_RANGE
            return ("range", min(lo, default), max(hi, default))
        lo, hi = LEARNING_RATE_FACTORS
        return ("range", _round(default * lo), _round(default * hi))

    def _resolve(self, name):
        """`("fixed", v)`, `("choice", [..], default)` or `("range", lo, hi,
        default)`."""
        default = self.defaults()[name]
        if name in self.fixed:
            return ("fixed", self._check_value(name, self.fixed[name]))
        choices = self._default_choices(name, default)
        if name in self.ranges:
            choices = self._narrow(name, choices, self.ranges[name])
        if isinstance(choices, tuple):
            _, lo, hi = choices
            default = min(max(default, lo), hi)
            if lo == hi:
                return ("fixed", lo)
            return ("range", lo, hi, default)
        if len(choices) == 1:
            return ("fixed", choices[0])
        if default not in choices:
            default = _closest(choices, default)
        return ("choice", choices, default)

    def _narrow(self, name, choices, given):
        if isinstance(given, tuple):
            if name not in NUMERIC or len(given) != 2:
                raise ValueError(
                    f"`ranges[{name!r}]` must be a list of choices"
                    + (
                        " or a (lo, hi) pair"
                        if name in NUMERIC
                        else f" (it is not numeric). Received: {given!r}"
                    )
                )
            lo, hi = (float(v) for v in given)
            if not lo <= hi:
                raise ValueError(
                    f"`ranges[{name!r}]` needs lo <= hi. Received: {given!r}"
                )
            if isinstance(choices, tuple):
                for value in (lo, hi):
                    self._check_value(name, value)
                return ("range", lo, hi)
            kept = [c for c in choices if lo <= c <= hi]
            if not kept:
                raise ValueError(
                    f"`ranges[{name!r}]`={given!r} leaves none of the "
                    f"values {choices}; give a list of choices instead."
                )
            return kept
        if isinstance(given, list):
            if not given:
                raise ValueError(f"`ranges[{name!r}]` is an empty list.")
            values = []
            for value in given:
                value = self._check_value(name, value)
                if value not in values:
                    values.append(value)
            return values
        raise ValueError(
            f"`ranges[{name!r}]` must be a (lo, hi) tuple or a list of "
            f"choices. Received: {given!r}"
        )

    def _check_value(self, name, value):
        return check_hyperparameter(name, value, self.embedding_dim)

    def _head_values(self):
        resolved = self._choices["num_heads"]
        return [resolved[1]] if resolved[0] == "fixed" else resolved[1]

    def _group_per_head_lists(self):
        """Check explicit lists against `num_heads`; group them if needed.

        With one possible head count every list must fit it and stays a
        choice of its own. With several, the lists become one choice,
        `"per_head"`, mapping each head count to its list.
        """
        resolved = self._choices["mask_thresholds"]
        if resolved[0] == "fixed":
            masks, default = [resolved[1]], resolved[1]
        else:
            masks, default = list(resolved[1]), resolved[2]
        lists = [m for m in masks if m.startswith("[")]
        heads = self._head_values()
        if not lists:
            return
        if len(heads) == 1:
            wrong = [m for m in lists if not fits_heads(m, heads[0])]
            if wrong:
                raise ValueError(
                    f"`mask_thresholds` {', '.join(wrong)} do not fit "
                    f"num_heads={heads[0]}: an explicit list needs one "
                    "threshold per head."
                )
            return
        for spec in lists:
            length = len(json.loads(spec))
            if length in self.per_head_lists:
                raise ValueError(
                    f"Two explicit `mask_thresholds` lists for {length} "
                    "heads while `num_heads` is searched; fix `num_heads` "
                    "to compare lists of the same length."
                )
            if length not in heads:
                raise ValueError(
                    f"`mask_thresholds` {spec} fits num_heads={length}, "
                    f"which is not among the searched values {heads}."
                )
            self.per_head_lists[length] = json.loads(spec)
        grouped = []
        for m in masks:
            value = "per_head" if m in lists else m
            if value not in grouped:
                grouped.append(value)
        default = "per_head" if default in lists else default
        self._choices["mask_thresholds"] = (
            ("fixed", grouped[0])
            if len(grouped) == 1
            else ("choice", grouped, default)
        )

    def declared_defaults(self):
        """The default of every declared hyperparameter."""
        defaults = {}
        for name, resolved in self._choices.items():
            defaults[name] = (
                resolved[1] if resolved[0] == "fixed" else (resolved[-1])
            )
        return defaults

    # Declaring ----------------------------------------------------------

    def _declare_one(self, hp, name, resolved=None):
        resolved = resolved or self._choices[name]
        kind = resolved[0]
        if kind == "fixed":
            return hp.Fixed(name, resolved[1])
        if kind == "choice":
            values, default = resolved[1], resolved[2]
            if all(isinstance(v, bool) for v in values):
                return hp.Boolean(name, default=default)
            return hp.Choice(name, values, default=default)
        _, lo, hi, default = resolved
        sampling = "log" if lo > 0 else "linear"
        return hp.Float(name, lo, hi, sampling=sampling, default=default)

    def declare(self, hp):
        """Declare the hyperparameters in `hp`; return this trial's preset.

        Args:
            hp: `keras_tuner.HyperParameters`.

        Returns:
            The preset with this trial's values, ready for
            `RankingModel.from_preset` (the mask schedule resolved to a
            `mask_thresholds` argument).
        """
        values = {name: self._declare_one(hp, name) for name in HYPERPARAMETERS}
        return self.fields_for(values)

    def fields_for(self, values):
        """The preset with hyperparameter `values` applied.

        Args:
            values: dict `name -> value` (such as a trial's
                `hyperparameters.values`); missing names keep the preset's
                values, `tuner/...` entries are ignored.

        Returns:
            A new `Preset`.
        """
        chosen = self.declared_defaults()
        chosen.update({k: v for k, v in values.items() if k in HYPERPARAMETERS})
        chosen["mask_thresholds"] = resolve_mask_schedule(
            chosen["mask_thresholds"],
            int(chosen["num_heads"]),
            per_head_lists=self.per_head_lists,
        )
        return self.fields.replace(**chosen)

    def describe(self):
        """Each hyperparameter's kind, values or range, and default."""
        description = {}
        for name, resolved in self._choices.items():
            if resolved[0] == "fixed":
                description[name] = {"fixed": resolved[1]}
            elif resolved[0] == "choice":
                description[name] = {
                    "choices": list(resolved[1]),
                    "default": resolved[2],
                }
            else:
                description[name] = {
                    "min": resolved[1],
                    "max": resolved[2],
                    "default": resolved[3],
                }
        return description

    def get_config(self):
        return {
            "fields": self.fields.to_dict(),
            "fixed": dict(self.fixed),
            "ranges": ranges_to_config(self.ranges),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["ranges"] = ranges_from_config(config.get("ranges"))
        return cls(**config)


def _round(value):
    return float(f"{value:.6g}")


def _with(values, default):
    values = list(values)
    if default not in values:
        values.append(default)
        if all(isinstance(v, (int, float)) for v in values):
            values.sort()
    return values


def _closest(choices, default):
    if all(isinstance(c, (int, float)) for c in choices) and isinstance(
        default, (int, float)
    ):
        return min(choices, key=lambda c: (abs(c - default), c))
    return choices[0]


__all__ = [
    "AdRecSearchSpace",
    "HYPERPARAMETERS",
    "divisors",
    "mask_schedule_spec",
    "resolve_mask_schedule",
]
