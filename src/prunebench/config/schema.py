"""The run configuration's pydantic models, one per concern, with their defaults and checks.

Defaults live here and nowhere else. Unknown keys, wrong types and names no catalog knows are
validation errors; `config.loading` turns them into one line that names the key and says how to
fix it, and `config.identity` hashes a validated config into its run id.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

import prunebench.config.source_names as sources
import prunebench.data.catalog as data_catalog
import prunebench.models.catalog as model_catalog
from prunebench.config.evaluation import EvalConfig
from prunebench.config.schedules import SCHEDULES
from prunebench.criteria.catalog import CRITERIA
from prunebench.data.options import check_dataset_options
from prunebench.errors import ConfigError, PrunebenchError
from prunebench.pruning.presets import PRESETS
from prunebench.registry import Registry, UnknownNameError
from prunebench.tracking.spec import parse_log

# Numbers are strict: "0.5" (a string) is a wrong type, not 0.5; an int is still a float.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Ratio = Float
# numpy's legacy RNGs (np.random.seed, scikit-learn's random_state) take seeds below 2^32, and
# SQLite stores signed 64-bit integers: one range for every seed keeps both safe.
MAX_SEED = 2**32 - 1
Seed = Annotated[int, Strict(), Field(ge=0, le=MAX_SEED)]


def _usable_path(path: Path) -> bool:
    """Whether `path` exists; a name the OS cannot even look up (too long, NUL byte) is a
    ValueError naming the reason, so pydantic reports it with the key."""
    try:
        return path.exists()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ValueError(f"the path is not usable ({reason}); give a valid local path") from None


def _registered(registry: Registry, name: str) -> str:
    """Registry check as a ValueError, so that pydantic reports it with the key's location."""
    try:
        return registry.check(name)
    except UnknownNameError as exc:
        raise ValueError(str(exc)) from None


def _source_or_registered(
    registry: Registry, name: str, kinds: tuple[str, ...], examples: str
) -> str:
    """A registered name, or a source (`torchvision:NAME`, `python:FILE:FN`, ...) that parses;
    whether the source's name exists is checked when it is built (before any compute)."""
    try:
        source = sources.parse(name, kinds)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    if not source.registered:
        return name
    try:
        return registry.check(name)
    except UnknownNameError as exc:
        raise ValueError(f"{exc}; or a source: {examples}") from None


