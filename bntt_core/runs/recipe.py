"""The auto recipe: the paper's CIFAR-10 recipe adapted to a user's image folder (`bntt train` without
--preset), and the warning after a first epoch that learned nothing.

    config = adapt_recipe(config, info, len(train_set), auto=AUTO_RECIPE_SETTINGS)   # reasons in config.auto_recipe
    warning = first_epoch_warning(config, info, train_loss, len(train_set))         # None when learning
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

from bntt_core.runs.config import ConfigError, TrainConfig

AUTO_RECIPE_SETTINGS = ("batch_size", "lr", "augment", "crop_padding")
MIN_UPDATES_PER_EPOCH = 50  # the paper's CIFAR-10 recipe makes 195 (50,000 / 256)
AUTO_BATCH_RANGE = (16, 256)  # powers of two; 256 is the paper's
MIN_AUGMENT_SIZE = 16  # below it a random crop moves too large a share of the image


def adapt_recipe(config: TrainConfig, info, num_train_images: int, auto: Collection[str]) -> TrainConfig:
    """The paper's CIFAR-10 recipe adapted to a user's image folder, for the settings in `auto` (those
    the user did not choose); the built-in datasets keep their recipes. Rules (README "Your own data"):

    batch_size: the largest power of two in [16, 256] giving ≥ 50 updates per epoch (the paper's
        recipe gives 195 on CIFAR-10; on 1,500 images its batch of 256 gives 6, far too few).
    lr: the paper's 0.3 scaled linearly with the batch (0.3 · batch / 256; Goyal et al. 2017): the
        step size per image stays the paper's. Measured on 1,800 8×8 digits, VGG5, T = 8, 6 epochs at
        batch 16: lr 0.019 (this rule) 90.7–93.3% over four data orders and seeds, 0.05 90.0–93.0%,
        0.1 92.3% (README "Your own data"): no tuned constant beats it.
    augment / crop_padding: random crops shift by up to image_size/8 pixels (the paper's 4 at 32 px);
        off below 16 px, where even one pixel is a large share of the image.
    Every chosen value is recorded with its reason in config.auto_recipe.
    """
    chosen = [name for name in AUTO_RECIPE_SETTINGS if name in set(auto)]
    unknown = sorted(set(auto) - set(AUTO_RECIPE_SETTINGS))
    if unknown:
        raise ConfigError(f"the auto recipe sets only {', '.join(AUTO_RECIPE_SETTINGS)}; got {unknown}")
    if getattr(info, "name", None) != "image-folder" or not chosen:
        return config
    changes: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    batch_size = config.batch_size
    if "batch_size" in chosen:
        low, high = AUTO_BATCH_RANGE
        fitting = max(1, num_train_images // MIN_UPDATES_PER_EPOCH)
        batch_size = min(high, max(low, 2 ** int(math.log2(fitting))))
        changes["batch_size"] = batch_size
        updates = math.ceil(num_train_images / batch_size)
        reasons["batch_size"] = (f"{batch_size}: the largest power of two in [{low}, {high}] giving ≥ "
                                 f"{MIN_UPDATES_PER_EPOCH} updates per epoch where it can ({updates} on "
                                 f"{num_train_images} training images)")
    if "lr" in chosen:
        lr = auto_lr(batch_size)
        changes["lr"] = lr
        reasons["lr"] = f"{lr:g}: the paper's 0.3 at batch 256 scaled linearly to batch {batch_size}"
    augment = config.augment
    if "augment" in chosen:
        augment = info.image_size >= MIN_AUGMENT_SIZE and info.augment != "none"
        changes["augment"] = augment
        reasons["augment"] = ("on: random crops" if augment else
                              f"off: {info.image_size}×{info.image_size} images are below {MIN_AUGMENT_SIZE} px, "
                              f"where a random crop moves too large a share of the image")
    if "crop_padding" in chosen and augment:
        padding = max(1, round(info.image_size / 8))
        changes["crop_padding"] = padding
        reasons["crop_padding"] = f"{padding}: image_size/8 for {info.image_size} px images (the paper's 4 at 32 px)"
    if not changes:
        return config
    return config.replace(**changes, auto_recipe=reasons)


def auto_lr(batch_size: int) -> float:
    """The auto recipe's learning rate: the paper's 0.3 at batch 256 scaled linearly with the batch."""
    return round(0.3 * int(batch_size) / 256, 6)


def first_epoch_warning(config: TrainConfig, info, train_loss: float, num_train_images: int) -> str | None:
    """A warning with what to try when the first epoch's mean loss is not finite or above ln(classes)
    (a network that guesses uniformly has loss ln(classes): above it, it learned nothing yet); else None."""
    chance = math.log(max(2, int(info.num_classes)))
    if math.isfinite(train_loss) and train_loss <= chance:
        return None
    updates = math.ceil(num_train_images / max(1, config.batch_size))
    tips = [f"a lower --lr (now {config.lr:g})"]
    if updates < MIN_UPDATES_PER_EPOCH:
        tips.append(f"a smaller --batch-size (now {config.batch_size}: {updates} updates per epoch)")
    if config.augment and info.augment != "none" and info.image_size < MIN_AUGMENT_SIZE:
        tips.append(f"--no-augment ({info.image_size} px images)")
    tips.append("more --epochs")
    return (f"warning: the first epoch's training loss {train_loss:.3f} is "
            f"{'not finite' if not math.isfinite(train_loss) else 'above'} ln({info.num_classes}) = {chance:.3f}, "
            f"the loss of guessing: the network has not started learning. Try " + ", ".join(tips)
            + (" (or leave out --preset, --lr, --batch-size, --augment: bntt then adapts them to an image folder)"
               if info.name == "image-folder" and not config.auto_recipe else ""))