class StrictModel(BaseModel):
    """Unknown keys are errors (typos must not silently fall back to defaults)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )


class DataConfig(StrictModel):
    name: str = "digits"
    root: Path | None = None  # local dataset directory or file; datasets never download unasked
    download: Bool = False
    val_fraction: Float = Field(0.1, gt=0.0, lt=0.5)
    split_seed: Seed = 0  # fixes the train/val/test split, shared by pretraining and all runs
    batch_size: Int = Field(64, ge=1)
    eval_batch_size: Int = Field(512, ge=1)
    num_workers: Int = Field(0, ge=0)
    augment: Bool = True
    image_size: Int | None = Field(None, ge=8)  # resize (ViT / EfficientNet); None: native
    seq_len: Int = Field(128, ge=8)  # language modelling only
    tokenizer: Path | None = None  # language modelling only: local tokenizer directory
    options: dict[str, Any] = Field(default_factory=dict)  # dataset-specific, e.g. {stories: 3000}

    @field_validator("name")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        return _source_or_registered(
            data_catalog.DATASETS, name, sources.DATA_KINDS, "python:FILE.py:FUNCTION"
        )

    @field_validator("root", "tokenizer")
    @classmethod
    def _path_exists(cls, path: Path | None) -> Path | None:
        if path is not None and not _usable_path(path):
            raise ValueError(f"path '{path}' does not exist; point it at a local copy")
        return path

    @model_validator(mode="after")
    def _known_options(self) -> DataConfig:
        check_dataset_options(self.name, self.options)
        return self

    @model_validator(mode="after")
    def _root_when_needed(self) -> DataConfig:
        if data_catalog.needs_root(self.name) and self.root is None and not self.download:
            raise ValueError(
                f"dataset '{self.name}' needs data.root (a local directory), "
                "or data.download=true on a machine with network"
            )
        return self


class ModelConfig(StrictModel):
    name: str = "digits_cnn"
    weights: Path | None = None  # local pretrained weights: .safetensors, .pth or a HF directory
    reset_classifier: Bool = False  # load weights except the classifier (ImageNet -> CIFAR)
    options: dict[str, Any] = Field(default_factory=dict)  # builder keyword arguments

    @field_validator("name")
    @classmethod
    def _known_model(cls, name: str) -> str:
        return _source_or_registered(
            model_catalog.MODELS,
            name,
            sources.MODEL_KINDS,
            "torchvision:NAME, timm:NAME, hf, python:FILE.py:FUNCTION",
        )

    @field_validator("weights")
    @classmethod
    def _weights_exist(cls, path: Path | None) -> Path | None:
        if path is not None and not _usable_path(path):
            raise ValueError(f"weights file '{path}' does not exist")
        return path

    @model_validator(mode="after")
    def _hf_has_an_architecture(self) -> ModelConfig:
        if self.name != "hf":
            return self
        config = self.options.get("config")
        if config is not None and not isinstance(config, (str, dict)):
            raise ValueError(
                "model.options.config must be the path of a config.json or the config as a "
                f"mapping, not {type(config).__name__}"
            )
        if isinstance(config, str) and not Path(config).is_file():
            raise ValueError(f"model.options.config: file '{config}' does not exist")
        if config is None and (self.weights is None or not self.weights.is_dir()):
            raise ValueError(
                "model.name=hf needs model.weights (a local Hugging Face folder) or "
                "model.options.config (a config.json, for a randomly initialised model)"
            )
        return self

    @property
    def task(self) -> str | None:
        """The model's task when known before building it (None: the data decides)."""
        return model_catalog.declared_task(self.name, self.weights, self.options)


class OptimizerConfig(StrictModel):
    name: Literal["sgd", "adamw"] = "sgd"
    lr: Float | None = Field(None, gt=0.0)  # fine-tuning: None means pretrain lr / 10
    momentum: Float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: Float = Field(5e-4, ge=0.0)


Monitor = Literal["val_loss", "val_metric"]


class PretrainConfig(StrictModel):
    """How the dense model that every pruning run starts from is trained (paper appendix F.4)."""

    epochs: Int = Field(30, ge=0)  # 0: use model.weights as they are
    patience: Int | None = Field(5, ge=1)  # None: train all epochs
    min_delta: Float = Field(0.0, ge=0.0)
    monitor: Monitor = "val_loss"
    optimizer: OptimizerConfig = OptimizerConfig(lr=0.1)
    warmup_epochs: Int = Field(0, ge=0)
    warmup_start_factor: Float = Field(0.01, gt=0.0, le=1.0)
    scheduler: Literal["constant", "cosine_warm_restarts"] = "constant"
    t0: Int = Field(50, ge=1)
    t_mult: Int = Field(2, ge=1)
    eta_min: Float = Field(1e-5, ge=0.0)
    seed: Seed = 0

    @field_validator("optimizer")
    @classmethod
    def _lr_given(cls, opt: OptimizerConfig) -> OptimizerConfig:
        if opt.lr is None:
            raise ValueError("pretrain.optimizer.lr must be set, e.g. 0.1")
        return opt


class DistillConfig(StrictModel):
    """Fine-tuning distils from the dense model: (1 - alpha) * task loss + alpha * T^2 *
    KL(teacher || student) over temperature-softened outputs (engine/distill.py)."""

    alpha: Float = Field(0.5, gt=0.0, le=1.0)  # weight of the teacher term
    # bounded: far outside, softened logits overflow or vanish and training diverges mid-run
    temperature: Float = Field(2.0, ge=0.05, le=100.0)


class FinetuneConfig(StrictModel):
    """Retraining after each pruning step (paper algorithm 1 when mode is 'patience')."""

    mode: Literal["patience", "fixed"] = "patience"
    epochs: Int = Field(5, ge=0)  # mode 'fixed': exactly this many epochs, last weights kept
    max_epochs: Int = Field(30, ge=0)  # mode 'patience': cap
    patience: Int = Field(3, ge=1)
    first_patience: Int | None = Field(None, ge=1)  # first step only (hybrid's long phase)
    first_max_epochs: Int | None = Field(None, ge=0)
    min_delta: Float = Field(0.0, ge=0.0)
    monitor: Monitor = "val_loss"
    optimizer: OptimizerConfig = OptimizerConfig()
    distill: DistillConfig | None = None  # None: plain fine-tuning on the task loss


class PruneConfig(StrictModel):
    structure: Literal["unstructured", "structured"] = "unstructured"
    criterion: str = "magnitude"
    # global: one ranking; layerwise: the same ratio in every layer (structured: every channel
    # group); preset: per-layer ratios (structured only) from `preset` or `layer_ratios`.
    scope: Literal["global", "layerwise", "preset"] = "global"
    exclude_first_conv: Bool = False
    exclude_classifier: Bool = False  # structured: the classifier's outputs are never pruned
    include_biases: Bool = False
    exclude: list[str] = Field(default_factory=list)  # module names (or prefixes) never pruned
    # structured: layers producing a model output besides the logits whose width may shrink
    include: list[str] = Field(default_factory=list)
    calibration_samples: Int = Field(256, ge=1)  # data-dependent criteria, from the train split
    # ---- structured pruning only
    preset: str | None = None  # a named per-layer preset, e.g. resnet18_table2_model1
    layer_ratios: dict[str, Float] | None = None  # module-name prefix -> channel ratio
    round_to: Int | None = Field(None, ge=1)  # keep channel counts multiples of this
    # global scope: channel scores divided by their group's mean before the one ranking
    # (raw sums favour layers with large fan-in); "none" ranks the raw group sums
    group_normalizer: Literal["mean", "none"] = "mean"
    # structured: the same widths in every layer (peer channel groups keep equal counts; heads
    # in whole key/value groups, kept where the model's config cannot express fewer): the
    # shapes a Hugging Face config.json can describe (`prunebench export --format hf`)
    uniform_widths: Bool = False
    latency: Bool = True  # measure latency of the pruned and the dense model at each step
    latency_batch_size: Int = Field(64, ge=1)

    @field_validator("criterion")
    @classmethod
    def _known_criterion(cls, name: str) -> str:
        return _registered(CRITERIA, name)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, name: str | None) -> str | None:
        return None if name is None else _registered(PRESETS, name)

    @field_validator("layer_ratios")
    @classmethod
    def _ratios_in_range(cls, ratios: dict[str, float] | None) -> dict[str, float] | None:
        for prefix, ratio in (ratios or {}).items():
            if not 0.0 <= ratio < 1.0:
                raise ValueError(f"ratio of '{prefix}' must be in [0, 1), got {ratio}")
        return ratios

    @model_validator(mode="after")
    def _structured_settings(self) -> PruneConfig:
        structured = self.structure == "structured"
        if structured and not CRITERIA.fact(self.criterion, "structured"):
            usable = [n for n in CRITERIA.names() if CRITERIA.fact(n, "structured")]
            raise ValueError(
                f"criterion '{self.criterion}' scores single weights only; use it with "
                f"prune.structure=unstructured or pick one of {', '.join(usable)}"
            )
        given = [
            k
            for k in ("preset", "layer_ratios", "round_to", "include", "uniform_widths")
            if getattr(self, k)
        ]
        if given and not structured:
            raise ValueError(f"prune.{given[0]} needs prune.structure=structured")
        if self.scope == "preset":
            if not structured:
                raise ValueError("prune.scope=preset needs prune.structure=structured")
            if (self.preset is None) == (self.layer_ratios is None):
                raise ValueError(
                    "prune.scope=preset needs exactly one of prune.preset or prune.layer_ratios"
                )
        elif self.preset is not None or self.layer_ratios is not None:
            raise ValueError("prune.preset / prune.layer_ratios need prune.scope=preset")
        return self


class TrainConfig(StrictModel):
    """How training is executed, never what it computes: not part of any id (a step computed
    eagerly is reused by a compiled run). On the CPU `auto` changes nothing."""

    # torch.compile the forward passes: true / false, or auto (on CUDA, phases of at least
    # accel.AUTO_COMPILE_MIN_EPOCHS planned epochs)
    compile: Literal["auto"] | bool = "auto"
    # the channels_last memory format for convnets: auto (on CUDA where a trial forward and
    # backward works and matches; never on the CPU), true (also on the CPU) or false
    channels_last: Literal["auto"] | bool = "auto"


class AdaptiveConfig(StrictModel):
    """The adaptive regime's rule (config/adaptive_rule.py; docs/concepts.md); unset: its
    default."""

    first: Float | None = None
    rate: Float | None = None
    min_rate: Float | None = None
    max_rate: Float | None = None
    grow: Float | None = None
    shrink: Float | None = None
    full: Float | None = None
    partial: Float | None = None
    quick: Float | None = None
    retry: Bool | None = None


class RegimeConfig(StrictModel):
    """A schedule name plus its arguments; see prunebench.config.schedules."""

    name: str = "one_shot"
    target: Ratio | None = None
    steps: Int | None = None
    rate: Float | None = None
    step: Float | None = None
    first: Float | None = None
    targets: list[Float] | None = None
    tolerance: Float | None = None
    adaptive: AdaptiveConfig | None = None

    @field_validator("name")
    @classmethod
    def _known_regime(cls, name: str) -> str:
        return _registered(SCHEDULES, name)

    @model_validator(mode="after")
    def _schedule_is_valid(self) -> RegimeConfig:
        self.schedule()
        return self

    def arguments(self) -> dict[str, Any]:
        """The schedule function's keyword arguments; fields it does not take are an error."""
        func = SCHEDULES.get(self.name)
        params = inspect.signature(func).parameters
        accepted = set(params)
        given = {k: v for k, v in self.model_dump(exclude={"name"}).items() if v is not None}
        unused = sorted(set(given) - accepted)
        if unused:
            raise ValueError(
                f"{self.name} does not take {', '.join(unused)} (it takes {', '.join(accepted)})"
            )
        missing = [k for k, p in params.items() if p.default is p.empty and k not in given]
        if missing:
            raise ValueError(f"{self.name} needs {', '.join(missing)} (e.g. regime.{missing[0]})")
        return given

    def schedule(self) -> list[float]:
        return SCHEDULES.get(self.name)(**self.arguments())

    @property
    def final_target(self) -> float:
        return self.schedule()[-1]


class RunConfig(StrictModel):
    name: str | None = None  # a label for tables; not part of the run id
    seed: Seed = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"  # not part of the run id
    train: TrainConfig = TrainConfig()  # execution settings: not part of the run id
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    pretrain: PretrainConfig = PretrainConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    prune: PruneConfig = PruneConfig()
    regime: RegimeConfig = RegimeConfig(target=0.5)
    # where results are also logged: mlflow[=URI], tensorboard[=DIR]; not part of the run id
    log: list[str] = Field(default_factory=list)
    # language-model evaluations of the pruned steps (config/evaluation.py); not part of the run id
    eval: EvalConfig | None = None

    @field_validator("log")
    @classmethod
    def _known_log_backends(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                parse_log(value)
            except PrunebenchError as exc:
                raise ValueError(str(exc).removeprefix("--log: ")) from None
        return values

    @model_validator(mode="after")
    def _model_fits_data(self) -> RunConfig:
        model_task = self.model.task
        data_task = data_catalog.declared_task(self.data.name, self.data.options)
        if model_task and data_task and model_task != data_task:
            raise ValueError(
                f"model '{self.model.name}' is a {model_task} model but dataset "
                f"'{self.data.name}' is a {data_task} dataset; pick a matching pair"
            )
        return self

    @model_validator(mode="after")
    def _eval_needs_a_language_model(self) -> RunConfig:
        task = self.model.task or data_catalog.declared_task(self.data.name, self.data.options)
        if self.eval is not None and task not in (None, "causal_lm"):
            raise ValueError(
                f"eval evaluates language models; this run is a {task} run: leave eval out"
            )
        if self.eval is not None and self.eval.perplexity is not None:
            self.eval.perplexity.window(self.data.seq_len)  # stride <= context, before compute
        return self
